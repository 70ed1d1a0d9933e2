"""schemathesis hooks for scripts/fuzz.py, loaded through SCHEMATHESIS_HOOKS."""

from urllib.parse import unquote

import schemathesis

from dealer.validation import MAX_MARK_LENGTH


def _is_valid_mark(value: object) -> bool:
    return isinstance(value, str) and 0 < len(value) <= MAX_MARK_LENGTH


@schemathesis.hook
def map_case(context, case):
    """Make a valid generated body `mark` equal to the URL's mark.

    The server accepts a body `mark` only when it equals the mark in the URL,
    a rule that JSON Schema cannot express, so random values would turn
    almost every POST and PUT into the same 400. An invalid body `mark` is
    left alone because it may be the very violation a negative case tests.
    """
    body = case.body
    mark = (case.path_parameters or {}).get("mark")
    if isinstance(mark, str):
        # Marks that schemathesis picked up from responses come percent-encoded,
        # and it sends them as they are, so the server decodes them.
        mark = unquote(mark)
    if isinstance(body, dict) and _is_valid_mark(body.get("mark")) and _is_valid_mark(mark):
        body["mark"] = mark
    return case
