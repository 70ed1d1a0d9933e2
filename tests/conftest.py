"""Fixtures: an app over a temporary db.json, a registered user's token, and a real server process."""

import functools
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest
from aiohttp import ClientSession

from dealer import Config, create_app
from dealer.config import DEFAULT_TOKEN_TTL
from dealer.passwords import hash_password
from dealer.tokens import TokenCodec

ROOT = Path(__file__).resolve().parent.parent
SHIPPED_DB = ROOT / "db.json"
SECRET = b"test-secret-of-at-least-32-bytes!"
USERNAME = "student"
PASSWORD = "qwert"
AUTO = {"max_speed": 280, "distance": 400, "handler": "Auto Motors", "stock": "Germany"}


@functools.cache
def seeded_password_hash() -> str:
    """Hash the test user's password once per test run; hashing costs about 50 ms."""
    return hash_password(PASSWORD)


def write_seeded_db(path: Path) -> Path:
    """Write a database with the test user and the auto BMW, which saves a registration per test."""
    write_db(path, users={USERNAME: {"password_hash": seeded_password_hash()}}, autos={"BMW": AUTO})
    return path


def issue_test_token() -> str:
    """Issue an access token of the test user, signed with the tests' secret."""
    return TokenCodec(SECRET, DEFAULT_TOKEN_TTL).issue(USERNAME)


def write_db(path: Path, users: dict | None = None, autos: dict | None = None) -> None:
    path.write_bytes(orjson.dumps({"users": users or {}, "autos": autos or {}}, option=orjson.OPT_INDENT_2))


def read_db(path: Path) -> dict:
    return orjson.loads(path.read_bytes())


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    """Path of a database file that does not exist yet."""
    return tmp_path / "db.json"


@pytest.fixture
def config(db_path: Path) -> Config:
    return Config(db_path=db_path, jwt_secret=SECRET)


@pytest.fixture
async def client(aiohttp_client, config):
    return await aiohttp_client(create_app(config))


@pytest.fixture
async def token(client) -> str:
    """Access token of a freshly registered user."""
    credentials = {"username": USERNAME, "password": PASSWORD}
    assert (await client.post("/register", json=credentials)).status == 201
    response = await client.post("/auth", json=credentials)
    return (await response.json())["access_token"]


@pytest.fixture
def auth_headers(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class ServerProcess:
    """A `python run.py` process on loopback; `start` and `stop` may be called repeatedly."""

    db_path: Path
    log_path: Path
    port: int = 0
    process: subprocess.Popen | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, *extra_args: str, wait: bool = True) -> subprocess.Popen:
        self.port = free_port()
        command = [sys.executable, str(ROOT / "run.py"), "--port", str(self.port), "--db", str(self.db_path)]
        log = self.log_path.open("ab")
        self.process = subprocess.Popen([*command, *extra_args], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        if wait:
            self.wait_until_listening()
        return self.process

    def wait_until_listening(self, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}:\n{self.log()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"server did not listen within {timeout} s:\n{self.log()}")

    def stop(self, timeout: float = 15.0) -> int:
        """Send SIGTERM and return the exit code."""
        self.process.terminate()
        return self.process.wait(timeout)

    def kill(self) -> None:
        self.process.kill()
        self.process.wait()

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    """A real server process over a copy of the shipped db.json; started by the test."""
    db_path = tmp_path / "server" / "db.json"
    db_path.parent.mkdir()
    shutil.copy(SHIPPED_DB, db_path)
    process = ServerProcess(db_path=db_path, log_path=tmp_path / "server.log")
    yield process
    if process.process is not None and process.process.poll() is None:
        process.kill()


async def register_and_log_in(session: ClientSession, base_url: str) -> dict[str, str]:
    """Register the test user on a running server and return its auth headers."""
    credentials = {"username": USERNAME, "password": PASSWORD}
    async with session.post(f"{base_url}/register", json=credentials) as response:
        assert response.status in (201, 400)
    async with session.post(f"{base_url}/auth", json=credentials) as response:
        assert response.status == 200
        body = await response.json()
    return {"Authorization": f"Bearer {body['access_token']}"}
