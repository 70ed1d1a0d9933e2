"""Route handlers: parse the request, call the store or accounts, return JSON."""

from aiohttp import web

from dealer.errors import AutoNotFoundError, InvalidInputError, NoAutosError
from dealer.keys import ACCOUNTS, STORE
from dealer.responses import json_bytes_response, json_response
from dealer.validation import parse_json_object, validate_auto, validate_credentials, validate_mark

routes = web.RouteTableDef()
# Any path segment; aiohttp's default pattern would exclude '{' and '}'.
AUTO_PATH = "/auto/{mark:[^/]+}"


async def _read_object(request: web.Request) -> dict:
    try:
        raw = await request.read()
    except (web.RequestPayloadError, ConnectionResetError) as error:
        # An undecodable Content-Encoding, or a client that left mid-upload.
        raise InvalidInputError(f"Request body cannot be read: {error}") from None
    return parse_json_object(raw)


def _mark(request: web.Request) -> str:
    return validate_mark(request.match_info["mark"])


@routes.post("/register")
async def register(request: web.Request) -> web.Response:
    username, password = validate_credentials(await _read_object(request))

    await request.app[ACCOUNTS].register(username, password)

    return json_response({"Message": "User created. Try to auth"}, status=201)


@routes.post("/auth")
async def auth(request: web.Request) -> web.Response:
    username, password = validate_credentials(await _read_object(request))
    accounts = request.app[ACCOUNTS]

    access_token = await accounts.log_in(username, password)

    return json_response({"access_token": access_token, "token_type": "Bearer", "expires_in": accounts.token_ttl})


@routes.get("/stock")
async def stock(request: web.Request) -> web.Response:
    store = request.app[STORE]
    if not store.auto_count:
        raise NoAutosError()
    return json_bytes_response(store.autos_json())


@routes.get(AUTO_PATH)
async def get_auto(request: web.Request) -> web.Response:
    auto = request.app[STORE].get_auto(_mark(request))
    if auto is None:
        raise AutoNotFoundError()
    return json_response(auto)


@routes.post(AUTO_PATH)
async def create_auto(request: web.Request) -> web.Response:
    mark = _mark(request)
    fields = validate_auto(await _read_object(request), mark, partial=False)

    await request.app[STORE].create_auto(mark, fields)

    return json_response({"Message": "Auto created"}, status=201)


@routes.put(AUTO_PATH)
async def update_auto(request: web.Request) -> web.Response:
    mark = _mark(request)
    fields = validate_auto(await _read_object(request), mark, partial=True)

    await request.app[STORE].update_auto(mark, fields)

    return json_response({"Message": "Auto updated"}, status=202)


@routes.delete(AUTO_PATH)
async def delete_auto(request: web.Request) -> web.Response:
    await request.app[STORE].delete_auto(_mark(request))

    return json_response({"Message": "Auto deleted"}, status=202)
