"""The access log of a real server process: one line per request, in the layout of the other log lines."""

import errno
import io
import re

from aiohttp import ClientSession

from dealer.serving import AccessLogBuffer

ACCESS_LINE = re.compile(
    r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} INFO aiohttp\.access: "
    r'127\.0\.0\.1 "GET /auto/%D0%9B%D0%B0%D0%B4%D0%B0\?x=1 HTTP/1\.1" 401 \d+ \d+\.\d{3}s'
)


def _access_lines(log: str) -> list[str]:
    return [line for line in log.splitlines() if " INFO aiohttp.access: " in line]


async def test_access_log_writes_one_line_per_request(server):
    server.start()

    async with ClientSession() as session:
        for _ in range(3):
            async with session.get(f"{server.base_url}/auto/Лада?x=1") as response:
                assert response.status == 401
    assert server.stop() == 0

    lines = _access_lines(server.log())
    assert len(lines) == 3
    for line in lines:
        assert ACCESS_LINE.fullmatch(line), line


async def test_access_log_precedes_stop_message(server):
    server.start()

    async with ClientSession() as session:
        async with session.get(f"{server.base_url}/stock") as response:
            assert response.status == 401
    assert server.stop() == 0

    log_lines = server.log().splitlines()
    access_positions = [i for i, line in enumerate(log_lines) if " INFO aiohttp.access: " in line]
    stop_positions = [i for i, line in enumerate(log_lines) if line.endswith(" INFO dealer: Stopped")]
    assert len(access_positions) == 1
    assert len(stop_positions) == 1
    assert access_positions[0] < stop_positions[0]


class FailingOnceStream(io.StringIO):
    """A stream whose first write fails, as on a full disk."""

    failed = False

    def write(self, text: str) -> int:
        if not self.failed:
            self.failed = True
            raise OSError(errno.ENOSPC, "No space left on device")
        return super().write(text)


async def test_access_log_recovers_after_failed_write():
    stream = FailingOnceStream()
    buffer = AccessLogBuffer(stream)

    buffer.add("lost")
    buffer.flush()
    buffer.add("kept")
    buffer.flush()

    assert stream.getvalue().endswith(" INFO aiohttp.access: kept\n")
    assert "lost" not in stream.getvalue()
