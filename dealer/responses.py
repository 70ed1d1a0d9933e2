"""JSON responses serialized with orjson."""

from collections.abc import Mapping

import orjson
from aiohttp import web


def json_response(payload: object, status: int = 200, headers: Mapping[str, str] | None = None) -> web.Response:
    return json_bytes_response(orjson.dumps(payload), status, headers)


def json_bytes_response(body: bytes, status: int = 200, headers: Mapping[str, str] | None = None) -> web.Response:
    return web.Response(body=body, status=status, headers=headers, content_type="application/json")
