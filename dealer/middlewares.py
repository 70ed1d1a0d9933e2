"""Access control and the one path by which failures become JSON responses."""

import logging

from aiohttp import web
from aiohttp.typedefs import Handler

from dealer.config import MAX_BODY_BYTES
from dealer.errors import (
    AuthenticationError,
    AutoExistsError,
    AutoNotFoundError,
    DealerError,
    InvalidCredentialsError,
    InvalidInputError,
    MissingTokenError,
    NoAutosError,
    StoreUnavailableError,
    UserExistsError,
)
from dealer.keys import STORE, TOKENS
from dealer.responses import json_response

logger = logging.getLogger(__name__)

STATUS_BY_ERROR: dict[type[DealerError], int] = {
    InvalidInputError: 400,
    UserExistsError: 400,
    AutoExistsError: 400,
    NoAutosError: 400,
    InvalidCredentialsError: 401,
    AuthenticationError: 401,
    AutoNotFoundError: 404,
    StoreUnavailableError: 503,
}
MESSAGE_BY_HTTP_STATUS = {
    404: "Not found",
    405: "Method not allowed",
}
TOKEN_SCHEMES = ("bearer", "jwt")
REALM = 'Bearer realm="dealer"'


def _is_guarded(path: str) -> bool:
    return path == "/stock" or path.startswith("/auto/")


def _authenticate(request: web.Request) -> str:
    """Return the user named by the request's access token; raise AuthenticationError if none is valid."""
    header = request.headers.get("Authorization")
    if header is None:
        raise MissingTokenError()

    scheme, *rest = header.split(None, 1) or [""]
    if scheme.lower() not in TOKEN_SCHEMES:
        raise AuthenticationError("Unsupported Authorization scheme; send 'Bearer <token>' or 'JWT <token>'")
    token = rest[0].strip() if rest else ""
    if not token:
        raise AuthenticationError("Authorization header has no token after the scheme")

    username = request.app[TOKENS].verify(token)
    if not request.app[STORE].has_user(username):
        raise AuthenticationError("Token names a user that does not exist")
    return username


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Require a valid access token on /stock and /auto/<mark>."""
    if _is_guarded(request.path):
        _authenticate(request)
    return await handler(request)


def _error_response(error: DealerError) -> web.Response:
    status = next(STATUS_BY_ERROR[cls] for cls in type(error).__mro__ if cls in STATUS_BY_ERROR)
    headers = {}
    if isinstance(error, AuthenticationError):
        if isinstance(error, MissingTokenError):
            headers["WWW-Authenticate"] = REALM
        else:
            headers["WWW-Authenticate"] = f'{REALM}, error="invalid_token", error_description="{error.text}"'
    return json_response({"Error": error.text}, status=status, headers=headers)


def _http_error_response(error: web.HTTPException) -> web.Response:
    if isinstance(error, web.HTTPRequestEntityTooLarge):
        message = f"Request body is larger than {MAX_BODY_BYTES} bytes"
    else:
        message = MESSAGE_BY_HTTP_STATUS.get(error.status, error.reason)
    headers = {"Allow": error.headers["Allow"]} if "Allow" in error.headers else None
    return json_response({"Error": message}, status=error.status, headers=headers)


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turn every failure into a JSON `{"Error": ...}` response; a traceback only goes to the log."""
    try:
        return await handler(request)
    except DealerError as error:
        return _error_response(error)
    except web.HTTPException as error:
        if error.status < 400:
            raise
        return _http_error_response(error)
    except Exception:
        logger.exception("Unexpected error in %s %s", request.method, request.path)
        return json_response({"Error": "Internal server error"}, status=500)
