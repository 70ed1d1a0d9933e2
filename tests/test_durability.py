"""db.json under stress, over a real `python run.py` process on loopback.

Crashes (SIGKILL in the middle of a burst of creates), races between
concurrent requests, a second server on the same file, hand edits while the
server runs, a write that the kernel refuses, and shutdown during changes.
`scripts/crash-test` runs more crash rounds than the suite does.
"""

import asyncio
import os
import random
import re
import resource
import signal
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import orjson
import pytest

from dealer.keys import STORE
from tests.conftest import AUTO, ServerProcess, read_db, register_and_log_in, write_db

CREATES_PER_ROUND = 200
CRASH_ROUNDS = 20
CONNECTION_LIMIT = 64
GROUP_COMMIT_WRITERS = 32
# Long enough for the 1-second hand-edit watcher to run at least twice.
HAND_EDIT_WAIT = 3.0
FLUSH_LOG = re.compile(r"wrote (\d+) changes in (\d+) flushes")


@dataclass
class Live:
    """A running server with a session and the auth headers of a registered user."""

    server: ServerProcess
    session: aiohttp.ClientSession
    headers: dict[str, str]

    def url(self, path: str) -> str:
        return f"{self.server.base_url}{path}"

    async def request(self, method: str, path: str, body: dict | None = None) -> tuple[int, object]:
        """Send one request and return its status and decoded JSON body."""
        async with self.session.request(method, self.url(path), json=body, headers=self.headers) as response:
            return response.status, orjson.loads(await response.read())


def new_session() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=CONNECTION_LIMIT),
        timeout=aiohttp.ClientTimeout(total=30),
    )


@pytest.fixture
async def live(server):
    server.start()
    async with new_session() as session:
        headers = await register_and_log_in(session, server.base_url)
        yield Live(server, session, headers)


def autos_on_disk(db_path: Path) -> dict[str, dict]:
    return read_db(db_path)["autos"]


async def wait_until(condition, timeout: float = HAND_EDIT_WAIT) -> bool:
    """Poll an async condition every 0.1 s; return whether it became true before the timeout."""
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        if await condition():
            return True
        await asyncio.sleep(0.1)
    return False


# Crash safety


@dataclass
class CrashRound:
    """What one crash round sent, what the server acknowledged, and what the file kept."""

    acknowledged: set[str] = field(default_factory=set)
    on_disk: set[str] = field(default_factory=set)
    unexpected: list[tuple[str, int]] = field(default_factory=list)

    @property
    def lost(self) -> set[str]:
        return self.acknowledged - self.on_disk


async def run_crash_round(
    server: ServerProcess,
    headers: dict[str, str],
    round_number: int,
    rng: random.Random,
    creates: int = CREATES_PER_ROUND,
) -> CrashRound:
    """Fire `creates` concurrent creates at a running server and SIGKILL it after a random number of 201s.

    The server is dead when this returns; db.json is parsed (a torn file
    raises here) and compared with the acknowledged marks.
    """
    result = CrashRound()
    kill_after = rng.randint(1, creates - 10)

    async def create(session: aiohttp.ClientSession, mark: str) -> None:
        try:
            async with session.post(f"{server.base_url}/auto/{mark}", json=AUTO, headers=headers) as response:
                status = response.status
        except (aiohttp.ClientError, asyncio.TimeoutError):
            return  # The process died before it responded.
        if status != 201:
            result.unexpected.append((mark, status))
            return
        result.acknowledged.add(mark)
        if len(result.acknowledged) == kill_after:
            server.process.send_signal(signal.SIGKILL)

    marks = [f"crash-{round_number}-{index}" for index in range(creates)]
    async with new_session() as session:
        await asyncio.gather(*(create(session, mark) for mark in marks))
    server.kill()

    result.on_disk = set(autos_on_disk(server.db_path))
    return result


async def test_sigkill_loses_no_acknowledged_create(server):
    rng = random.Random(4)
    server.start()
    async with new_session() as session:
        headers = await register_and_log_in(session, server.base_url)

    rounds = []
    for round_number in range(CRASH_ROUNDS):
        if round_number:
            server.start()
        rounds.append(await run_crash_round(server, headers, round_number, rng))

    server.start()
    async with new_session() as session:
        async with session.get(f"{server.base_url}/stock", headers=headers) as response:
            stock_marks = {auto["mark"] for auto in await response.json()}
    acknowledged = set().union(*(crash_round.acknowledged for crash_round in rounds))
    assert [crash_round.lost for crash_round in rounds] == [set()] * CRASH_ROUNDS
    assert [crash_round.unexpected for crash_round in rounds] == [[]] * CRASH_ROUNDS
    assert acknowledged <= stock_marks
    assert len(acknowledged) >= CRASH_ROUNDS


async def test_stale_temp_file_removed_at_start(server):
    temp = server.db_path.with_name("db.json.tmp")
    temp.write_bytes(b'{"users": {}, "au')
    original = server.db_path.read_bytes()

    server.start()

    assert not temp.exists()
    assert server.db_path.read_bytes() == original
    assert f"Removing {temp} left by an interrupted write" in server.log()


async def test_sigterm_keeps_acknowledged_creates(live):
    acknowledged = set()
    statuses = Counter()

    async def create(mark: str) -> None:
        try:
            async with live.session.post(live.url(f"/auto/{mark}"), json=AUTO, headers=live.headers) as response:
                statuses[response.status] += 1
                if response.status == 201:
                    acknowledged.add(mark)
                    if len(acknowledged) == 50:
                        live.server.process.send_signal(signal.SIGTERM)
        except aiohttp.ClientError:
            statuses["connection error"] += 1

    await asyncio.gather(*(create(f"term-{index}") for index in range(CREATES_PER_ROUND)))
    exit_code = live.server.process.wait(15)

    assert exit_code == 0
    assert set(statuses) <= {201, "connection error"}
    # Changes that the server had received before SIGTERM got their responses.
    assert len(acknowledged) > 50
    assert acknowledged <= set(autos_on_disk(live.server.db_path))


# Group commit


async def create_with_writers(live: Live, writers: int, creates_per_writer: int) -> list[int]:
    """Run `writers` clients that each send `creates_per_writer` creates one after another; return the statuses."""

    async def writer(number: int) -> list[int]:
        statuses = []
        for index in range(creates_per_writer):
            status, _ = await live.request("POST", f"/auto/writer-{number}-{index}", AUTO)
            statuses.append(status)
        return statuses

    results = await asyncio.gather(*(writer(number) for number in range(writers)))
    return [status for statuses in results for status in statuses]


def flush_counts(log: str) -> tuple[int, int]:
    """Return (changes written, flushes) from the line the store logs when it closes."""
    changes, flushes = FLUSH_LOG.search(log).groups()
    return int(changes), int(flushes)


async def test_group_commit_flushes_less_than_writes(live):
    statuses = await create_with_writers(live, GROUP_COMMIT_WRITERS, creates_per_writer=10)
    assert live.server.stop() == 0

    changes, flushes = flush_counts(live.server.log())
    assert statuses == [201] * 320
    # The registration is one more change.
    assert changes == 321
    assert flushes * 4 < changes


async def test_reads_see_create_only_once_saved(client):
    """In process: a create waiting for its write is invisible to reads, which show only what db.json holds."""
    store = client.server.app[STORE]
    creating = asyncio.create_task(store.create_auto("Pending", AUTO))
    await asyncio.sleep(0)

    read_while_pending = store.get_auto("Pending")
    await creating

    assert read_while_pending is None
    assert store.get_auto("Pending") == {"mark": "Pending", **AUTO}
    assert autos_on_disk(store.path)["Pending"] == AUTO


# Races


async def test_concurrent_creates_of_one_mark_give_one_201(live):
    before = autos_on_disk(live.server.db_path)

    results = await asyncio.gather(*(live.request("POST", "/auto/Race", AUTO) for _ in range(100)))

    assert sorted(results, key=lambda result: result[0]) == [(201, {"Message": "Auto created"})] + [
        (400, {"Error": "Auto with that mark exists"})
    ] * 99
    assert autos_on_disk(live.server.db_path) == {**before, "Race": AUTO}


async def test_concurrent_distinct_creates_all_saved(live):
    marks = [f"distinct-{index}" for index in range(CREATES_PER_ROUND)]

    results = await asyncio.gather(*(live.request("POST", f"/auto/{mark}", AUTO) for mark in marks))
    status, stock = await live.request("GET", "/stock")

    assert results == [(201, {"Message": "Auto created"})] * CREATES_PER_ROUND
    assert set(marks) <= set(autos_on_disk(live.server.db_path))
    assert set(marks) <= {auto["mark"] for auto in stock}


async def test_racing_changes_match_serial_order(live):
    """Creates, updates and deletes of one mark race; each leaves its own `handler` value."""
    requests = []
    for index in range(30):
        requests.append(("POST", {**AUTO, "handler": f"create-{index}"}))
        requests.append(("PUT", {"handler": f"update-{index}"}))
        requests.append(("DELETE", None))
    random.Random(2).shuffle(requests)

    results = await asyncio.gather(*(live.request(method, "/auto/Contested", body) for method, body in requests))
    status, body = await live.request("GET", "/auto/Contested")
    on_disk = autos_on_disk(live.server.db_path).get("Contested")

    succeeded = Counter(method for (method, _), (code, _) in zip(requests, results) if code in (201, 202))
    handlers_written = {
        request_body["handler"]
        for (method, request_body), (code, _) in zip(requests, results)
        if method != "DELETE" and code in (201, 202)
    }
    # The mark starts absent, so creates and deletes that succeeded alternate.
    assert succeeded["POST"] - succeeded["DELETE"] in (0, 1)
    if succeeded["POST"] == succeeded["DELETE"]:
        assert (status, body) == (404, {"Error": "Auto with that mark not found"})
        assert on_disk is None
    else:
        assert status == 200
        assert body == {"mark": "Contested", **on_disk}
        assert on_disk["handler"] in handlers_written


async def test_second_server_on_same_db_exits_without_writing(live, tmp_path):
    before = live.server.db_path.stat()
    before_bytes = live.server.db_path.read_bytes()
    second = ServerProcess(db_path=live.server.db_path, log_path=tmp_path / "second.log")

    exit_code = second.start(wait=False).wait(15)

    assert exit_code == 2
    assert f"{live.server.db_path} is already used by another dealer server" in second.log()
    assert "Traceback" not in second.log()
    assert live.server.db_path.read_bytes() == before_bytes
    assert live.server.db_path.stat().st_mtime_ns == before.st_mtime_ns
    assert live.server.db_path.stat().st_ino == before.st_ino


# Hand edits

AUDI = {"max_speed": 250, "distance": 500, "handler": "Audi AG", "stock": "Germany"}


def with_auto(db_path: Path, mark: str, fields: dict) -> bytes:
    """Return the content of db.json with one auto added, formatted as a person would leave it."""
    document = read_db(db_path)
    document["autos"][mark] = fields
    return orjson.dumps(document, option=orjson.OPT_INDENT_2)


def save_by_rename(path: Path, data: bytes) -> None:
    """Save the way most editors do: write a new file beside `path`, then rename it over `path`."""
    new_file = path.with_name(path.name + "~")
    new_file.write_bytes(data)
    os.replace(new_file, path)


def save_in_place(path: Path, data: bytes) -> None:
    """Overwrite `path` through the same inode, as `nano` and shell redirection do."""
    with path.open("r+b") as file:
        file.write(data)
        file.truncate()


SAVES = [save_by_rename, save_in_place]


@pytest.mark.parametrize("save", SAVES)
async def test_change_applies_on_top_of_hand_edit(live, save):
    db_path = live.server.db_path
    save(db_path, with_auto(db_path, "Audi", AUDI))

    status, body = await live.request("POST", "/auto/Volvo", AUTO)

    assert (status, body) == (201, {"Message": "Auto created"})
    assert autos_on_disk(db_path)["Audi"] == AUDI
    assert autos_on_disk(db_path)["Volvo"] == AUTO
    assert f"Reloaded {db_path} after a hand edit" in live.server.log()


@pytest.mark.parametrize("save", SAVES)
async def test_reads_see_hand_edit(live, save):
    save(live.server.db_path, with_auto(live.server.db_path, "Audi", AUDI))

    async def audi_found() -> bool:
        status, _ = await live.request("GET", "/auto/Audi")
        return status == 200

    assert await wait_until(audi_found)
    assert await live.request("GET", "/auto/Audi") == (200, {"mark": "Audi", **AUDI})
    assert f"Reloaded {live.server.db_path} after a hand edit" in live.server.log()


async def test_own_writes_not_taken_for_hand_edits(live):
    for mark in ("Volvo", "Saab", "Scania"):
        assert (await live.request("POST", f"/auto/{mark}", AUTO))[0] == 201

    await asyncio.sleep(1.5)

    assert "Reloaded" not in live.server.log()


def broken_document(db_path: Path) -> bytes:
    """Return db.json with an auto added by hand and a trailing comma at line 4, column 30."""
    users = orjson.dumps(read_db(db_path)["users"]).decode()
    return (
        "{\n"
        f'  "users": {users},\n'
        '  "autos": {\n'
        '    "Audi": {"max_speed": 250,}\n'
        "  }\n"
        "}\n"
    ).encode()


async def test_invalid_hand_edit_refuses_changes_with_503(live):
    db_path = live.server.db_path
    broken = broken_document(db_path)
    save_by_rename(db_path, broken)

    status, body = await live.request("POST", "/auto/Volvo", AUTO)

    assert status == 503
    assert body == {
        "Error": f"{db_path}: invalid JSON at line 4, column 30: trailing comma is not allowed; "
        "fix the file, then retry the change"
    }
    assert f"Failed to load the hand edit, so changes are rejected until it is fixed: {db_path}: invalid JSON" in (
        live.server.log()
    )


async def test_invalid_hand_edit_keeps_reads_from_memory(live):
    _, stock_before = await live.request("GET", "/stock")
    save_by_rename(live.server.db_path, broken_document(live.server.db_path))

    async def watcher_saw_edit() -> bool:
        return "Failed to load the hand edit" in live.server.log()

    assert await wait_until(watcher_saw_edit)
    assert await live.request("GET", "/stock") == (200, stock_before)


async def test_invalid_hand_edit_never_overwritten(live):
    db_path = live.server.db_path
    broken = broken_document(db_path)
    save_in_place(db_path, broken)

    for mark in ("Volvo", "Saab"):
        assert (await live.request("POST", f"/auto/{mark}", AUTO))[0] == 503
    await asyncio.sleep(1.5)
    assert live.server.stop() == 0

    assert db_path.read_bytes() == broken


async def test_wrong_shape_hand_edit_refuses_changes_with_503(live):
    document = read_db(live.server.db_path)
    document["autos"] = ["Audi"]
    save_by_rename(live.server.db_path, orjson.dumps(document))

    status, body = await live.request("PUT", "/auto/BMW", {"distance": 1})

    assert (status, body) == (
        503,
        {"Error": f'{live.server.db_path}: "autos" must be an object; fix the file, then retry the change'},
    )


async def test_fixed_hand_edit_accepts_changes_again(live):
    db_path = live.server.db_path
    fixed = with_auto(db_path, "Audi", AUDI)
    save_by_rename(db_path, broken_document(db_path))
    assert (await live.request("POST", "/auto/Volvo", AUTO))[0] == 503

    save_by_rename(db_path, fixed)
    status, body = await live.request("POST", "/auto/Volvo", AUTO)

    assert (status, body) == (201, {"Message": "Auto created"})
    assert autos_on_disk(db_path) == {**orjson.loads(fixed)["autos"], "Volvo": AUTO}


# Disk failures


@pytest.fixture
async def live_large_db(server):
    """A running server over a db.json larger than its log file, so that a file size limit stops only the db."""
    seed = {**AUTO, "handler": "h" * 200}
    write_db(server.db_path, autos={f"seed-{index}": seed for index in range(100)})
    server.start()
    async with new_session() as session:
        headers = await register_and_log_in(session, server.base_url)
        yield Live(server, session, headers)


async def test_file_size_limit_gives_503_and_keeps_file(live_large_db):
    live = live_large_db
    db_path = live.server.db_path
    before = db_path.read_bytes()
    _, hard_limit = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.prlimit(live.server.process.pid, resource.RLIMIT_FSIZE, (len(before) + 50, hard_limit))

    status, body = await live.request("POST", "/auto/Volvo", {**AUTO, "handler": "v" * 200})

    assert (status, body) == (503, {"Error": f"Could not save to {db_path}: File too large; nothing was changed"})
    assert db_path.read_bytes() == before
    assert not db_path.with_name("db.json.tmp").exists()
    assert "Failed to write" in live.server.log()


async def test_file_size_limit_undoes_change_in_memory(live_large_db):
    live = live_large_db
    _, hard_limit = resource.getrlimit(resource.RLIMIT_FSIZE)
    limit = live.server.db_path.stat().st_size + 50
    resource.prlimit(live.server.process.pid, resource.RLIMIT_FSIZE, (limit, hard_limit))
    first, _ = await live.request("POST", "/auto/Volvo", {**AUTO, "handler": "v" * 200})

    second, _ = await live.request("POST", "/auto/Volvo", {**AUTO, "handler": "v" * 200})
    read = await live.request("GET", "/auto/Volvo")

    assert (first, second) == (503, 503)
    assert read == (404, {"Error": "Auto with that mark not found"})


async def test_server_writes_again_once_disk_failure_ends(live_large_db):
    live = live_large_db
    _, hard_limit = resource.getrlimit(resource.RLIMIT_FSIZE)
    limit = live.server.db_path.stat().st_size + 50
    resource.prlimit(live.server.process.pid, resource.RLIMIT_FSIZE, (limit, hard_limit))
    assert (await live.request("POST", "/auto/Volvo", AUTO))[0] == 503

    resource.prlimit(live.server.process.pid, resource.RLIMIT_FSIZE, (hard_limit, hard_limit))
    status, body = await live.request("POST", "/auto/Volvo", AUTO)

    assert (status, body) == (201, {"Message": "Auto created"})
    assert autos_on_disk(live.server.db_path)["Volvo"] == AUTO


async def test_temp_path_taken_by_folder_gives_503(live):
    db_path = live.server.db_path
    before = db_path.read_bytes()
    temp = db_path.with_name("db.json.tmp")
    temp.mkdir()

    failed = await live.request("POST", "/auto/Volvo", AUTO)
    temp.rmdir()
    retried = await live.request("POST", "/auto/Volvo", AUTO)

    assert failed == (503, {"Error": f"Could not save to {db_path}: Is a directory; nothing was changed"})
    assert retried == (201, {"Message": "Auto created"})
    assert orjson.loads(before)["autos"] | {"Volvo": AUTO} == autos_on_disk(db_path)
