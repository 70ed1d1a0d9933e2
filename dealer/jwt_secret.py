"""The key that signs access tokens, kept in a file beside the database."""

import logging
import os
import secrets
from pathlib import Path

from dealer.errors import SecretFileError

logger = logging.getLogger(__name__)

SECRET_BYTES = 32


def secret_path(db_path: Path) -> Path:
    return db_path.with_name(db_path.name + ".secret")


def load_or_create_secret(path: Path) -> bytes:
    """Read the secret from `path`, or generate one there readable by the owner only.

    Keeping it in a file lets tokens survive a restart.
    """
    try:
        secret = bytes.fromhex(path.read_text(encoding="ascii").strip())
    except FileNotFoundError:
        pass
    except (OSError, ValueError) as error:
        raise SecretFileError(f"{path}: cannot read the token secret ({error}); delete the file to generate a new one") from None
    else:
        if secret:
            return secret
        raise SecretFileError(f"{path} is empty; delete it to generate a new token secret")

    secret = secrets.token_bytes(SECRET_BYTES)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w", encoding="ascii") as file:
            file.write(secret.hex() + "\n")
    except OSError as error:
        raise SecretFileError(f"{path}: cannot create the token secret: {error.strerror}") from None
    logger.info("Generated a new token signing secret in %s", path)
    return secret
