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

from tests.conftest import AUTO, USERNAME, ServerProcess, read_db, register_and_log_in, write_db

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
            return  # The process died before answering.
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


async def test_sigkill_during_creates_loses_no_acknowledged_create(server):
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


async def test_sigterm_during_creates_keeps_every_acknowledged_create(live):
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


async def test_group_commit_under_32_writers_flushes_far_less_than_writes(live):
    statuses = await create_with_writers(live, GROUP_COMMIT_WRITERS, creates_per_writer=10)
    assert live.server.stop() == 0

    changes, flushes = flush_counts(live.server.log())
    assert statuses == [201] * 320
    # The registration is one more change.
    assert changes == 321
    assert flushes * 4 < changes


# Races


async def test_concurrent_creates_of_one_mark_give_one_201(live):
    before = autos_on_disk(live.server.db_path)

    results = await asyncio.gather(*(live.request("POST", "/auto/Race", AUTO) for _ in range(100)))

    assert sorted(results, key=lambda result: result[0]) == [(201, {"Message": "Auto created"})] + [
        (400, {"Error": "Auto with that mark exists"})
    ] * 99
    assert autos_on_disk(live.server.db_path) == {**before, "Race": AUTO}


async def test_concurrent_distinct_creates_all_land(live):
    marks = [f"distinct-{index}" for index in range(CREATES_PER_ROUND)]

    results = await asyncio.gather(*(live.request("POST", f"/auto/{mark}", AUTO) for mark in marks))
    status, stock = await live.request("GET", "/stock")

    assert results == [(201, {"Message": "Auto created"})] * CREATES_PER_ROUND
    assert set(marks) <= set(autos_on_disk(live.server.db_path))
    assert set(marks) <= {auto["mark"] for auto in stock}


async def test_concurrent_changes_of_one_mark_match_a_serial_order(live):
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
