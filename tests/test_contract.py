"""Every route of the contract, with its status codes and exact bodies on success and failure."""

import jwt
import pytest

from dealer import Config, create_app
from tests.conftest import AUTO, PASSWORD, SECRET, USERNAME, write_db

CREDENTIALS = {"username": USERNAME, "password": PASSWORD}
LADA = {"max_speed": 180, "distance": 600, "handler": "АвтоВАЗ", "stock": "Россия"}
TOYOTA = {"max_speed": 210, "distance": 750, "handler": "Toyota Motor", "stock": "Japan"}


async def assert_json(response, status: int, body: object) -> None:
    assert response.status == status
    assert response.content_type == "application/json"
    assert await response.json() == body


# POST /register


async def test_register_new_user(client):
    response = await client.post("/register", json=CREDENTIALS)

    await assert_json(response, 201, {"Message": "User created. Try to auth"})


async def test_register_existing_user(client):
    await client.post("/register", json=CREDENTIALS)

    response = await client.post("/register", json={"username": USERNAME, "password": "other"})

    await assert_json(response, 400, {"Error": "User already exists"})


# POST /auth


async def test_auth_returns_access_token(client):
    await client.post("/register", json=CREDENTIALS)

    response = await client.post("/auth", json=CREDENTIALS)
    body = await response.json()

    assert response.status == 200
    assert set(body) == {"access_token", "token_type", "expires_in"}
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3600
    assert isinstance(body["access_token"], str)


async def test_auth_token_claims(client):
    await client.post("/register", json=CREDENTIALS)

    response = await client.post("/auth", json=CREDENTIALS)
    token = (await response.json())["access_token"]
    claims = jwt.decode(token, SECRET, algorithms=["HS256"])

    assert jwt.get_unverified_header(token)["alg"] == "HS256"
    assert set(claims) == {"sub", "iat", "exp"}
    assert claims["sub"] == USERNAME
    assert claims["exp"] - claims["iat"] == 3600


async def test_auth_token_ttl_from_config(aiohttp_client, db_path):
    client = await aiohttp_client(create_app(Config(db_path=db_path, jwt_secret=SECRET, token_ttl=120)))
    await client.post("/register", json=CREDENTIALS)

    response = await client.post("/auth", json=CREDENTIALS)
    body = await response.json()
    claims = jwt.decode(body["access_token"], SECRET, algorithms=["HS256"])

    assert body["expires_in"] == 120
    assert claims["exp"] - claims["iat"] == 120


async def test_auth_wrong_password(client):
    await client.post("/register", json=CREDENTIALS)

    response = await client.post("/auth", json={"username": USERNAME, "password": "wrong"})

    await assert_json(response, 401, {"Error": "Invalid credentials"})


async def test_auth_unknown_user(client):
    response = await client.post("/auth", json=CREDENTIALS)

    await assert_json(response, 401, {"Error": "Invalid credentials"})


# GET /auto/<mark>


async def test_get_auto(client, auth_headers):
    await client.post("/auto/BMW", json=AUTO, headers=auth_headers)

    response = await client.get("/auto/BMW", headers=auth_headers)

    await assert_json(response, 200, {"mark": "BMW", **AUTO})


async def test_get_auto_keys_in_contract_order(client, auth_headers):
    await client.post("/auto/BMW", json=dict(reversed(AUTO.items())), headers=auth_headers)

    response = await client.get("/auto/BMW", headers=auth_headers)

    assert await response.text() == (
        '{"mark":"BMW","max_speed":280,"distance":400,"handler":"Auto Motors","stock":"Germany"}'
    )


async def test_get_auto_not_found(client, auth_headers):
    response = await client.get("/auto/BMW", headers=auth_headers)

    await assert_json(response, 404, {"Error": "Auto with that mark not found"})


async def test_get_auto_mark_is_case_sensitive(client, auth_headers):
    await client.post("/auto/BMW", json=AUTO, headers=auth_headers)

    response = await client.get("/auto/bmw", headers=auth_headers)

    await assert_json(response, 404, {"Error": "Auto with that mark not found"})


# POST /auto/<mark>


async def test_create_auto(client, auth_headers):
    response = await client.post("/auto/BMW", json=AUTO, headers=auth_headers)

    await assert_json(response, 201, {"Message": "Auto created"})


async def test_create_auto_existing_mark(client, auth_headers):
    await client.post("/auto/BMW", json=AUTO, headers=auth_headers)

    response = await client.post("/auto/BMW", json={**AUTO, "max_speed": 1}, headers=auth_headers)
    fetched = await client.get("/auto/BMW", headers=auth_headers)

    await assert_json(response, 400, {"Error": "Auto with that mark exists"})
    assert await fetched.json() == {"mark": "BMW", **AUTO}


# PUT /auto/<mark>


async def test_update_auto(client, auth_headers):
    await client.post("/auto/BMW", json=AUTO, headers=auth_headers)

    response = await client.put("/auto/BMW", json={"max_speed": 300}, headers=auth_headers)
    fetched = await client.get("/auto/BMW", headers=auth_headers)

    await assert_json(response, 202, {"Message": "Auto updated"})
    assert await fetched.json() == {"mark": "BMW", **AUTO, "max_speed": 300}


async def test_update_auto_not_found(client, auth_headers):
    response = await client.put("/auto/BMW", json={"max_speed": 300}, headers=auth_headers)

    await assert_json(response, 404, {"Error": "Auto with that mark not found"})


# DELETE /auto/<mark>


async def test_delete_auto(client, auth_headers):
    await client.post("/auto/BMW", json=AUTO, headers=auth_headers)

    response = await client.delete("/auto/BMW", headers=auth_headers)
    fetched = await client.get("/auto/BMW", headers=auth_headers)

    await assert_json(response, 202, {"Message": "Auto deleted"})
    await assert_json(fetched, 404, {"Error": "Auto with that mark not found"})


async def test_delete_auto_not_found(client, auth_headers):
    response = await client.delete("/auto/BMW", headers=auth_headers)

    await assert_json(response, 404, {"Error": "Auto with that mark not found"})


# GET /stock


async def test_stock_empty(client, auth_headers):
    response = await client.get("/stock", headers=auth_headers)

    await assert_json(response, 400, {"Error": "No one autos found in DataBase"})


async def test_stock_in_creation_order(client, auth_headers):
    await client.post("/auto/Toyota Camry", json=TOYOTA, headers=auth_headers)
    await client.post("/auto/BMW", json=AUTO, headers=auth_headers)
    await client.post("/auto/Лада Веста", json=LADA, headers=auth_headers)

    response = await client.get("/stock", headers=auth_headers)

    await assert_json(
        response,
        200,
        [
            {"mark": "Toyota Camry", **TOYOTA},
            {"mark": "BMW", **AUTO},
            {"mark": "Лада Веста", **LADA},
        ],
    )


async def test_stock_in_file_order(aiohttp_client, db_path, config):
    autos = {"Лада Веста": LADA, "BMW": AUTO, "Toyota Camry": TOYOTA}
    write_db(db_path, autos=autos)
    client = await aiohttp_client(create_app(config))
    await client.post("/register", json=CREDENTIALS)
    token = (await (await client.post("/auth", json=CREDENTIALS)).json())["access_token"]

    response = await client.get("/stock", headers={"Authorization": f"JWT {token}"})

    await assert_json(response, 200, [{"mark": mark, **fields} for mark, fields in autos.items()])


async def test_stock_keeps_order_after_update(client, auth_headers):
    await client.post("/auto/BMW", json=AUTO, headers=auth_headers)
    await client.post("/auto/Лада Веста", json=LADA, headers=auth_headers)
    await client.put("/auto/BMW", json={"distance": 1}, headers=auth_headers)

    response = await client.get("/stock", headers=auth_headers)

    assert [auto["mark"] for auto in await response.json()] == ["BMW", "Лада Веста"]


async def test_stock_empty_after_last_delete(client, auth_headers):
    await client.post("/auto/BMW", json=AUTO, headers=auth_headers)
    await client.delete("/auto/BMW", headers=auth_headers)

    response = await client.get("/stock", headers=auth_headers)

    await assert_json(response, 400, {"Error": "No one autos found in DataBase"})


# Marks in the URL


@pytest.mark.parametrize(
    "path",
    [
        "/auto/Лада%20Веста",
        "/auto/%D0%9B%D0%B0%D0%B4%D0%B0%20%D0%92%D0%B5%D1%81%D1%82%D0%B0",
        "/auto/Лада Веста",
    ],
)
async def test_cyrillic_mark_spellings(client, auth_headers, path):
    created = await client.post(path, json=LADA, headers=auth_headers)
    fetched = await client.get("/auto/Лада%20Веста", headers=auth_headers)

    await assert_json(created, 201, {"Message": "Auto created"})
    await assert_json(fetched, 200, {"mark": "Лада Веста", **LADA})


async def test_cyrillic_mark_full_cycle(client, auth_headers):
    path = "/auto/Лада%20Веста"

    created = await client.post(path, json=LADA, headers=auth_headers)
    updated = await client.put(path, json={"stock": "Казахстан"}, headers=auth_headers)
    fetched = await client.get(path, headers=auth_headers)
    deleted = await client.delete(path, headers=auth_headers)

    assert created.status == 201
    assert updated.status == 202
    await assert_json(fetched, 200, {"mark": "Лада Веста", **LADA, "stock": "Казахстан"})
    assert deleted.status == 202


async def test_encoded_slash_in_mark(client, auth_headers):
    created = await client.post("/auto/A%2FB", json=AUTO, headers=auth_headers)
    fetched = await client.get("/auto/A%2FB", headers=auth_headers)

    assert created.status == 201
    await assert_json(fetched, 200, {"mark": "A/B", **AUTO})


# Unknown routes and wrong methods


@pytest.mark.parametrize("path", ["/", "/nope", "/auto", "/stock/extra", "/register/extra"])
async def test_unknown_route(client, path):
    response = await client.get(path)

    await assert_json(response, 404, {"Error": "Not found"})


async def test_unknown_route_under_auto_with_token(client, auth_headers):
    response = await client.get("/auto/BMW/extra", headers=auth_headers)

    await assert_json(response, 404, {"Error": "Not found"})


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("GET", "/register", "POST"),
        ("PUT", "/auth", "POST"),
        ("DELETE", "/register", "POST"),
    ],
)
async def test_wrong_method_on_open_route(client, method, path, allow):
    response = await client.request(method, path)

    await assert_json(response, 405, {"Error": "Method not allowed"})
    assert response.headers["Allow"] == allow


async def test_wrong_method_on_stock(client, auth_headers):
    response = await client.post("/stock", headers=auth_headers)

    await assert_json(response, 405, {"Error": "Method not allowed"})
    assert set(response.headers["Allow"].split(",")) == {"GET", "HEAD"}


async def test_wrong_method_on_auto(client, auth_headers):
    response = await client.patch("/auto/BMW", json={"max_speed": 1}, headers=auth_headers)

    await assert_json(response, 405, {"Error": "Method not allowed"})
    assert set(response.headers["Allow"].split(",")) == {"DELETE", "GET", "HEAD", "POST", "PUT"}


# Unexpected failures


async def test_unexpected_exception_is_500(aiohttp_client, config, caplog):
    async def fail(request):
        raise RuntimeError("boom in a handler")

    app = create_app(config)
    app.router.add_get("/fail", fail)
    client = await aiohttp_client(app)

    response = await client.get("/fail")

    await assert_json(response, 500, {"Error": "Internal server error"})
    assert "RuntimeError: boom in a handler" in caplog.text
    assert "Traceback" in caplog.text


async def test_mark_with_braces(client, auth_headers):
    created = await client.post("/auto/Model%20%7BX%7D", json=AUTO, headers=auth_headers)
    fetched = await client.get("/auto/Model%20%7BX%7D", headers=auth_headers)

    assert created.status == 201
    assert await fetched.json() == {"mark": "Model {X}", **AUTO}
