"""db.json: its format, survival across restarts, rollback of failed writes, and bad files at start-up."""

import asyncio
import errno
import logging

import orjson
import pytest
from aiohttp.test_utils import TestServer

import dealer.store
from dealer import create_app
from dealer.errors import DatabaseFileError
from dealer.tokens import TokenCodec
from tests.conftest import AUTO, PASSWORD, SECRET, USERNAME, read_db, seeded_password_hash, write_db

LADA = {"max_speed": 180, "distance": 600, "handler": "АвтоВАЗ", "stock": "Россия"}
CREDENTIALS = {"username": USERNAME, "password": PASSWORD}
EMPTY_DB = b'{\n  "users": {},\n  "autos": {}\n}\n'


def auth_header(username: str = USERNAME) -> dict[str, str]:
    return {"Authorization": f"Bearer {TokenCodec(SECRET, 3600).issue(username)}"}


async def register(client, credentials: dict = CREDENTIALS) -> None:
    response = await client.post("/register", json=credentials)
    assert response.status == 201


# Restart on the same file


async def test_missing_file_created_empty(client, db_path):
    assert db_path.read_bytes() == EMPTY_DB


async def test_state_survives_restart(aiohttp_client, client, config, auth_headers):
    await client.post("/auto/BMW", json=AUTO, headers=auth_headers)
    await client.post("/auto/Лада Веста", json=LADA, headers=auth_headers)
    await client.post("/auto/Audi", json=AUTO, headers=auth_headers)
    await client.put("/auto/BMW", json={"stock": "Austria"}, headers=auth_headers)
    await client.delete("/auto/Audi", headers=auth_headers)
    await client.close()

    restarted = await aiohttp_client(create_app(config))
    login = await restarted.post("/auth", json=CREDENTIALS)
    stock = await restarted.get("/stock", headers=auth_headers)

    assert login.status == 200
    assert await stock.json() == [{"mark": "BMW", **AUTO, "stock": "Austria"}, {"mark": "Лада Веста", **LADA}]


async def test_user_survives_restart(aiohttp_client, client, config):
    await register(client)
    await client.close()

    restarted = await aiohttp_client(create_app(config))
    duplicate = await restarted.post("/register", json=CREDENTIALS)

    assert duplicate.status == 400
    assert await duplicate.json() == {"Error": "User already exists"}


async def test_restart_leaves_file_unchanged(aiohttp_client, client, config, db_path, auth_headers):
    await client.post("/auto/Лада Веста", json=LADA, headers=auth_headers)
    await client.close()
    before = db_path.read_bytes()

    await aiohttp_client(create_app(config))

    assert db_path.read_bytes() == before


# File format


async def test_file_exact_bytes(client, db_path, auth_headers):
    await client.post("/auto/Лада Веста", json=LADA, headers=auth_headers)
    await client.post("/auto/BMW", json={**AUTO, "distance": 400.5}, headers=auth_headers)

    password_hash = read_db(db_path)["users"][USERNAME]["password_hash"]

    assert db_path.read_text(encoding="utf-8") == (
        "{\n"
        '  "users": {\n'
        f'    "{USERNAME}": {{\n'
        f'      "password_hash": "{password_hash}"\n'
        "    }\n"
        "  },\n"
        '  "autos": {\n'
        '    "Лада Веста": {\n'
        '      "max_speed": 180,\n'
        '      "distance": 600,\n'
        '      "handler": "АвтоВАЗ",\n'
        '      "stock": "Россия"\n'
        "    },\n"
        '    "BMW": {\n'
        '      "max_speed": 280,\n'
        '      "distance": 400.5,\n'
        '      "handler": "Auto Motors",\n'
        '      "stock": "Germany"\n'
        "    }\n"
        "  }\n"
        "}\n"
    )


async def test_cyrillic_stored_unescaped(client, db_path, auth_headers):
    await client.post("/auto/Лада Веста", json=LADA, headers=auth_headers)

    raw = db_path.read_bytes()

    assert "Лада Веста".encode("utf-8") in raw
    assert "АвтоВАЗ".encode("utf-8") in raw
    assert b"\\u" not in raw


async def test_password_stored_as_scrypt_hash(client, db_path):
    password = "correct-horse-battery"
    await register(client, {"username": "teacher", "password": password})

    entry = read_db(db_path)["users"]["teacher"]

    assert list(entry) == ["password_hash"]
    assert entry["password_hash"].startswith("scrypt$")
    assert password not in db_path.read_text(encoding="utf-8")


async def test_equal_passwords_hash_differently(client, db_path):
    await register(client, {"username": "first", "password": PASSWORD})
    await register(client, {"username": "second", "password": PASSWORD})

    users = read_db(db_path)["users"]

    assert users["first"]["password_hash"] != users["second"]["password_hash"]


async def test_db_accepts_utf8_bom(aiohttp_client, config, db_path):
    db_path.write_bytes(b"\xef\xbb\xbf" + orjson.dumps({"users": {}, "autos": {"BMW": AUTO}}))
    client = await aiohttp_client(create_app(config))
    await register(client)

    response = await client.get("/auto/BMW", headers=auth_header())

    assert await response.json() == {"mark": "BMW", **AUTO}


# A write that fails


@pytest.fixture
def failing_disk(monkeypatch):
    """Make every db.json write fail with ENOSPC until `monkeypatch.undo()`."""

    async def write_fails(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("dealer.store.write_atomic", write_fails)
    return monkeypatch


def write_failed(db_path) -> dict:
    return {"Error": f"Could not save to {db_path}: No space left on device; nothing was changed"}


@pytest.fixture
async def stocked(aiohttp_client, config, db_path):
    """A client over a database with the test user and the autos BMW and Лада Веста."""
    write_db(db_path, autos={"BMW": AUTO, "Лада Веста": LADA})
    client = await aiohttp_client(create_app(config))
    await register(client)
    return client


async def test_failed_create_rolled_back(stocked, db_path, failing_disk):
    before = db_path.read_bytes()

    response = await stocked.post("/auto/Audi", json=AUTO, headers=auth_header())
    fetched = await stocked.get("/auto/Audi", headers=auth_header())

    assert response.status == 503
    assert await response.json() == write_failed(db_path)
    assert fetched.status == 404
    assert db_path.read_bytes() == before


async def test_failed_update_rolled_back(stocked, db_path, failing_disk):
    before = db_path.read_bytes()

    response = await stocked.put("/auto/BMW", json={"max_speed": 1}, headers=auth_header())
    fetched = await stocked.get("/auto/BMW", headers=auth_header())

    assert response.status == 503
    assert await response.json() == write_failed(db_path)
    assert await fetched.json() == {"mark": "BMW", **AUTO}
    assert db_path.read_bytes() == before


async def test_failed_delete_rolled_back_in_order(stocked, db_path, failing_disk):
    before = db_path.read_bytes()

    response = await stocked.delete("/auto/BMW", headers=auth_header())
    stock = await stocked.get("/stock", headers=auth_header())

    assert response.status == 503
    assert await response.json() == write_failed(db_path)
    assert await stock.json() == [{"mark": "BMW", **AUTO}, {"mark": "Лада Веста", **LADA}]
    assert db_path.read_bytes() == before


async def test_failed_register_rolled_back(stocked, db_path, failing_disk):
    before = db_path.read_bytes()
    credentials = {"username": "teacher", "password": PASSWORD}

    response = await stocked.post("/register", json=credentials)
    login = await stocked.post("/auth", json=credentials)

    assert response.status == 503
    assert await response.json() == write_failed(db_path)
    assert login.status == 401
    assert db_path.read_bytes() == before


async def test_failed_write_logged(stocked, db_path, failing_disk, caplog):
    await stocked.post("/auto/Audi", json=AUTO, headers=auth_header())

    assert f"Failed to write {db_path}, so 1 changes were undone: [Errno 28] No space left on device" in caplog.text


async def test_write_works_after_disk_recovers(stocked, db_path, failing_disk):
    await stocked.post("/auto/Audi", json=AUTO, headers=auth_header())
    failing_disk.undo()

    response = await stocked.post("/auto/Audi", json=AUTO, headers=auth_header())
    fetched = await stocked.get("/auto/Audi", headers=auth_header())

    assert response.status == 201
    assert await fetched.json() == {"mark": "Audi", **AUTO}
    assert read_db(db_path)["autos"]["Audi"] == AUTO


# Bad files at start-up


async def start_and_stop(config) -> None:
    """Start the app on a loopback port and stop it; a start-up error propagates."""
    server = TestServer(create_app(config))
    try:
        await server.start_server()
    finally:
        await server.close()


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b'{\n  "users": {},\n  "autos": {,}\n}\n', "invalid JSON at line 3, column 13: unexpected character, expected a string key"),
        (b'{"users": {}, "autos": {}', "invalid JSON at line 1, column 26: unexpected end of data"),
        (b"", "invalid JSON at line 1, column 1: Input is a zero-length, empty document"),
    ],
)
async def test_invalid_json_stops_start(config, db_path, content, problem):
    db_path.write_bytes(content)

    with pytest.raises(DatabaseFileError) as raised:
        await start_and_stop(config)

    assert str(raised.value) == f"{db_path}: {problem}"
    assert db_path.read_bytes() == content


@pytest.mark.parametrize(
    ("document", "problem"),
    [
        ([], 'the top level must be an object with the keys "users" and "autos"'),
        ({"users": {}, "autos": {}, "orders": {}}, 'the top level must be an object with the keys "users" and "autos"'),
        ({"users": [], "autos": {}}, '"users" must be an object'),
        ({"users": {}, "autos": [AUTO]}, '"autos" must be an object'),
        (
            {"users": {"student": {"password_hash": "qwert"}}, "autos": {}},
            'users["student"] must be {"password_hash": "scrypt$..."}, '
            'or {"password": "..."} to have the server hash a plaintext password',
        ),
        (
            {"users": {"student": "qwert"}, "autos": {}},
            'users["student"] must be {"password_hash": "scrypt$..."}, '
            'or {"password": "..."} to have the server hash a plaintext password',
        ),
        (
            {"users": {"": {"password": "qwert"}}, "autos": {}},
            'users[""]: Field \'username\' must be a non-empty string of at most 150 characters',
        ),
        ({"users": {}, "autos": {"BMW": "fast"}}, 'autos["BMW"] must be an object'),
        (
            {"users": {}, "autos": {"BMW": {**AUTO, "max_speed": -1}}},
            "autos[\"BMW\"]: Field 'max_speed' must be a non-negative number",
        ),
        (
            {"users": {}, "autos": {"Лада Веста": {"max_speed": 180}}},
            "autos[\"Лада Веста\"]: Field 'distance' is required",
        ),
        (
            {"users": {}, "autos": {"BMW": {**AUTO, "color": "red"}}},
            "autos[\"BMW\"]: Unknown field 'color'; allowed fields: max_speed, distance, handler, stock",
        ),
        (
            {"users": {}, "autos": {"x" * 201: AUTO}},
            f'autos["{"x" * 201}"]: Mark must be 1 to 200 characters long',
        ),
        (
            {"users": {}, "autos": {"BMW": {"mark": "Audi", **AUTO}}},
            'autos["BMW"]: "mark" inside the entry must equal its key, or be left out',
        ),
        (
            {"users": {"student": {"password": ""}}, "autos": {}},
            "users[\"student\"]: Field 'password' must be a non-empty string of at most 1024 characters",
        ),
    ],
)
async def test_wrong_shape_stops_start(config, db_path, document, problem):
    content = orjson.dumps(document, option=orjson.OPT_INDENT_2)
    db_path.write_bytes(content)

    with pytest.raises(DatabaseFileError) as raised:
        await start_and_stop(config)

    assert str(raised.value) == f"{db_path}: {problem}"
    assert db_path.read_bytes() == content


async def test_start_works_after_file_fixed(aiohttp_client, config, db_path):
    db_path.write_bytes(b"{")
    with pytest.raises(DatabaseFileError):
        await start_and_stop(config)

    write_db(db_path, autos={"BMW": AUTO})
    client = await aiohttp_client(create_app(config))
    await register(client)
    response = await client.get("/stock", headers=auth_header())

    assert await response.json() == [{"mark": "BMW", **AUTO}]


async def test_stale_temp_file_removed(aiohttp_client, config, db_path, caplog):
    write_db(db_path, autos={"BMW": AUTO})
    before = db_path.read_bytes()
    stale = db_path.with_name("db.json.tmp")
    stale.write_bytes(b'{"users": {}, "au')

    await aiohttp_client(create_app(config))

    assert not stale.exists()
    assert db_path.read_bytes() == before
    assert f"Removing {stale} left by an interrupted write" in caplog.text


# Users seeded by hand


@pytest.fixture
async def seeded(aiohttp_client, config, db_path, caplog):
    """A client over a database where the user `teacher` was seeded with a plaintext password."""
    caplog.set_level(logging.INFO)
    write_db(db_path, users={"teacher": {"password": "12345"}}, autos={"BMW": AUTO})
    return await aiohttp_client(create_app(config))


async def test_seeded_password_hashed_in_file(seeded, db_path):
    users = read_db(db_path)["users"]

    assert list(users) == ["teacher"]
    assert list(users["teacher"]) == ["password_hash"]
    assert users["teacher"]["password_hash"].startswith("scrypt$")
    assert '"password":' not in db_path.read_text(encoding="utf-8")
    assert "12345" not in db_path.read_text(encoding="utf-8")


async def test_seeded_file_rewritten_in_format(seeded, db_path):
    password_hash = read_db(db_path)["users"]["teacher"]["password_hash"]
    expected = {"users": {"teacher": {"password_hash": password_hash}}, "autos": {"BMW": AUTO}}

    assert db_path.read_bytes() == orjson.dumps(expected, option=orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE)


async def test_seeded_user_logs_in(seeded):
    response = await seeded.post("/auth", json={"username": "teacher", "password": "12345"})

    assert response.status == 200


async def test_seeded_user_wrong_password(seeded):
    response = await seeded.post("/auth", json={"username": "teacher", "password": "54321"})

    assert response.status == 401


def start_up_log(caplog) -> list[str]:
    """Messages logged while the `seeded` fixture started the app."""
    return [record.getMessage() for record in caplog.get_records("setup")]


async def test_seeding_logged(seeded, db_path, caplog):
    messages = start_up_log(caplog)

    assert f"Hashed the plaintext passwords of 1 users seeded by hand (teacher) and rewrote {db_path}" in messages
    assert not any("12345" in message for message in messages)


async def test_start_logs_counts(seeded, db_path, caplog):
    assert f"Loaded 1 users and 1 autos from {db_path}" in start_up_log(caplog)


@pytest.mark.parametrize("params", ["n=3,r=8,p=1", "n=1048576,r=64,p=1", "n=16384,r=0,p=1"])
async def test_hash_with_unusable_parameters_stops_start(config, db_path, params):
    password_hash = seeded_password_hash().replace("n=16384,r=8,p=1", params)
    write_db(db_path, users={USERNAME: {"password_hash": password_hash}})

    with pytest.raises(DatabaseFileError) as raised:
        await start_and_stop(config)

    assert str(raised.value).startswith(f'{db_path}: users["{USERNAME}"] must be {{"password_hash": "scrypt$..."}}')


async def test_seeded_while_disk_fails_rewritten_later(aiohttp_client, config, db_path, caplog, monkeypatch):
    write_db(db_path, autos={"BMW": AUTO})
    await aiohttp_client(create_app(config))
    write_atomic = dealer.store.write_atomic

    async def write_fails(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("dealer.store.write_atomic", write_fails)
    write_db(db_path, users={"teacher": {"password": "12345"}}, autos={"BMW": AUTO})
    await asyncio.sleep(2.5)
    still_plaintext = read_db(db_path)["users"]["teacher"]
    monkeypatch.setattr("dealer.store.write_atomic", write_atomic)
    await asyncio.sleep(1.5)

    failures = [record for record in caplog.records if "Failed to rewrite the hand edit" in record.getMessage()]
    assert still_plaintext == {"password": "12345"}
    assert len(failures) == 1
    assert list(read_db(db_path)["users"]["teacher"]) == ["password_hash"]
