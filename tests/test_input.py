"""Input rules: each violation gets 400 naming the field and the problem, and db.json keeps its content."""

import orjson
import pytest

from dealer.config import MAX_BODY_BYTES
from tests.conftest import AUTO, PASSWORD, issue_test_token, read_db, write_seeded_db

USERNAME_PROBLEM = "Field 'username' must be a non-empty string of at most 150 characters"
PASSWORD_PROBLEM = "Field 'password' must be a non-empty string of at most 1024 characters"
NOT_AN_OBJECT = "Body must be a JSON object"
MARK_MISMATCH = "Field 'mark' must equal the mark in the URL"
EMPTY_UPDATE = "Body must contain at least one of the fields max_speed, distance, handler, stock"
MARK_LENGTH = "Mark must be 1 to 200 characters long"
TOO_LARGE = f"Request body is larger than {MAX_BODY_BYTES} bytes"


def number_problem(name: str) -> str:
    return f"Field '{name}' must be a non-negative number"


def text_problem(name: str) -> str:
    return f"Field '{name}' must be a non-empty string of at most 200 characters"


@pytest.fixture
def db_path(tmp_path):
    """A database with the test user and the auto BMW."""
    return write_seeded_db(tmp_path / "db.json")


@pytest.fixture
def token(client) -> str:
    """Access token of the test user, signed with the app's secret."""
    return issue_test_token()


async def assert_rejected(client, db_path, method, path, status, error, **request) -> None:
    """Send a request, then check the exact error response and that db.json did not change."""
    before = db_path.read_bytes()

    response = await client.request(method, path, **request)

    assert response.status == status
    assert response.content_type == "application/json"
    assert await response.json() == {"Error": error}
    assert db_path.read_bytes() == before


async def assert_accepted(client, method, path, status, **request) -> None:
    response = await client.request(method, path, **request)

    assert response.status == status, await response.text()


# The body as a whole


@pytest.mark.parametrize(
    ("raw", "error"),
    [
        (b"", "Body is not valid JSON: Input is a zero-length, empty document: line 1 column 1 (char 0)"),
        (
            b"username=student&password=qwert",
            "Body is not valid JSON: unexpected character, expected a JSON value: line 1 column 1 (char 0)",
        ),
        (b'{"username": "student",', "Body is not valid JSON: unexpected end of data: line 1 column 24 (char 23)"),
    ],
)
async def test_body_not_json(client, db_path, raw, error):
    await assert_rejected(client, db_path, "POST", "/register", 400, error, data=raw)


@pytest.mark.parametrize("raw", [b"[]", b'["student", "qwert"]', b'"student"', b"42", b"null", b"true"])
async def test_body_not_object(client, db_path, raw):
    await assert_rejected(client, db_path, "POST", "/register", 400, NOT_AN_OBJECT, data=raw)


async def test_body_not_object_on_auto(client, db_path, auth_headers):
    await assert_rejected(
        client, db_path, "POST", "/auto/Audi", 400, NOT_AN_OBJECT, data=orjson.dumps([AUTO]), headers=auth_headers
    )


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "application/octet-stream"])
async def test_body_parsed_whatever_content_type(client, content_type):
    body = orjson.dumps({"username": "teacher", "password": "12345"})

    response = await client.post("/register", data=body, headers={"Content-Type": content_type})

    assert response.status == 201
    assert await response.json() == {"Message": "User created. Try to auth"}


async def test_auto_body_as_text_plain(client, auth_headers):
    headers = {**auth_headers, "Content-Type": "text/plain"}

    await assert_accepted(client, "POST", "/auto/Audi", 201, data=orjson.dumps(AUTO), headers=headers)


async def test_body_over_limit(client, db_path):
    raw = b'{"username": "' + b"x" * MAX_BODY_BYTES + b'", "password": "qwert"}'

    await assert_rejected(client, db_path, "POST", "/register", 413, TOO_LARGE, data=raw)


async def test_auto_body_over_limit(client, db_path, auth_headers):
    raw = orjson.dumps({**AUTO, "handler": "x" * MAX_BODY_BYTES})

    await assert_rejected(client, db_path, "POST", "/auto/Audi", 413, TOO_LARGE, data=raw, headers=auth_headers)


async def test_body_at_limit_is_read(client, db_path):
    """A body of exactly the limit is parsed, so the client gets the 400 of its invalid field, not 413."""
    head, tail = b'{"username": "', b'", "password": "qwert"}'
    raw = head + b"x" * (MAX_BODY_BYTES - len(head) - len(tail)) + tail
    assert len(raw) == MAX_BODY_BYTES

    await assert_rejected(client, db_path, "POST", "/register", 400, USERNAME_PROBLEM, data=raw)


# username and password, on both /register and /auth

CREDENTIAL_VIOLATIONS = [
    ({"username": "", "password": PASSWORD}, USERNAME_PROBLEM),
    ({"username": "x" * 151, "password": PASSWORD}, USERNAME_PROBLEM),
    ({"username": 42, "password": PASSWORD}, USERNAME_PROBLEM),
    ({"username": None, "password": PASSWORD}, USERNAME_PROBLEM),
    ({"username": ["student"], "password": PASSWORD}, USERNAME_PROBLEM),
    ({"password": PASSWORD}, "Field 'username' is required"),
    ({"username": "teacher", "password": ""}, PASSWORD_PROBLEM),
    ({"username": "teacher", "password": "x" * 1025}, PASSWORD_PROBLEM),
    ({"username": "teacher", "password": 12345}, PASSWORD_PROBLEM),
    ({"username": "teacher", "password": True}, PASSWORD_PROBLEM),
    ({"username": "teacher"}, "Field 'password' is required"),
    ({}, "Field 'username' is required"),
    (
        {"username": "teacher", "password": PASSWORD, "email": "t@example.com"},
        "Unknown field 'email'; allowed fields: username, password",
    ),
]


@pytest.mark.parametrize("path", ["/register", "/auth"])
@pytest.mark.parametrize(("body", "error"), CREDENTIAL_VIOLATIONS)
async def test_credentials_rejected(client, db_path, path, body, error):
    await assert_rejected(client, db_path, "POST", path, 400, error, json=body)


@pytest.mark.parametrize(
    "body",
    [
        {"username": "u" * 150, "password": PASSWORD},
        {"username": "t", "password": "p"},
        {"username": "teacher", "password": "x" * 1024},
        {"username": "Преподаватель", "password": "пароль"},
    ],
)
async def test_credentials_at_limits_accepted(client, db_path, body):
    await assert_accepted(client, "POST", "/register", 201, json=body)

    assert body["username"] in read_db(db_path)["users"]


async def test_long_password_logs_in(client):
    credentials = {"username": "teacher", "password": "я" * 1024}
    await client.post("/register", json=credentials)

    response = await client.post("/auth", json=credentials)

    assert response.status == 200


# Auto fields

NUMBER_VIOLATIONS = [True, False, "280", "", None, -1, -0.5, [280], {"value": 280}]


@pytest.mark.parametrize("name", ["max_speed", "distance"])
@pytest.mark.parametrize("value", NUMBER_VIOLATIONS)
async def test_number_field_rejected_on_post(client, db_path, auth_headers, name, value):
    body = {**AUTO, name: value}

    await assert_rejected(
        client, db_path, "POST", "/auto/Audi", 400, number_problem(name), json=body, headers=auth_headers
    )


@pytest.mark.parametrize("name", ["max_speed", "distance"])
@pytest.mark.parametrize("value", [True, "300", -1])
async def test_number_field_rejected_on_put(client, db_path, auth_headers, name, value):
    await assert_rejected(
        client, db_path, "PUT", "/auto/BMW", 400, number_problem(name), json={name: value}, headers=auth_headers
    )


@pytest.mark.parametrize(
    ("literal", "error"),
    [
        (b"NaN", "unexpected character, expected a JSON value: line 1 column 15 (char 14)"),
        (b"Infinity", "unexpected character, expected a JSON value: line 1 column 15 (char 14)"),
        (b"-Infinity", "no digit after sign: line 1 column 16 (char 15)"),
    ],
)
async def test_number_field_not_finite(client, db_path, auth_headers, literal, error):
    raw = b'{"max_speed": ' + literal + b', "distance": 400, "handler": "Auto Motors", "stock": "Germany"}'
    error = f"Body is not valid JSON: {error}"

    await assert_rejected(client, db_path, "POST", "/auto/Audi", 400, error, data=raw, headers=auth_headers)


async def test_number_field_overflowing_double(client, db_path, auth_headers):
    raw = b'{"max_speed": 1e400, "distance": 400, "handler": "Auto Motors", "stock": "Germany"}'
    error = "Body is not valid JSON: number is infinity when parsed as double: line 1 column 15 (char 14)"

    await assert_rejected(client, db_path, "POST", "/auto/Audi", 400, error, data=raw, headers=auth_headers)


async def test_ints_stay_ints(client, db_path, auth_headers):
    await client.post("/auto/Audi", json={**AUTO, "max_speed": 250, "distance": 0}, headers=auth_headers)

    response = await client.get("/auto/Audi", headers=auth_headers)
    stored = read_db(db_path)["autos"]["Audi"]

    assert await response.text() == (
        '{"mark":"Audi","max_speed":250,"distance":0,"handler":"Auto Motors","stock":"Germany"}'
    )
    assert type(stored["max_speed"]) is int
    assert type(stored["distance"]) is int
    assert '"max_speed": 250,' in db_path.read_text(encoding="utf-8")


async def test_floats_accepted(client, db_path, auth_headers):
    await assert_accepted(
        client, "POST", "/auto/Audi", 201, json={**AUTO, "max_speed": 250.5, "distance": 0.0}, headers=auth_headers
    )

    response = await client.get("/auto/Audi", headers=auth_headers)

    assert await response.json() == {"mark": "Audi", **AUTO, "max_speed": 250.5, "distance": 0.0}
    assert read_db(db_path)["autos"]["Audi"]["max_speed"] == 250.5


@pytest.mark.parametrize("name", ["handler", "stock"])
@pytest.mark.parametrize("value", ["", "x" * 201, 42, None, True, ["Germany"]])
async def test_text_field_rejected(client, db_path, auth_headers, name, value):
    body = {**AUTO, name: value}

    await assert_rejected(client, db_path, "POST", "/auto/Audi", 400, text_problem(name), json=body, headers=auth_headers)


@pytest.mark.parametrize("name", ["handler", "stock"])
async def test_text_field_rejected_on_put(client, db_path, auth_headers, name):
    await assert_rejected(
        client, db_path, "PUT", "/auto/BMW", 400, text_problem(name), json={name: ""}, headers=auth_headers
    )


@pytest.mark.parametrize("name", ["handler", "stock"])
async def test_text_field_at_limit_accepted(client, auth_headers, name):
    body = {**AUTO, name: "ж" * 200}

    await assert_accepted(client, "POST", "/auto/Audi", 201, json=body, headers=auth_headers)


@pytest.mark.parametrize("name", ["max_speed", "distance", "handler", "stock"])
async def test_post_needs_every_field(client, db_path, auth_headers, name):
    body = {key: value for key, value in AUTO.items() if key != name}

    await assert_rejected(
        client, db_path, "POST", "/auto/Audi", 400, f"Field '{name}' is required", json=body, headers=auth_headers
    )


async def test_post_empty_body(client, db_path, auth_headers):
    await assert_rejected(
        client, db_path, "POST", "/auto/Audi", 400, "Field 'max_speed' is required", json={}, headers=auth_headers
    )


@pytest.mark.parametrize("method", ["POST", "PUT"])
async def test_auto_unknown_field(client, db_path, auth_headers, method):
    body = {**AUTO, "color": "red"}
    error = "Unknown field 'color'; allowed fields: max_speed, distance, handler, stock"

    await assert_rejected(client, db_path, method, "/auto/BMW", 400, error, json=body, headers=auth_headers)


@pytest.mark.parametrize("update", [{"max_speed": 300}, {"distance": 1.5}, {"handler": "BMW AG"}, {"stock": "Россия"}])
async def test_put_changes_only_given_fields(client, db_path, auth_headers, update):
    await assert_accepted(client, "PUT", "/auto/BMW", 202, json=update, headers=auth_headers)

    response = await client.get("/auto/BMW", headers=auth_headers)

    assert await response.json() == {"mark": "BMW", **AUTO, **update}
    assert read_db(db_path)["autos"]["BMW"] == {**AUTO, **update}


async def test_put_two_fields(client, db_path, auth_headers):
    update = {"handler": "BMW AG", "distance": 500}

    await assert_accepted(client, "PUT", "/auto/BMW", 202, json=update, headers=auth_headers)

    assert read_db(db_path)["autos"]["BMW"] == {**AUTO, **update}


async def test_put_empty_body(client, db_path, auth_headers):
    await assert_rejected(client, db_path, "PUT", "/auto/BMW", 400, EMPTY_UPDATE, json={}, headers=auth_headers)


async def test_put_only_mark(client, db_path, auth_headers):
    await assert_rejected(
        client, db_path, "PUT", "/auto/BMW", 400, EMPTY_UPDATE, json={"mark": "BMW"}, headers=auth_headers
    )


# The mark, in the body and in the URL


async def test_get_answer_sent_back_as_put(client, db_path, auth_headers):
    fetched = await (await client.get("/auto/BMW", headers=auth_headers)).json()
    fetched["stock"] = "Austria"

    await assert_accepted(client, "PUT", "/auto/BMW", 202, json=fetched, headers=auth_headers)

    assert read_db(db_path)["autos"]["BMW"] == {**AUTO, "stock": "Austria"}


async def test_post_with_equal_mark(client, db_path, auth_headers):
    await assert_accepted(client, "POST", "/auto/Audi", 201, json={"mark": "Audi", **AUTO}, headers=auth_headers)

    assert read_db(db_path)["autos"]["Audi"] == AUTO


@pytest.mark.parametrize("method", ["POST", "PUT"])
@pytest.mark.parametrize("mark", ["Audi", "bmw", "BMW ", "", 1, None])
async def test_body_mark_differs_from_url(client, db_path, auth_headers, method, mark):
    body = {"mark": mark, **AUTO}

    await assert_rejected(client, db_path, method, "/auto/BMW", 400, MARK_MISMATCH, json=body, headers=auth_headers)


async def test_cyrillic_body_mark_equals_url(client, db_path, auth_headers):
    body = {"mark": "Лада Веста", **AUTO}

    await assert_accepted(client, "POST", "/auto/Лада%20Веста", 201, json=body, headers=auth_headers)

    assert read_db(db_path)["autos"]["Лада Веста"] == AUTO


@pytest.mark.parametrize("letter", ["a", "ж"])
async def test_mark_of_200_characters(client, db_path, auth_headers, letter):
    mark = letter * 200

    await assert_accepted(client, "POST", f"/auto/{mark}", 201, json=AUTO, headers=auth_headers)

    assert mark in read_db(db_path)["autos"]


@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "DELETE"])
async def test_mark_of_201_characters(client, db_path, auth_headers, method):
    await assert_rejected(
        client, db_path, method, "/auto/" + "ж" * 201, 400, MARK_LENGTH, json=AUTO, headers=auth_headers
    )


async def test_put_with_one_bad_field_changes_nothing(client, db_path, auth_headers):
    body = {"max_speed": 300, "distance": -1}

    await assert_rejected(
        client, db_path, "PUT", "/auto/BMW", 400, number_problem("distance"), json=body, headers=auth_headers
    )

    response = await client.get("/auto/BMW", headers=auth_headers)
    assert await response.json() == {"mark": "BMW", **AUTO}


@pytest.mark.parametrize(
    "literal",
    [b"18446744073709551616", b"100000000000000000000000", b"1.9e19"],
)
async def test_number_field_above_max(client, db_path, auth_headers, literal):
    raw = b'{"max_speed": ' + literal + b', "distance": 400, "handler": "Auto Motors", "stock": "Germany"}'
    error = "Field 'max_speed' must be at most 18446744073709551615"

    await assert_rejected(client, db_path, "POST", "/auto/Audi", 400, error, data=raw, headers=auth_headers)


async def test_number_field_at_max_stays_int(client, db_path, auth_headers):
    raw = b'{"max_speed": 18446744073709551615, "distance": 400, "handler": "Auto Motors", "stock": "Germany"}'

    created = await client.post("/auto/Audi", data=raw, headers=auth_headers)
    fetched = await client.get("/auto/Audi", headers=auth_headers)

    assert created.status == 201
    assert (await fetched.json())["max_speed"] == 18446744073709551615
    assert read_db(db_path)["autos"]["Audi"]["max_speed"] == 18446744073709551615


async def test_undecodable_content_encoding(client, db_path, auth_headers):
    headers = {**auth_headers, "Content-Encoding": "gzip"}
    raw = orjson.dumps(AUTO)

    response = await client.post("/auto/Audi", data=raw, headers=headers)

    assert response.status == 400
    assert (await response.json())["Error"].startswith("Request body cannot be read: ")
    assert "Audi" not in read_db(db_path)["autos"]
