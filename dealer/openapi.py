"""The OpenAPI document of the API, built from the input rules in `dealer.validation`.

Field schemas come from the same field tables that the validators use, and
the example input errors come from running the validators on bad input, so
the field rules and those messages cannot drift from what the server sends.
tests/test_openapi.py checks the other documented messages against the server.
"""

from collections.abc import Callable

from dealer.config import MAX_BODY_BYTES
from dealer.errors import (
    AutoExistsError,
    AutoNotFoundError,
    InvalidCredentialsError,
    InvalidInputError,
    MissingTokenError,
    NoAutosError,
    UserExistsError,
)
from dealer.middlewares import MESSAGE_BY_HTTP_STATUS, REALM
from dealer.validation import (
    AUTO_FIELD_NAMES,
    AUTO_FIELDS,
    CREDENTIAL_FIELDS,
    MAX_MARK_LENGTH,
    parse_json_object,
    validate_auto,
    validate_credentials,
    validate_mark,
)

# 3.0 rather than 3.1: the Swagger UI that swagger-ui-bundle 1.1.0 ships
# (4.15.5) renders only OpenAPI 3.0 documents.
OPENAPI_VERSION = "3.0.3"
SECURITY_SCHEME = "BearerAuth"
SAMPLE_MARK = "BMW"
SAMPLE_AUTO = {"max_speed": 280, "distance": 400, "handler": "Auto Motors", "stock": "Germany"}
SAMPLE_CREDENTIALS = {"username": "student", "password": "qwert"}

DESCRIPTION = """\
A REST API for a car dealer. Register with `POST /register`, get an access token from `POST /auth`,
then send it in the `Authorization` header to `/stock` and `/auto/{{mark}}`. On this page: run
`POST /register` and `POST /auth` with "Try it out", copy `access_token` from the response, click
"Authorize" and paste the token alone, without `Bearer`.

Every body is a JSON object, parsed as JSON whatever the `Content-Type` header is. Bodies larger than
{max_body} bytes ({max_body_kib} KiB) get 413. Every failure is answered as
`{{"Error": "<message>"}}`: an unknown route gets 404 `{{"Error": "{not_found}"}}`, a method that the route does not have gets
405 `{{"Error": "{not_allowed}"}}` with an `Allow` header, and an unexpected failure gets
500 `{{"Error": "Internal server error"}}`.
"""

SECURITY_DESCRIPTION = (
    "The `access_token` from `POST /auth`, sent as `Authorization: Bearer <token>`. "
    "The scheme `JWT` works too (`Authorization: JWT <token>`), and the scheme name is case-insensitive. "
    "In Swagger UI, paste only the token into Authorize, without a scheme."
)


def _rejection(call: Callable[[], object]) -> str:
    """Return the message of the InvalidInputError that `call` raises."""
    try:
        call()
    except InvalidInputError as error:
        return error.text
    raise AssertionError("the validator accepted a sample meant to be invalid")


def _object_schema(properties: dict, required: list[str] | None = None) -> dict:
    schema = {"type": "object", "properties": properties, "additionalProperties": False}
    if required:
        schema["required"] = required
    return schema


def _fixed_text_object(key: str, messages: list[str] | None) -> dict:
    """Build the schema of `{key: message}`; with `messages`, only those exact texts conform."""
    text = {"type": "string"}
    if messages:
        text["enum"] = messages
    return _object_schema({key: text}, [key])


def _json_content(schema: dict, examples: dict[str, object]) -> dict:
    if len(examples) == 1:
        return {"application/json": {"schema": schema, "example": next(iter(examples.values()))}}
    named = {name: {"value": value} for name, value in examples.items()}
    return {"application/json": {"schema": schema, "examples": named}}


def _message_response(description: str, message: str) -> dict:
    content = _json_content(_fixed_text_object("Message", [message]), {"success": {"Message": message}})
    return {"description": description, "content": content}


def _error_response(
    description: str, examples: dict[str, str], fixed: bool = False, headers: dict | None = None
) -> dict:
    """Build an `{"Error": ...}` response; with `fixed`, the example messages are the only ones the server sends."""
    schema = _fixed_text_object("Error", list(examples.values()) if fixed else None)
    content = _json_content(schema, {name: {"Error": message} for name, message in examples.items()})
    response = {"description": description, "content": content}
    if headers:
        response["headers"] = headers
    return response


def _mark_schema() -> dict:
    return {"type": "string", "minLength": 1, "maxLength": MAX_MARK_LENGTH}


def _schemas() -> dict:
    auto_properties = {field.name: field.schema() for field in AUTO_FIELDS}
    body_mark = {
        **_mark_schema(),
        "description": "Optional; accepted only when equal to the mark in the URL, "
        "so that a `GET` answer can be sent back as a `PUT` body.",
    }
    return {
        "Credentials": _object_schema(
            {field.name: field.schema() for field in CREDENTIAL_FIELDS},
            [field.name for field in CREDENTIAL_FIELDS],
        ),
        "Token": _object_schema(
            {
                "access_token": {"type": "string", "description": "A JWT signed with HS256."},
                "token_type": {"type": "string", "enum": ["Bearer"]},
                "expires_in": {"type": "integer", "minimum": 1, "description": "Token lifetime in seconds."},
            },
            ["access_token", "token_type", "expires_in"],
        ),
        "Auto": _object_schema({"mark": _mark_schema(), **auto_properties}, ["mark", *AUTO_FIELD_NAMES]),
        "NewAuto": _object_schema({"mark": body_mark, **auto_properties}, list(AUTO_FIELD_NAMES)),
        "AutoChanges": {
            **_object_schema({"mark": body_mark, **auto_properties}),
            "description": "Any non-empty subset of the auto fields; only those fields change.",
            "anyOf": [{"required": [name]} for name in AUTO_FIELD_NAMES],
        },
    }


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _json_body(schema_name: str, example: dict) -> dict:
    content = {"application/json": {"schema": _ref(schema_name), "example": example}}
    return {"required": True, "content": content}


def _input_examples(samples: dict[str, Callable[[], object]]) -> dict[str, str]:
    """Run each invalid sample through its validator and keep the message the server sends."""
    examples = {
        "not JSON": _rejection(lambda: parse_json_object(b"{")),
        "not an object": _rejection(lambda: parse_json_object(b"[]")),
    }
    for name, call in samples.items():
        examples[name] = _rejection(call)
    return examples


def _credential_examples() -> dict[str, str]:
    field = CREDENTIAL_FIELDS[0]
    return _input_examples(
        {
            "missing field": lambda: validate_credentials({field.name: "student"}),
            "invalid field": lambda: validate_credentials({**SAMPLE_CREDENTIALS, field.name: ""}),
            "unknown field": lambda: validate_credentials({**SAMPLE_CREDENTIALS, "email": "a@b.c"}),
        }
    )


def _auto_examples() -> dict[str, str]:
    field = AUTO_FIELDS[0]
    return {
        "mark too long": _rejection(lambda: validate_mark("x" * (MAX_MARK_LENGTH + 1))),
        **_input_examples(
            {
                "missing field": lambda: validate_auto({field.name: 1}, SAMPLE_MARK, partial=False),
                "invalid field": lambda: validate_auto({field.name: -1}, SAMPLE_MARK, partial=True),
                "unknown field": lambda: validate_auto({"color": "red"}, SAMPLE_MARK, partial=True),
                "mark differs from the URL": lambda: validate_auto({"mark": "Audi"}, SAMPLE_MARK, partial=True),
                "no fields": lambda: validate_auto({}, SAMPLE_MARK, partial=True),
            }
        ),
    }


def _common_responses() -> dict:
    """Build the responses shared by several operations: bad input, token problems, large bodies, failed writes."""
    mark_too_long = _rejection(lambda: validate_mark("x" * (MAX_MARK_LENGTH + 1)))
    www_authenticate = {
        "WWW-Authenticate": {
            "description": "The `Bearer` challenge; for an invalid token it also carries "
            '`error="invalid_token"` and the reason in `error_description`.',
            "required": True,
            "schema": {"type": "string"},
            "example": REALM,
        }
    }
    return {
        "CredentialsInvalid": _error_response(
            "The body breaks an input rule; the message names the field and the problem.", _credential_examples()
        ),
        "AutoInvalid": _error_response(
            "The mark or the body breaks an input rule; the message names the field and the problem.", _auto_examples()
        ),
        "MarkInvalid": _error_response(
            "The mark in the URL is too long.", {"mark too long": mark_too_long}, fixed=True
        ),
        "Unauthorized": _error_response(
            "The access token is missing or cannot be trusted; the message gives the reason.",
            {
                "missing header": MissingTokenError.message,
                "unknown scheme": "Unsupported Authorization scheme; send 'Bearer <token>' or 'JWT <token>'",
                "malformed token": "Token is malformed",
                "bad signature": "Token signature is invalid",
                "expired token": "Token has expired",
                "unknown user": "Token names a user that does not exist",
            },
            headers=www_authenticate,
        ),
        "AutoNotFound": _error_response("No auto has this mark.", {"not found": AutoNotFoundError.message}, fixed=True),
        "BodyTooLarge": _error_response(
            f"The body is larger than {MAX_BODY_BYTES} bytes.",
            {"too large": f"Request body is larger than {MAX_BODY_BYTES} bytes"},
            fixed=True,
        ),
        "StoreUnavailable": _error_response(
            "The change could not be saved to db.json, so nothing was changed; retry after fixing the cause.",
            {
                "write failed": "Could not save to db.json: No space left on device; nothing was changed",
                "edited during the save": "db.json was edited while the change was being saved; "
                "nothing was changed, try again",
            },
        ),
        "NotFound": _error_response("No route has this path.", {"not found": MESSAGE_BY_HTTP_STATUS[404]}, fixed=True),
        "MethodNotAllowed": _error_response(
            "The route exists but not with this method; `Allow` lists the methods it has.",
            {"not allowed": MESSAGE_BY_HTTP_STATUS[405]},
            fixed=True,
            headers={"Allow": {"required": True, "schema": {"type": "string"}, "example": "GET,HEAD,POST,PUT,DELETE"}},
        ),
    }


def _shared(name: str) -> dict:
    return {"$ref": f"#/components/responses/{name}"}


def _account_paths() -> dict:
    register = {
        "tags": ["accounts"],
        "summary": "Register a user",
        "operationId": "register",
        "requestBody": _json_body("Credentials", SAMPLE_CREDENTIALS),
        "responses": {
            "201": _message_response("The user was created.", "User created. Try to auth"),
            "400": _error_response(
                "The user exists, or the body breaks an input rule.",
                {"user exists": UserExistsError.message, **_credential_examples()},
            ),
            "413": _shared("BodyTooLarge"),
            "503": _shared("StoreUnavailable"),
        },
    }
    auth = {
        "tags": ["accounts"],
        "summary": "Get an access token",
        "operationId": "auth",
        "requestBody": _json_body("Credentials", SAMPLE_CREDENTIALS),
        "responses": {
            "200": {
                "description": "The credentials are valid. Send `access_token` in the `Authorization` header.",
                "content": {"application/json": {"schema": _ref("Token")}},
            },
            "400": _shared("CredentialsInvalid"),
            "401": _error_response(
                "The user does not exist or the password is wrong; both get the same answer.",
                {"invalid credentials": InvalidCredentialsError.message},
                fixed=True,
            ),
            "413": _shared("BodyTooLarge"),
        },
    }
    return {"/register": {"post": register}, "/auth": {"post": auth}}


def _auto_paths() -> dict:
    secured = [{SECURITY_SCHEME: []}]
    mark_parameter = {
        "name": "mark",
        "in": "path",
        "required": True,
        "description": f"The auto's mark: 1 to {MAX_MARK_LENGTH} characters of any Unicode, "
        "percent-encoded in the URL (`/auto/%D0%9B%D0%B0%D0%B4%D0%B0` is `/auto/Лада`).",
        "schema": _mark_schema(),
        "example": SAMPLE_MARK,
    }
    stock = {
        "tags": ["autos"],
        "summary": "List all autos",
        "operationId": "listStock",
        "security": secured,
        "responses": {
            "200": {
                "description": "Every auto, in stored order.",
                "content": {"application/json": {"schema": {"type": "array", "minItems": 1, "items": _ref("Auto")}}},
            },
            "400": _error_response("No auto is stored.", {"no autos": NoAutosError.message}, fixed=True),
            "401": _shared("Unauthorized"),
        },
    }
    get_auto = {
        "tags": ["autos"],
        "summary": "Get one auto",
        "operationId": "getAuto",
        "security": secured,
        "responses": {
            "200": {
                "description": "The auto.",
                "content": {
                    "application/json": {"schema": _ref("Auto"), "example": {"mark": SAMPLE_MARK, **SAMPLE_AUTO}}
                },
            },
            "400": _shared("MarkInvalid"),
            "401": _shared("Unauthorized"),
            "404": _shared("AutoNotFound"),
        },
    }
    create_auto = {
        "tags": ["autos"],
        "summary": "Add an auto",
        "operationId": "createAuto",
        "security": secured,
        "requestBody": _json_body("NewAuto", SAMPLE_AUTO),
        "responses": {
            "201": _message_response("The auto was added.", "Auto created"),
            "400": _error_response(
                "An auto with this mark exists, or the mark or the body breaks an input rule.",
                {"auto exists": AutoExistsError.message, **_auto_examples()},
            ),
            "401": _shared("Unauthorized"),
            "413": _shared("BodyTooLarge"),
            "503": _shared("StoreUnavailable"),
        },
    }
    update_auto = {
        "tags": ["autos"],
        "summary": "Change some fields of an auto",
        "operationId": "updateAuto",
        "security": secured,
        "requestBody": _json_body("AutoChanges", {"max_speed": 300}),
        "responses": {
            "202": _message_response("The auto was changed.", "Auto updated"),
            "400": _shared("AutoInvalid"),
            "401": _shared("Unauthorized"),
            "404": _shared("AutoNotFound"),
            "413": _shared("BodyTooLarge"),
            "503": _shared("StoreUnavailable"),
        },
    }
    delete_auto = {
        "tags": ["autos"],
        "summary": "Delete an auto",
        "operationId": "deleteAuto",
        "security": secured,
        "responses": {
            "202": _message_response("The auto was deleted.", "Auto deleted"),
            "400": _shared("MarkInvalid"),
            "401": _shared("Unauthorized"),
            "404": _shared("AutoNotFound"),
            "503": _shared("StoreUnavailable"),
        },
    }
    auto = {
        "parameters": [mark_parameter],
        "get": get_auto,
        "post": create_auto,
        "put": update_auto,
        "delete": delete_auto,
    }
    return {"/stock": {"get": stock}, "/auto/{mark}": auto}


def _docs_paths() -> dict:
    document = {
        "tags": ["docs"],
        "summary": "This OpenAPI document",
        "operationId": "openapiDocument",
        "responses": {
            "200": {"description": "The document.", "content": {"application/json": {"schema": {"type": "object"}}}}
        },
    }
    page = {
        "tags": ["docs"],
        "summary": "Swagger UI for this document",
        "operationId": "docsPage",
        "responses": {
            "200": {"description": "The HTML page.", "content": {"text/html": {"schema": {"type": "string"}}}}
        },
    }
    return {"/openapi.json": {"get": document}, "/docs": {"get": page}}


def build_document() -> dict:
    """Build the OpenAPI document of every route."""
    description = DESCRIPTION.format(
        max_body=MAX_BODY_BYTES,
        max_body_kib=MAX_BODY_BYTES // 1024,
        not_found=MESSAGE_BY_HTTP_STATUS[404],
        not_allowed=MESSAGE_BY_HTTP_STATUS[405],
    )
    return {
        "openapi": OPENAPI_VERSION,
        "info": {"title": "dealer", "version": "1.0.0", "description": description},
        "tags": [
            {"name": "accounts", "description": "Registration and access tokens"},
            {"name": "autos", "description": "The dealer's autos; every operation needs an access token"},
            {"name": "docs", "description": "This document and its Swagger UI page"},
        ],
        "paths": {**_account_paths(), **_auto_paths(), **_docs_paths()},
        "components": {
            "schemas": _schemas(),
            "responses": _common_responses(),
            "securitySchemes": {
                SECURITY_SCHEME: {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "JWT",
                    "description": SECURITY_DESCRIPTION,
                }
            },
        },
    }
