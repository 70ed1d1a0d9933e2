"""Settings of one server instance."""

from dataclasses import dataclass
from pathlib import Path

DEFAULT_TOKEN_TTL = 3600
# Larger request bodies are rejected with 413.
MAX_BODY_BYTES = 64 * 1024


@dataclass(frozen=True)
class Config:
    """Database path, token signing key and token lifetime of one server.

    `jwt_secret` of None means: read the secret from the file beside the
    database, creating it on first start.
    """

    db_path: Path
    jwt_secret: bytes | None = None
    token_ttl: int = DEFAULT_TOKEN_TTL
