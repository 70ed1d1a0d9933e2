"""The OpenAPI document, the offline Swagger UI page, and their agreement with the server."""

import re
from html.parser import HTMLParser

import orjson
import pytest
from openapi_spec_validator import validate

from dealer.config import MAX_BODY_BYTES
from dealer.openapi import build_document
from tests.conftest import AUTO, PASSWORD, USERNAME

DOCUMENT = build_document()
SCHEMAS = DOCUMENT["components"]["schemas"]
RESPONSES = DOCUMENT["components"]["responses"]
MARK_SCHEMA = DOCUMENT["paths"]["/auto/{mark}"]["parameters"][0]["schema"]
ASSET_CONTENT_TYPES = {".css": "text/css", ".js": "text/javascript", ".png": "image/png", ".map": "application/json"}


def _example(response_name: str, example_name: str) -> dict:
    return RESPONSES[response_name]["content"]["application/json"]["examples"][example_name]["value"]


def _text_limits(schema_name: str) -> list[tuple[str, int]]:
    properties = SCHEMAS[schema_name]["properties"]
    return [
        (name, spec["maxLength"]) for name, spec in properties.items() if spec["type"] == "string" and name != "mark"
    ]


def _number_fields(schema_name: str) -> list[str]:
    return [name for name, spec in SCHEMAS[schema_name]["properties"].items() if spec["type"] == "number"]


def _too_long_message(name: str, limit: int) -> dict:
    return {"Error": f"Field '{name}' must be a non-empty string of at most {limit} characters"}


class _AssetLinks(HTMLParser):
    """Collects the `src` and `href` attributes of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.links.extend(value for name, value in attrs if name in ("src", "href") and value)


async def _page_links(client) -> list[str]:
    parser = _AssetLinks()
    parser.feed(await (await client.get("/docs")).text())
    return parser.links


# The document


async def test_served_document_is_valid_openapi(client):
    response = await client.get("/openapi.json")

    assert response.status == 200
    assert response.content_type == "application/json"
    validate(await response.json())


async def test_served_document_equals_built_document(client):
    response = await client.get("/openapi.json")

    assert await response.json() == orjson.loads(orjson.dumps(DOCUMENT))


async def test_document_lists_every_route(client):
    served = set()
    for route in client.app.router.routes():
        path = route.resource.canonical
        if route.method != "HEAD" and not path.startswith("/docs/"):
            served.add((route.method.lower(), path))
    documented = {
        (method, path) for path, item in DOCUMENT["paths"].items() for method in item if method != "parameters"
    }

    assert documented == served


def test_security_scheme_is_bearer_and_mentions_jwt():
    scheme = DOCUMENT["components"]["securitySchemes"]["BearerAuth"]

    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")
    assert "`Authorization: JWT <token>`" in scheme["description"]


def test_request_schemas_reject_unknown_keys():
    for name in ("Credentials", "NewAuto", "AutoChanges"):
        assert SCHEMAS[name]["additionalProperties"] is False, name


# Swagger UI


async def test_docs_page_loads_without_token(client):
    response = await client.get("/docs")

    assert response.status == 200
    assert response.content_type == "text/html"
    assert 'url: "/openapi.json"' in await response.text()


async def test_docs_page_references_only_local_assets(client):
    links = await _page_links(client)

    assert links
    assert [link for link in links if not link.startswith("/docs/")] == []


async def test_docs_assets_load_with_content_types(client):
    for link in await _page_links(client):
        response = await client.get(link)
        extension = "." + link.rsplit(".", 1)[1]

        assert response.status == 200, link
        assert response.content_type == ASSET_CONTENT_TYPES[extension], link


async def test_docs_source_maps_load(client):
    for link in await _page_links(client):
        if not link.endswith((".js", ".css")):
            continue
        text = await (await client.get(link)).text()
        source_map = re.search(r"sourceMappingURL=(\S+?)\s*(\*/)?\s*$", text)
        assert source_map is not None, link
        response = await client.get(f"/docs/{source_map.group(1)}")

        assert response.status == 200, link
        assert response.content_type == "application/json", link


async def test_docs_unknown_asset_is_not_found(client):
    response = await client.get("/docs/index.html")

    assert response.status == 404
    assert await response.json() == {"Error": "Not found"}


async def test_docs_trailing_slash_redirects(client):
    response = await client.get("/docs/", allow_redirects=False)

    assert response.status == 301
    assert response.headers["Location"] == "/docs"


# The document agrees with the validators


@pytest.mark.parametrize(("name", "limit"), _text_limits("Credentials"))
async def test_credential_at_max_length_registers(client, name, limit):
    credentials = {"username": USERNAME, "password": PASSWORD, name: "я" * limit}

    response = await client.post("/register", json=credentials)

    assert response.status == 201


@pytest.mark.parametrize(("name", "limit"), _text_limits("Credentials"))
async def test_credential_past_max_length_is_rejected(client, name, limit):
    credentials = {"username": USERNAME, "password": PASSWORD, name: "я" * (limit + 1)}

    response = await client.post("/register", json=credentials)

    assert response.status == 400
    assert await response.json() == _too_long_message(name, limit)


@pytest.mark.parametrize("name", SCHEMAS["Credentials"]["required"])
async def test_credential_empty_is_rejected(client, name):
    credentials = {"username": USERNAME, "password": PASSWORD, name: ""}

    response = await client.post("/register", json=credentials)

    assert SCHEMAS["Credentials"]["properties"][name]["minLength"] == 1
    assert response.status == 400
    assert await response.json() == _too_long_message(name, SCHEMAS["Credentials"]["properties"][name]["maxLength"])


@pytest.mark.parametrize(("name", "limit"), _text_limits("NewAuto"))
async def test_auto_text_at_max_length_is_created(client, auth_headers, name, limit):
    response = await client.post("/auto/BMW", json={**AUTO, name: "я" * limit}, headers=auth_headers)

    assert response.status == 201


@pytest.mark.parametrize(("name", "limit"), _text_limits("NewAuto"))
async def test_auto_text_past_max_length_is_rejected(client, auth_headers, name, limit):
    response = await client.post("/auto/BMW", json={**AUTO, name: "я" * (limit + 1)}, headers=auth_headers)

    assert response.status == 400
    assert await response.json() == _too_long_message(name, limit)


@pytest.mark.parametrize("name", _number_fields("NewAuto"))
async def test_auto_number_at_minimum_is_created(client, auth_headers, name):
    minimum = SCHEMAS["NewAuto"]["properties"][name]["minimum"]

    response = await client.post("/auto/BMW", json={**AUTO, name: minimum}, headers=auth_headers)

    assert response.status == 201


@pytest.mark.parametrize("name", _number_fields("NewAuto"))
async def test_auto_number_below_minimum_is_rejected(client, auth_headers, name):
    minimum = SCHEMAS["NewAuto"]["properties"][name]["minimum"]

    response = await client.post("/auto/BMW", json={**AUTO, name: minimum - 0.5}, headers=auth_headers)

    assert response.status == 400
    assert await response.json() == {"Error": f"Field '{name}' must be a non-negative number"}


@pytest.mark.parametrize("name", SCHEMAS["NewAuto"]["required"])
async def test_auto_without_required_field_is_rejected(client, auth_headers, name):
    body = {key: value for key, value in AUTO.items() if key != name}

    response = await client.post("/auto/BMW", json=body, headers=auth_headers)

    assert response.status == 400
    assert await response.json() == {"Error": f"Field '{name}' is required"}


async def test_matching_body_mark_is_accepted(client, auth_headers):
    response = await client.post("/auto/BMW", json={"mark": "BMW", **AUTO}, headers=auth_headers)

    assert "mark" in SCHEMAS["NewAuto"]["properties"]
    assert response.status == 201


async def test_mark_at_max_length_is_created(client, auth_headers):
    mark = "Л" * MARK_SCHEMA["maxLength"]

    response = await client.post(f"/auto/{mark}", json=AUTO, headers=auth_headers)

    assert response.status == 201


async def test_mark_past_max_length_is_rejected(client, auth_headers):
    mark = "Л" * (MARK_SCHEMA["maxLength"] + 1)

    response = await client.post(f"/auto/{mark}", json=AUTO, headers=auth_headers)

    assert response.status == 400
    assert await response.json() == _example("AutoInvalid", "mark too long")


async def test_update_with_only_mark_is_rejected(client, auth_headers):
    await client.post("/auto/BMW", json=AUTO, headers=auth_headers)

    response = await client.put("/auto/BMW", json={"mark": "BMW"}, headers=auth_headers)

    assert [branch["required"] for branch in SCHEMAS["AutoChanges"]["anyOf"]] == [[name] for name in AUTO]
    assert response.status == 400
    assert await response.json() == _example("AutoInvalid", "no fields")


async def test_body_at_size_limit_is_accepted(client):
    body = orjson.dumps({"username": USERNAME, "password": PASSWORD})
    padded = body + b" " * (MAX_BODY_BYTES - len(body))

    response = await client.post("/register", data=padded)

    assert len(padded) == MAX_BODY_BYTES
    assert response.status == 201


async def test_body_past_size_limit_matches_document(client):
    body = orjson.dumps({"username": USERNAME, "password": PASSWORD})
    padded = body + b" " * (MAX_BODY_BYTES + 1 - len(body))

    response = await client.post("/register", data=padded)

    assert response.status == 413
    assert await response.json() == RESPONSES["BodyTooLarge"]["content"]["application/json"]["example"]


# Documented messages and headers are what the server sends


async def test_missing_token_matches_document(client):
    response = await client.get("/stock")
    unauthorized = RESPONSES["Unauthorized"]

    assert response.status == 401
    assert await response.json() == _example("Unauthorized", "missing header")
    assert response.headers["WWW-Authenticate"] == unauthorized["headers"]["WWW-Authenticate"]["example"]


@pytest.mark.parametrize(
    ("example_name", "authorization"),
    [("unknown scheme", "Basic dXNlcjpwYXNz"), ("malformed token", "Bearer not-a-jwt")],
)
async def test_token_problem_matches_document(client, example_name, authorization):
    response = await client.get("/stock", headers={"Authorization": authorization})

    assert response.status == 401
    assert await response.json() == _example("Unauthorized", example_name)
    assert "WWW-Authenticate" in response.headers


async def test_unknown_route_matches_document(client):
    response = await client.get("/no-such-route")

    assert response.status == 404
    assert await response.json() == RESPONSES["NotFound"]["content"]["application/json"]["example"]


async def test_wrong_method_matches_document(client, auth_headers):
    response = await client.patch("/stock", headers=auth_headers)

    assert response.status == 405
    assert await response.json() == RESPONSES["MethodNotAllowed"]["content"]["application/json"]["example"]
    assert "GET" in response.headers["Allow"]


async def test_unknown_auto_matches_document(client, auth_headers):
    response = await client.get("/auto/Volga", headers=auth_headers)

    assert response.status == 404
    assert await response.json() == RESPONSES["AutoNotFound"]["content"]["application/json"]["example"]
