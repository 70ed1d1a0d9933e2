"""run.py as a real process on loopback: options, logs, shutdown and start-up failures."""

import os
import signal
import socket
import subprocess
import sys

import aiohttp
import pytest

from tests.conftest import AUTO, PASSWORD, ROOT, SHIPPED_DB, USERNAME, free_port, read_db, register_and_log_in

CREDENTIALS = {"username": USERNAME, "password": PASSWORD}

EXIT_TIMEOUT = 15


def error_lines(log: str) -> list[str]:
    return [line for line in log.splitlines() if " ERROR " in line]


def access_lines(log: str) -> list[str]:
    return [line for line in log.splitlines() if " aiohttp.access: " in line]


def start_with_env(server, env: dict[str, str], *args: str) -> None:
    """Start run.py with extra environment variables instead of the fixture's --port and --db."""
    log = server.log_path.open("ab")
    server.process = subprocess.Popen(
        [sys.executable, str(ROOT / "run.py"), *args],
        cwd=server.db_path.parent,
        env={**os.environ, **env},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    log.close()
    server.wait_until_listening()


async def test_help_lists_every_option(server):
    process = server.start("--help", wait=False)

    assert process.wait(EXIT_TIMEOUT) == 0
    help_text = server.log()
    for option in ("--host", "--port", "--db", "--token-ttl", "--jwt-secret"):
        assert option in help_text
    for variable in ("DEALER_HOST", "DEALER_PORT", "DEALER_DB", "DEALER_TOKEN_TTL", "DEALER_JWT_SECRET"):
        assert variable in help_text


async def test_start_logs_address_db_and_counts(server):
    server.start()

    log = server.log()
    assert f"Listening on http://127.0.0.1:{server.port} with database {server.db_path}" in log
    assert f"Loaded 0 users and 3 autos from {server.db_path}" in log


async def test_access_log_line_per_request(server):
    server.start()
    async with aiohttp.ClientSession() as session:
        headers = await register_and_log_in(session, server.base_url)
        async with session.get(f"{server.base_url}/stock", headers=headers) as response:
            assert response.status == 200
        async with session.get(f"{server.base_url}/nope") as response:
            assert response.status == 404
    assert server.stop() == 0

    lines = access_lines(server.log())
    token = headers["Authorization"].split()[1]
    assert token not in server.log()
    assert len(lines) == 4
    assert '"POST /register HTTP/1.1" 201' in lines[0]
    assert '"POST /auth HTTP/1.1" 200' in lines[1]
    assert '"GET /stock HTTP/1.1" 200' in lines[2]
    assert '"GET /nope HTTP/1.1" 404' in lines[3]


async def test_sigterm_exits_cleanly(server):
    server.start()

    assert server.stop() == 0
    assert "Stopped" in server.log()
    assert "Traceback" not in server.log()


async def test_changes_survive_process_restart(server):
    server.start()
    async with aiohttp.ClientSession() as session:
        headers = await register_and_log_in(session, server.base_url)
        async with session.post(f"{server.base_url}/auto/Лада%20Гранта", json=AUTO, headers=headers) as response:
            assert response.status == 201
    assert server.stop() == 0

    server.start()
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{server.base_url}/auto/Лада%20Гранта", headers=headers) as response:
            body = await response.json()
    assert server.stop() == 0

    assert response.status == 200
    assert body == {"mark": "Лада Гранта", **AUTO}


async def test_port_in_use(server):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]

        process = server.start("--port", str(port), wait=False)
        returncode = process.wait(EXIT_TIMEOUT)

    log = server.log()
    assert returncode == 1
    assert len(error_lines(log)) == 1
    assert f"Cannot listen on 127.0.0.1:{port}" in error_lines(log)[0]
    assert "address already in use" in error_lines(log)[0]
    assert "Traceback" not in log


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b'{\n  "users": {},\n  "autos": {\n', "invalid JSON at line 4, column 1: unexpected end of data"),
        (
            b'{"users": {}, "autos": {"BMW": {"max_speed": "fast"}}}\n',
            "autos[\"BMW\"]: Field 'max_speed' must be a non-negative number",
        ),
    ],
)
async def test_unusable_db_stops_start(server, content, problem):
    server.db_path.write_bytes(content)

    process = server.start(wait=False)
    returncode = process.wait(EXIT_TIMEOUT)

    log = server.log()
    assert returncode == 2
    assert len(error_lines(log)) == 1
    assert error_lines(log)[0].endswith(f"{server.db_path}: {problem}")
    assert "Traceback" not in log
    assert server.db_path.read_bytes() == content


async def test_second_server_on_same_db(server):
    first = server.start()
    try:
        second = server.start(wait=False)
        returncode = second.wait(EXIT_TIMEOUT)
    finally:
        first.terminate()
        first.wait(EXIT_TIMEOUT)

    log = server.log()
    assert returncode == 2
    assert len(error_lines(log)) == 1
    assert f"{server.db_path} is already used by another dealer server" in error_lines(log)[0]
    assert "Traceback" not in log


async def test_env_sets_port_db_and_ttl(server):
    db_path = server.db_path.with_name("from-env.json")
    server.port = free_port()
    env = {"DEALER_PORT": str(server.port), "DEALER_DB": str(db_path), "DEALER_TOKEN_TTL": "120"}

    start_with_env(server, env)
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{server.base_url}/register", json=CREDENTIALS) as response:
            assert response.status == 201
        async with session.post(f"{server.base_url}/auth", json=CREDENTIALS) as response:
            body = await response.json()
    assert server.stop() == 0

    assert body["expires_in"] == 120
    assert f"Listening on http://127.0.0.1:{server.port} with database {db_path}" in server.log()
    assert list(read_db(db_path)["users"]) == [USERNAME]
    assert server.db_path.read_bytes() == SHIPPED_DB.read_bytes()


async def test_invalid_port_in_env(server):
    process = subprocess.run(
        [sys.executable, str(ROOT / "run.py")],
        cwd=server.db_path.parent,
        env={**os.environ, "DEALER_PORT": "eighty"},
        capture_output=True,
        text=True,
        timeout=EXIT_TIMEOUT,
    )

    assert process.returncode == 2
    assert "Traceback" not in process.stderr
    assert "argument --port: invalid int value: 'eighty'" in process.stderr


async def test_zero_token_ttl_rejected(server):
    process = server.start("--token-ttl", "0", wait=False)

    assert process.wait(EXIT_TIMEOUT) == 2
    assert "--token-ttl must be from 1 to 315360000 seconds (10 years)" in server.log()


async def test_ctrl_c_exits_cleanly(server):
    process = server.start()

    process.send_signal(signal.SIGINT)

    assert process.wait(EXIT_TIMEOUT) == 0
    assert "Stopped" in server.log()
    assert "Traceback" not in server.log()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--port", "99999"), "--port must be from 1 to 65535, not 99999"),
        (("--db", ""), "--db must name a file, such as db.json, not '.'"),
        (("--jwt-secret", "short"), "--jwt-secret must be at least 32 bytes, as HS256 needs"),
        (("--host", ""), "--host must not be empty"),
        (("--token-ttl", "99999999999999999999"), "--token-ttl must be from 1 to 315360000 seconds"),
    ],
)
async def test_invalid_option_rejected(server, args, message):
    process = server.start(*args, wait=False)

    assert process.wait(EXIT_TIMEOUT) == 2
    assert message in server.log()
    assert "Traceback" not in server.log()


async def test_db_in_missing_folder_rejected(server):
    db_path = server.db_path.parent / "missing" / "db.json"

    process = server.start("--db", str(db_path), wait=False)

    assert process.wait(EXIT_TIMEOUT) == 2
    assert f"{db_path}: the folder {db_path.parent} does not exist; create it first" in server.log()
    assert not db_path.parent.exists()


async def test_db_that_is_a_folder_rejected(server):
    folder = server.db_path.parent / "data"
    folder.mkdir()

    process = server.start("--db", str(folder), wait=False)

    assert process.wait(EXIT_TIMEOUT) == 2
    assert f"{folder} is a folder; name a file, such as {folder / 'db.json'}" in server.log()
    assert not folder.with_name("data.lock").exists()
