"""Runs wrk with generated Lua scripts and reads back its results."""

import json
import os
import shutil
import subprocess
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

INSTALL_HINT = "wrk is not installed. On Debian or Ubuntu: sudo apt-get update && sudo apt-get install -y wrk"

# Appended to every script: prints one machine-readable line when wrk finishes.
# Latencies are in microseconds.
_REPORT = """
function done(summary, latency, requests)
  local errors = summary.errors
  io.write(string.format(
    '\\nBENCH_RESULT {"requests": %.0f, "duration_us": %.0f, "p50_us": %.0f, "p99_us": %.0f, '
    .. '"socket_errors": %.0f, "non_2xx": %.0f}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    errors.connect + errors.read + errors.write + errors.timeout, errors.status))
end
"""

# Each wrk thread gets its own number, so that generated marks stay unique
# across threads. Every other request deletes a mark that the thread created
# 64 creates earlier. The database then keeps its size during the case, so
# the write cost is measured at the seeded size. The lag keeps a DELETE from
# overtaking the POST of its mark on another connection.
_CREATE_AND_DELETE = """
local next_thread_id = 0
function setup(thread)
  next_thread_id = next_thread_id + 1
  thread:set("thread_id", next_thread_id)
end

local created = 0
local deleted = 0
local delete_next = false
function request()
  delete_next = not delete_next
  if delete_next and created - deleted > 64 then
    deleted = deleted + 1
    return wrk.format("DELETE", "/auto/" .. mark_prefix .. thread_id .. "-" .. deleted, nil, "")
  end
  created = created + 1
  return wrk.format(nil, "/auto/" .. mark_prefix .. thread_id .. "-" .. created)
end
"""


@dataclass(frozen=True)
class Result:
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    socket_errors: int
    non_2xx: int

    @property
    def requests_per_second(self) -> float:
        return self.requests / self.seconds


def require_wrk() -> str:
    """Return the path of wrk; raise SystemExit with the install command if it is missing."""
    path = shutil.which("wrk")
    if path is None:
        raise SystemExit(INSTALL_HINT)
    return path


def _lua_string(text: str) -> str:
    return json.dumps(text)  # A JSON string of ASCII text is also a valid Lua string.


def get_script(token: str | None) -> str:
    lines = ['wrk.method = "GET"']
    if token is not None:
        lines.append(f'wrk.headers["Authorization"] = {_lua_string("Bearer " + token)}')
    return "\n".join(lines) + "\n" + _REPORT


def post_json_script(body: dict, token: str | None = None) -> str:
    lines = ['wrk.method = "POST"', f"wrk.body = {_lua_string(json.dumps(body))}", 'wrk.headers["Content-Type"] = "application/json"']
    if token is not None:
        lines.append(f'wrk.headers["Authorization"] = {_lua_string("Bearer " + token)}')
    return "\n".join(lines) + "\n" + _REPORT


def create_and_delete_script(body: dict, token: str, mark_prefix: str) -> str:
    """Alternate a POST of `body` to a new mark `<mark_prefix><thread>-<n>` with a DELETE of an older one."""
    return post_json_script(body, token) + f"mark_prefix = {_lua_string(mark_prefix)}\n" + _CREATE_AND_DELETE


class Wrk:
    """Starts wrk processes pinned to the given CPUs, with their scripts kept in `work_dir`."""

    def __init__(self, executable: str, work_dir: Path, cpus: Collection[int] | None, threads: int) -> None:
        self._executable = executable
        self._work_dir = work_dir
        self._cpus = cpus
        self._threads = threads
        self._scripts = 0

    def start(self, url: str, script: str, connections: int, seconds: float) -> subprocess.Popen:
        self._scripts += 1
        script_path = self._work_dir / f"script-{self._scripts}.lua"
        script_path.write_text(script)
        command = [
            self._executable,
            f"--threads={min(self._threads, connections)}",
            f"--connections={connections}",
            f"--duration={max(1, round(seconds))}s",
            "--timeout=10s",
            f"--script={script_path}",
            url,
        ]
        cpus = self._cpus
        return subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            preexec_fn=(lambda: os.sched_setaffinity(0, cpus)) if cpus else None,
        )

    def run(self, url: str, script: str, connections: int, seconds: float) -> Result:
        return finish(self.start(url, script, connections, seconds))


def finish(process: subprocess.Popen) -> Result:
    """Wait for a wrk process and parse its result line; raise RuntimeError with its output if there is none."""
    output, _ = process.communicate()
    for line in output.splitlines():
        if line.startswith("BENCH_RESULT "):
            values = json.loads(line.removeprefix("BENCH_RESULT "))
            return Result(
                requests=int(values["requests"]),
                seconds=values["duration_us"] / 1e6,
                p50_ms=values["p50_us"] / 1000,
                p99_ms=values["p99_us"] / 1000,
                socket_errors=int(values["socket_errors"]),
                non_2xx=int(values["non_2xx"]),
            )
    raise RuntimeError(f"wrk printed no result (exit code {process.returncode}):\n{output}")
