"""Input rules for request bodies, marks and db.json entries.

The field tables below are the single source of these rules: the validators
read them, and the OpenAPI document is generated from them.
"""

from dataclasses import dataclass
from typing import Any

import orjson

from dealer.errors import InvalidInputError

MAX_MARK_LENGTH = 200
# The largest integer that orjson reads and writes as an integer. orjson
# reads a larger integer literal as a float, so larger numbers are rejected.
MAX_NUMBER = 2**64 - 1


@dataclass(frozen=True)
class TextField:
    """A non-empty string of bounded length."""

    name: str
    max_length: int

    def problem(self, value: Any) -> str | None:
        """Describe what is wrong with a value, or return None if it is valid."""
        if isinstance(value, str) and 0 < len(value) <= self.max_length:
            return None
        return f"Field '{self.name}' must be a non-empty string of at most {self.max_length} characters"

    def schema(self) -> dict:
        return {"type": "string", "minLength": 1, "maxLength": self.max_length}


@dataclass(frozen=True)
class NumberField:
    """A number from 0 to MAX_NUMBER; integers stay integers."""

    name: str

    def problem(self, value: Any) -> str | None:
        """Describe what is wrong with a value, or return None if it is valid."""
        is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
        if not is_number or not value >= 0:
            return f"Field '{self.name}' must be a non-negative number"
        if value > MAX_NUMBER:
            return f"Field '{self.name}' must be at most {MAX_NUMBER}"
        return None

    def schema(self) -> dict:
        return {"type": "number", "minimum": 0, "maximum": MAX_NUMBER}


CREDENTIAL_FIELDS = (TextField("username", 150), TextField("password", 1024))
AUTO_FIELDS = (
    NumberField("max_speed"),
    NumberField("distance"),
    TextField("handler", 200),
    TextField("stock", 200),
)
AUTO_FIELD_NAMES = tuple(field.name for field in AUTO_FIELDS)


def parse_json_object(raw: bytes) -> dict:
    """Parse a request body that must be a JSON object, regardless of its Content-Type."""
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        raise InvalidInputError(f"Body is not valid JSON: {error}") from None
    if not isinstance(body, dict):
        raise InvalidInputError("Body must be a JSON object")
    return body


def _check_fields(body: dict, fields: tuple, required: bool) -> None:
    for field in fields:
        if field.name not in body:
            if required:
                raise InvalidInputError(f"Field '{field.name}' is required")
            continue
        problem = field.problem(body[field.name])
        if problem:
            raise InvalidInputError(problem)


def _reject_unknown(body: dict, known: tuple[str, ...]) -> None:
    for key in body:
        if key not in known:
            raise InvalidInputError(f"Unknown field '{key}'; allowed fields: {', '.join(known)}")


def validate_credentials(body: dict) -> tuple[str, str]:
    """Return `(username, password)` from a /register or /auth body."""
    _reject_unknown(body, ("username", "password"))
    _check_fields(body, CREDENTIAL_FIELDS, required=True)
    return body["username"], body["password"]


def validate_mark(mark: str) -> str:
    if not 0 < len(mark) <= MAX_MARK_LENGTH:
        raise InvalidInputError(f"Mark must be 1 to {MAX_MARK_LENGTH} characters long")
    return mark


def validate_auto(body: dict, mark: str, partial: bool) -> dict:
    """Return the auto fields of a body; with `partial`, any non-empty subset is enough.

    A `mark` key is allowed when it equals the URL's mark, so that a GET
    response can be sent back unchanged as a PUT body.
    """
    if "mark" in body:
        if body["mark"] != mark:
            raise InvalidInputError("Field 'mark' must equal the mark in the URL")
        body = {key: value for key, value in body.items() if key != "mark"}

    _reject_unknown(body, AUTO_FIELD_NAMES)
    _check_fields(body, AUTO_FIELDS, required=not partial)
    if not body:
        raise InvalidInputError(f"Body must contain at least one of the fields {', '.join(AUTO_FIELD_NAMES)}")
    return {name: body[name] for name in AUTO_FIELD_NAMES if name in body}
