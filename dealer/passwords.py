"""Salted scrypt password hashes, computed off the event loop."""

import asyncio
import base64
import hashlib
import hmac
import os
import sys
import threading
from concurrent.futures import Executor, ThreadPoolExecutor

ALGORITHM = "scrypt"
# 16 MiB of memory and about 50 ms of one core per hash.
SCRYPT_N = 2**14
SCRYPT_R = 8
SCRYPT_P = 1
SALT_BYTES = 16
# Memory that one hash may use: 128 * n * r bytes must stay within
# OpenSSL's default scrypt limit of 32 MiB, which maxmem=0 keeps.
MAX_SCRYPT_MEMORY = 32 * 1024 * 1024
KEY_BYTES = 32


def _b64encode(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def hash_password(password: str) -> str:
    """Hash a password into `scrypt$n=…,r=…,p=…$<salt>$<key>` (salt and key in base64)."""
    salt = os.urandom(SALT_BYTES)
    key = hashlib.scrypt(
        password.encode("utf-8"),
        salt=salt,
        n=SCRYPT_N,
        r=SCRYPT_R,
        p=SCRYPT_P,
        maxmem=0,
        dklen=KEY_BYTES,
    )
    return f"{ALGORITHM}$n={SCRYPT_N},r={SCRYPT_R},p={SCRYPT_P}${_b64encode(salt)}${_b64encode(key)}"


def _parse(password_hash: str) -> tuple[dict[str, int], bytes, bytes]:
    """Split a stored hash into its parameters, salt and key; raise ValueError if malformed."""
    algorithm, params_text, salt_text, key_text = password_hash.split("$")
    if algorithm != ALGORITHM:
        raise ValueError(f"unknown algorithm {algorithm!r}")
    params = {}
    for item in params_text.split(","):
        name, _, value = item.partition("=")
        params[name] = int(value)
    if set(params) != {"n", "r", "p"}:
        raise ValueError("parameters must be n, r and p")
    n, r, p = params["n"], params["r"], params["p"]
    if n < 2 or n & (n - 1) or r < 1 or p < 1 or 128 * n * r >= MAX_SCRYPT_MEMORY:
        raise ValueError("n must be a power of 2, r and p at least 1, within 32 MiB of memory")
    salt = base64.b64decode(salt_text, validate=True)
    key = base64.b64decode(key_text, validate=True)
    if not salt or not key:
        raise ValueError("empty salt or key")
    return params, salt, key


def is_password_hash(value: str) -> bool:
    """Tell whether a string is a hash that `verify_password` can check."""
    try:
        _parse(value)
    except ValueError:
        return False
    return True


def verify_password(password: str, password_hash: str) -> bool:
    """Check a password against a stored hash in constant time."""
    params, salt, key = _parse(password_hash)
    candidate = hashlib.scrypt(
        password.encode("utf-8"),
        salt=salt,
        n=params["n"],
        r=params["r"],
        p=params["p"],
        maxmem=0,
        dklen=len(key),
    )
    return hmac.compare_digest(candidate, key)


# Nice value of the hashing thread: the kernel then gives the event loop
# thread about nine tenths of a core that both want.
HASHING_THREAD_NICE = 10


def _lower_thread_priority() -> None:
    """Raise the calling thread's nice value on Linux, the one OS here where nice is per thread."""
    if sys.platform != "linux":
        return
    try:
        thread_id = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, thread_id, os.getpriority(os.PRIO_PROCESS, thread_id) + HASHING_THREAD_NICE)
    except OSError:
        pass  # Hashing then runs at normal priority, which is still correct.


def hashing_executor() -> ThreadPoolExecutor:
    """Make the executor for password hashing: one thread, at low CPU priority.

    One thread takes at most one core, and its low priority lets the event
    loop keep serving other requests on the same core while logins queue.
    """
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="password-hashing", initializer=_lower_thread_priority)


class PasswordHasher:
    """Runs hashing in an executor (see `hashing_executor`) so that a login never stalls other requests."""

    def __init__(self, executor: Executor) -> None:
        self._executor = executor
        # Verified against when the user does not exist, so that an unknown
        # user costs as much time as a wrong password.
        self.dummy_hash = hash_password(os.urandom(16).hex())

    async def hash(self, password: str) -> str:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, hash_password, password)

    async def verify(self, password: str, password_hash: str) -> bool:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, verify_password, password, password_hash)
