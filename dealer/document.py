"""The db.json format: parsing with the input rules of the API, and pretty-printed serialization."""

import codecs
from pathlib import Path

import orjson

from dealer.errors import DatabaseFileError, InvalidInputError
from dealer.passwords import is_password_hash
from dealer.validation import CREDENTIAL_FIELDS, validate_auto, validate_mark

# Two-space indents and a trailing newline, so that people can read and
# edit the file; orjson writes non-ASCII text as UTF-8, not as \u escapes.
DUMP_OPTIONS = orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE
USERNAME_FIELD, PASSWORD_FIELD = CREDENTIAL_FIELDS


def parse_document(raw: bytes, path: Path) -> tuple[dict[str, str], dict[str, dict], set[str]]:
    """Parse db.json into users, autos and the names of users seeded with a plaintext password.

    A plaintext user's value in the returned users is the password itself,
    to be hashed by the caller. Raise DatabaseFileError naming the line and
    column of invalid JSON, or the entry with a wrong shape.
    """
    try:
        document = orjson.loads(raw.removeprefix(codecs.BOM_UTF8))
    except orjson.JSONDecodeError as error:
        raise DatabaseFileError(
            f"{path}: invalid JSON at line {error.lineno}, column {error.colno}: {error.msg}"
        ) from None

    if not isinstance(document, dict) or not set(document) <= {"users", "autos"}:
        raise DatabaseFileError(f'{path}: the top level must be an object with the keys "users" and "autos"')
    users_entries = document.get("users", {})
    autos_entries = document.get("autos", {})
    for key, entries in (("users", users_entries), ("autos", autos_entries)):
        if not isinstance(entries, dict):
            raise DatabaseFileError(f'{path}: "{key}" must be an object')

    users: dict[str, str] = {}
    plaintext: set[str] = set()
    for username, entry in users_entries.items():
        where = f"{path}: users[{orjson.dumps(username).decode()}]"
        problem = USERNAME_FIELD.problem(username)
        if problem:
            raise DatabaseFileError(f"{where}: {problem}")
        if not isinstance(entry, dict):
            entry = {}
        if set(entry) == {"password_hash"} and isinstance(entry["password_hash"], str) and is_password_hash(entry["password_hash"]):
            users[username] = entry["password_hash"]
        elif set(entry) == {"password"}:
            problem = PASSWORD_FIELD.problem(entry["password"])
            if problem:
                raise DatabaseFileError(f"{where}: {problem}")
            users[username] = entry["password"]
            plaintext.add(username)
        else:
            raise DatabaseFileError(
                f'{where} must be {{"password_hash": "scrypt$..."}}, '
                f'or {{"password": "..."}} to have the server hash a plaintext password'
            )

    autos: dict[str, dict] = {}
    for mark, entry in autos_entries.items():
        where = f"{path}: autos[{orjson.dumps(mark).decode()}]"
        if not isinstance(entry, dict):
            raise DatabaseFileError(f"{where} must be an object")
        if "mark" in entry and entry["mark"] != mark:
            raise DatabaseFileError(f'{where}: "mark" inside the entry must equal its key, or be left out')
        try:
            autos[validate_mark(mark)] = validate_auto(entry, mark, partial=False)
        except InvalidInputError as error:
            raise DatabaseFileError(f"{where}: {error}") from None

    return users, autos, plaintext



def serialize_document(users: dict[str, str], autos: dict[str, dict]) -> bytes:
    """Serialize users (name to password hash) and autos into the content of db.json."""
    users_entries = {username: {"password_hash": password_hash} for username, password_hash in users.items()}
    return orjson.dumps({"users": users_entries, "autos": autos}, option=DUMP_OPTIONS)
