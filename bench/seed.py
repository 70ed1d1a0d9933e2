"""Databases of a given size for the benchmark, written before the server starts."""

from pathlib import Path

import orjson

from dealer.passwords import hash_password

# The same fields in every seeded auto, so that every response has the size of the baseline's.
AUTO_FIELDS = {"max_speed": 280, "distance": 400, "handler": "Auto Motors", "stock": "Germany"}
# Created by hand in every seeded file; the start-up probe signs its own token for this user.
SEEDED_USERNAME = "seeded"
SEEDED_PASSWORD = "seeded-password"


def mark_of(index: int) -> str:
    return f"Seeded-{index:06d}"


def write_seeded_db(path: Path, auto_count: int, password_hash: str) -> None:
    """Write db.json with one user and `auto_count` autos, formatted as the server writes it."""
    autos = {mark_of(index): AUTO_FIELDS for index in range(auto_count)}
    document = {"users": {SEEDED_USERNAME: {"password_hash": password_hash}}, "autos": autos}
    path.write_bytes(orjson.dumps(document, option=orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE))


def seeded_password_hash() -> str:
    """Hash the seeded user's password once per run; scrypt takes about 50 ms."""
    return hash_password(SEEDED_PASSWORD)
