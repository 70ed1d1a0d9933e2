"""Access tokens: each cause of 401 with its message and WWW-Authenticate header, the schemes, restarts."""

import asyncio
import base64
import os
import stat
import time

import jwt
import orjson
import pytest

from dealer import Config, create_app
from dealer.jwt_secret import secret_path
from dealer.tokens import TokenCodec
from tests.conftest import AUTO, PASSWORD, SECRET, USERNAME, issue_test_token, read_db, write_db, write_seeded_db

OTHER_SECRET = b"another-secret-of-at-least-32-bytes"
REALM = 'Bearer realm="dealer"'


def claims(**changes) -> dict:
    now = int(time.time())
    return {"sub": USERNAME, "iat": now, "exp": now + 3600, **changes}


def replace_payload(token: str, payload: dict) -> str:
    """Put another payload into a signed token, keeping its header and signature."""
    header, _, signature = token.split(".")
    encoded = base64.urlsafe_b64encode(orjson.dumps(payload)).rstrip(b"=").decode("ascii")
    return f"{header}.{encoded}.{signature}"


@pytest.fixture
def db_path(tmp_path):
    """A database with the test user and the auto BMW."""
    return write_seeded_db(tmp_path / "db.json")


@pytest.fixture
def token(client) -> str:
    """Access token of the test user, signed with the app's secret."""
    return issue_test_token()


async def log_in(client) -> str:
    response = await client.post("/auth", json={"username": USERNAME, "password": PASSWORD})
    assert response.status == 200
    return (await response.json())["access_token"]


async def assert_unauthorized(response, error: str) -> None:
    assert response.status == 401
    assert await response.json() == {"Error": error}
    assert response.headers["WWW-Authenticate"] == f'{REALM}, error="invalid_token", error_description="{error}"'


async def get_stock(client, authorization: str):
    return await client.get("/stock", headers={"Authorization": authorization})


# Missing or unusable Authorization header


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/stock"), ("GET", "/auto/BMW"), ("POST", "/auto/Audi"), ("PUT", "/auto/BMW"), ("DELETE", "/auto/BMW")],
)
async def test_missing_header(client, db_path, method, path):
    before = db_path.read_bytes()

    response = await client.request(method, path, json=AUTO)

    assert response.status == 401
    assert await response.json() == {"Error": "Missing Authorization header"}
    assert response.headers["WWW-Authenticate"] == REALM
    assert db_path.read_bytes() == before


@pytest.mark.parametrize("authorization", ["Basic c3R1ZGVudDpxd2VydA==", "Token abc", "abc", ""])
async def test_unknown_scheme(client, authorization):
    response = await get_stock(client, authorization)

    await assert_unauthorized(response, "Unsupported Authorization scheme; send 'Bearer <token>' or 'JWT <token>'")


@pytest.mark.parametrize("authorization", ["Bearer", "JWT", "Bearer   "])
async def test_scheme_without_token(client, authorization):
    response = await get_stock(client, authorization)

    await assert_unauthorized(response, "Authorization header has no token after the scheme")


@pytest.mark.parametrize("value", ["abc", "a.b.c", "eyJhbGciOiJIUzI1NiJ9.e30"])
async def test_malformed_token(client, value):
    response = await get_stock(client, f"Bearer {value}")

    await assert_unauthorized(response, "Token is malformed")


# Tokens that cannot be trusted


async def test_token_signed_with_other_secret(client):
    forged = jwt.encode(claims(), OTHER_SECRET, algorithm="HS256")

    response = await get_stock(client, f"Bearer {forged}")

    await assert_unauthorized(response, "Token signature is invalid")


async def test_tampered_payload(client, token):
    tampered = replace_payload(token, claims(sub="admin"))

    response = await get_stock(client, f"Bearer {tampered}")

    await assert_unauthorized(response, "Token signature is invalid")


async def test_tampered_expiry(client, token):
    original = jwt.decode(token, SECRET, algorithms=["HS256"])
    tampered = replace_payload(token, {**original, "exp": original["exp"] + 86400})

    response = await get_stock(client, f"Bearer {tampered}")

    await assert_unauthorized(response, "Token signature is invalid")


async def test_alg_none_token(client):
    unsigned = jwt.encode(claims(), None, algorithm="none")

    response = await get_stock(client, f"Bearer {unsigned}")

    await assert_unauthorized(response, "Token algorithm is not allowed; only HS256 is accepted")


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
async def test_hs512_token_with_right_secret(client):
    other_algorithm = jwt.encode(claims(), SECRET, algorithm="HS512")

    response = await get_stock(client, f"Bearer {other_algorithm}")

    await assert_unauthorized(response, "Token algorithm is not allowed; only HS256 is accepted")


async def test_expired_token(client):
    now = int(time.time())
    expired = jwt.encode(claims(iat=now - 7200, exp=now - 3600), SECRET, algorithm="HS256")

    response = await get_stock(client, f"Bearer {expired}")

    await assert_unauthorized(response, "Token has expired")


async def test_token_issued_with_negative_ttl(client):
    expired = TokenCodec(SECRET, ttl=-1).issue(USERNAME)

    response = await get_stock(client, f"JWT {expired}")

    await assert_unauthorized(response, "Token has expired")


async def test_verified_token_expires(client):
    """The server caches a verified token, and must still reject it once its exp has passed."""
    expires_at = int(time.time()) + 1
    short_lived = jwt.encode(claims(exp=expires_at), SECRET, algorithm="HS256")
    first = await get_stock(client, f"Bearer {short_lived}")

    await asyncio.sleep(max(0.0, expires_at - time.time()) + 0.05)
    second = await get_stock(client, f"Bearer {short_lived}")

    assert first.status == 200
    await assert_unauthorized(second, "Token has expired")


@pytest.mark.parametrize("claim", ["sub", "iat", "exp"])
async def test_token_missing_claim(client, claim):
    payload = {name: value for name, value in claims().items() if name != claim}
    incomplete = jwt.encode(payload, SECRET, algorithm="HS256")

    response = await get_stock(client, f"Bearer {incomplete}")

    await assert_unauthorized(response, f"Token is missing the '{claim}' claim")


async def test_token_with_non_string_subject(client):
    numeric = jwt.encode(claims(sub=42), SECRET, algorithm="HS256")

    response = await get_stock(client, f"Bearer {numeric}")

    await assert_unauthorized(response, "Token is invalid: Subject must be a string")


async def test_token_of_unknown_user(client):
    stranger = TokenCodec(SECRET, 3600).issue("stranger")

    response = await get_stock(client, f"Bearer {stranger}")

    await assert_unauthorized(response, "Token names a user that does not exist")


async def test_token_of_deleted_user(aiohttp_client, client, config, db_path):
    token = await log_in(client)
    await client.close()
    write_db(db_path, autos={"BMW": AUTO})
    restarted = await aiohttp_client(create_app(config))

    response = await get_stock(restarted, f"Bearer {token}")

    await assert_unauthorized(response, "Token names a user that does not exist")


# Schemes


@pytest.mark.parametrize("scheme", ["Bearer", "JWT", "bearer", "BEARER", "jwt", "Jwt"])
async def test_accepted_schemes(client, token, scheme):
    response = await get_stock(client, f"{scheme} {token}")

    assert response.status == 200
    assert await response.json() == [{"mark": "BMW", **AUTO}]


async def test_token_from_auth_opens_every_route(client):
    headers = {"Authorization": f"JWT {await log_in(client)}"}

    responses = [
        await client.get("/stock", headers=headers),
        await client.post("/auto/Audi", json=AUTO, headers=headers),
        await client.get("/auto/Audi", headers=headers),
        await client.put("/auto/Audi", json={"max_speed": 250}, headers=headers),
        await client.delete("/auto/Audi", headers=headers),
    ]

    assert [response.status for response in responses] == [200, 201, 200, 202, 202]


# Credentials


async def test_wrong_password_and_unknown_user_look_alike(client):
    wrong_password = await client.post("/auth", json={"username": USERNAME, "password": "wrong"})
    unknown_user = await client.post("/auth", json={"username": "stranger", "password": PASSWORD})

    assert wrong_password.status == unknown_user.status == 401
    assert await wrong_password.read() == await unknown_user.read() == b'{"Error":"Invalid credentials"}'
    assert wrong_password.headers.get("WWW-Authenticate") == unknown_user.headers.get("WWW-Authenticate")
    assert wrong_password.headers["Content-Type"] == unknown_user.headers["Content-Type"]


async def test_password_is_case_sensitive(client):
    response = await client.post("/auth", json={"username": USERNAME, "password": PASSWORD.upper()})

    assert response.status == 401
    assert await response.json() == {"Error": "Invalid credentials"}


async def test_registered_user_logs_in(client, db_path):
    credentials = {"username": "Преподаватель", "password": "пароль"}
    await client.post("/register", json=credentials)

    response = await client.post("/auth", json=credentials)

    assert response.status == 200
    assert "Преподаватель" in read_db(db_path)["users"]


# The signing secret


async def test_token_survives_restart_with_secret_file(aiohttp_client, db_path):
    config = Config(db_path=db_path, jwt_secret=None)
    first = await aiohttp_client(create_app(config))
    token = await log_in(first)
    await first.close()

    restarted = await aiohttp_client(create_app(config))
    response = await get_stock(restarted, f"Bearer {token}")

    assert response.status == 200
    assert await response.json() == [{"mark": "BMW", **AUTO}]


async def test_secret_file_is_private(aiohttp_client, db_path):
    await aiohttp_client(create_app(Config(db_path=db_path, jwt_secret=None)))

    mode = os.stat(secret_path(db_path)).st_mode

    assert stat.S_IMODE(mode) == 0o600
    assert len(bytes.fromhex(secret_path(db_path).read_text(encoding="ascii"))) == 32


async def test_secret_file_signs_tokens(aiohttp_client, db_path):
    client = await aiohttp_client(create_app(Config(db_path=db_path, jwt_secret=None)))
    token = await log_in(client)

    secret = bytes.fromhex(secret_path(db_path).read_text(encoding="ascii"))

    assert jwt.decode(token, secret, algorithms=["HS256"])["sub"] == USERNAME


async def test_secret_not_in_db(aiohttp_client, db_path):
    await aiohttp_client(create_app(Config(db_path=db_path, jwt_secret=None)))

    secret_hex = secret_path(db_path).read_text(encoding="ascii").strip()

    assert secret_hex not in db_path.read_text(encoding="utf-8")


async def test_configured_secret_writes_no_file(client, db_path):
    assert not secret_path(db_path).exists()


async def test_token_rejected_after_secret_change(aiohttp_client, client, db_path):
    token = await log_in(client)
    await client.close()

    restarted = await aiohttp_client(create_app(Config(db_path=db_path, jwt_secret=OTHER_SECRET)))
    response = await get_stock(restarted, f"Bearer {token}")

    await assert_unauthorized(response, "Token signature is invalid")


@pytest.mark.parametrize("separator", ["\t", "  ", " \t "])
async def test_scheme_and_token_split_by_any_whitespace(client, token, separator):
    response = await get_stock(client, f"Bearer{separator}{token}")

    assert response.status == 200
