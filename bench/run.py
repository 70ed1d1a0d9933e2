"""Benchmark the dealer server against a bare aiohttp app in one run and print a Markdown report.

Every case runs against a real `python run.py` process on loopback, with a
temporary database seeded to the case's size, and is compared with the
baseline app from bench/baseline.py started in the same run.
"""

import argparse
import http.client
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import orjson

from bench import seed
from bench.wrk import Result, Wrk, create_and_delete_script, finish, get_script, post_json_script, require_wrk
from dealer.tokens import TokenCodec

ROOT = Path(__file__).resolve().parent.parent
JWT_SECRET = "benchmark-secret-of-at-least-32-bytes"
BENCH_USERNAME = "bench"
BENCH_PASSWORD = "bench-password"
START_TIMEOUT = 60.0
# Connections of the second wrk that keeps POST /auth busy; logins are hashed one at a time anyway.
AUTH_CONNECTIONS = 4

# Targets: the guarded GET against the baseline, durable writes at 10,000
# autos against writes at 100, p99 under /auth load against idle p99, and memory
# and start-up time at 100,000 autos.
GET_RATIO_TARGET = 0.85
CREATE_RATIO_TARGET = 0.7
AUTH_P99_RATIO_TARGET = 3.0
PEAK_RSS_TARGET_MB = 200
STARTUP_TARGET_SECONDS = 2.0


def _parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=5, help="seconds of load per case (default: %(default)s)")
    parser.add_argument("--warmup", type=float, default=1, help="seconds of load before each case (default: %(default)s)")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections per case (default: %(default)s)")
    parser.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="alternating runs of the baseline and the guarded GET; the median is reported (default: %(default)s)",
    )
    parser.add_argument(
        "--no-pin",
        action="store_true",
        help="let servers and wrk run on any CPU (default: server on CPU 0, wrk on CPU 1 when there are 2 or more)",
    )
    parser.add_argument(
        "--tmp-dir",
        type=Path,
        default=None,
        help="folder for the temporary databases; its file system decides what fsync costs (default: the system's)",
    )
    parser.add_argument("--big", type=int, default=100_000, help="autos for the memory and start-up case (default: %(default)s)")
    args = parser.parse_args(argv)
    if args.duration < 1 or args.warmup < 0 or args.connections < 1 or args.rounds < 1:
        parser.error("--duration must be at least 1 second, --warmup at least 0, --connections and --rounds at least 1")
    return args


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _request(port: int, method: str, path: str, body: dict | None = None, token: str | None = None) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        connection.request(method, path, body=orjson.dumps(body) if body is not None else None, headers=headers)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


class ServerProcess:
    """One server process on loopback, pinned to `cpus`, with its log in a file."""

    def __init__(self, name: str, command: list[str], log_path: Path, cpus: set[int] | None) -> None:
        self.name = name
        self.port = _free_port()
        self._command = command + ["--port", str(self.port)]
        self._log_path = log_path
        self._cpus = cpus
        self._process: subprocess.Popen | None = None

    def start(self, is_ready: Callable[["ServerProcess"], bool]) -> float:
        """Start the process and return the seconds from spawn to the first response `is_ready` accepts."""
        cpus = self._cpus
        with open(self._log_path, "ab") as log:
            started = time.perf_counter()
            self._process = subprocess.Popen(
                self._command,
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=(lambda: os.sched_setaffinity(0, cpus)) if cpus else None,
            )
        deadline = started + START_TIMEOUT
        while time.perf_counter() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with code {self._process.returncode}:\n{self.log_tail()}")
            try:
                if is_ready(self):
                    return time.perf_counter() - started
            except OSError:
                pass  # Not listening yet.
            time.sleep(0.002)
        self.stop()
        raise RuntimeError(f"{self.name} did not respond within {START_TIMEOUT:.0f} s:\n{self.log_tail()}")

    def cpu_seconds(self) -> float:
        """Read the user and system CPU time the process has used so far."""
        fields = Path(f"/proc/{self._process.pid}/stat").read_text().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def peak_rss_mb(self) -> float:
        """Read the peak resident set size (VmHWM) of the process so far, in MB."""
        status = Path(f"/proc/{self._process.pid}/status").read_text()
        for line in status.splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024 / 1e6
        raise RuntimeError(f"no VmHWM in /proc/{self._process.pid}/status")

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def log_tail(self, lines: int = 20) -> str:
        return "\n".join(self._log_path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        if self._process is None or self._process.poll() is not None:
            return
        self._process.send_signal(signal.SIGTERM)
        try:
            self._process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()


@dataclass(frozen=True)
class Measurement:
    """A wrk result and the CPU time the server spent per request meanwhile, in microseconds."""

    result: Result
    cpu_us: float


@dataclass
class Row:
    case: str
    autos: str
    measurement: Measurement


class Bench:
    """Runs the cases in order and collects their rows."""

    def __init__(self, args: argparse.Namespace, wrk: Wrk, work_dir: Path, server_cpus: set[int] | None) -> None:
        self.args = args
        self.wrk = wrk
        self.work_dir = work_dir
        self.server_cpus = server_cpus
        self.rows: list[Row] = []
        self.password_hash = seed.seeded_password_hash()
        self.probe_token = TokenCodec(JWT_SECRET.encode(), 3600).issue(seed.SEEDED_USERNAME)
        self._servers: list[ServerProcess] = []

    def measure(
        self, server: ServerProcess, path: str, script: str | Callable[[str], str], warmup: bool = True
    ) -> Measurement:
        """Run wrk against `server` after a warm-up; `script` may be a function of the phase name."""
        url = server.url(path)
        connections = self.args.connections
        if warmup and self.args.warmup:
            self.wrk.run(url, script("warmup") if callable(script) else script, connections, self.args.warmup)
        cpu_before = server.cpu_seconds()
        result = self.wrk.run(url, script("measure") if callable(script) else script, connections, self.args.duration)
        cpu_us = (server.cpu_seconds() - cpu_before) / max(result.requests, 1) * 1e6
        return Measurement(result, cpu_us)

    def add(self, case: str, autos: str, measurement: Measurement) -> Measurement:
        self.rows.append(Row(case, autos, measurement))
        result = measurement.result
        print(
            f"  {case} at {autos} autos: {result.requests_per_second:,.0f} req/s, p99 {result.p99_ms:.2f} ms, "
            f"{measurement.cpu_us:.0f} µs CPU per request",
            file=sys.stderr,
        )
        return measurement

    def start_baseline(self) -> ServerProcess:
        command = [sys.executable, "-m", "bench.baseline"]
        server = ServerProcess("baseline", command, self.work_dir / "baseline.log", self.server_cpus)
        self._servers.append(server)
        server.start(lambda s: _request(s.port, "GET", "/auto/" + seed.mark_of(0))[0] == 200)
        return server

    def start_dealer(self, auto_count: int) -> tuple[ServerProcess, float]:
        """Start run.py over a fresh database of `auto_count` autos; return it and its start-up seconds."""
        db_path = self.work_dir / f"db-{auto_count}-{len(self._servers)}.json"
        seed.write_seeded_db(db_path, auto_count, self.password_hash)
        command = [sys.executable, "run.py", "--db", str(db_path), "--jwt-secret", JWT_SECRET]
        server = ServerProcess(f"dealer server at {auto_count} autos", command, db_path.with_suffix(".log"), self.server_cpus)
        self._servers.append(server)
        probe_path = "/auto/" + seed.mark_of(0) if auto_count else "/stock"
        seconds = server.start(lambda s: _request(s.port, "GET", probe_path, token=self.probe_token)[0] in (200, 400))
        return server, seconds

    def log_in(self, server: ServerProcess) -> str:
        """Register the benchmark user through the API and return its access token."""
        credentials = {"username": BENCH_USERNAME, "password": BENCH_PASSWORD}
        status, body = _request(server.port, "POST", "/register", credentials)
        if status != 201:
            raise RuntimeError(f"POST /register returned {status}: {body!r}")
        status, body = _request(server.port, "POST", "/auth", credentials)
        if status != 200:
            raise RuntimeError(f"POST /auth returned {status}: {body!r}")
        return orjson.loads(body)["access_token"]

    def stop_all(self) -> None:
        for server in self._servers:
            server.stop()


def _median(measurements: list[Measurement]) -> Measurement:
    """Pick the run with the median throughput, so that its latency and CPU figures belong to it."""
    ordered = sorted(measurements, key=lambda m: m.result.requests_per_second)
    return ordered[(len(ordered) - 1) // 2]


def _run_cases(bench: Bench) -> dict:
    """Run every case; return the figures that the targets are checked against."""
    figures: dict = {}
    mark_path = "/auto/" + seed.mark_of(0)
    rounds = bench.args.rounds

    print(f"Baseline and guarded GET, {rounds} alternating rounds", file=sys.stderr)
    baseline = bench.start_baseline()
    server, _ = bench.start_dealer(1_000)
    token = bench.log_in(server)
    baseline_runs, guarded_runs = [], []
    for round_number in range(rounds):
        baseline_runs.append(bench.measure(baseline, mark_path, get_script(None), warmup=round_number == 0))
        guarded_runs.append(bench.measure(server, mark_path, get_script(token), warmup=round_number == 0))
    baseline.stop()
    median_note = f" (median of {rounds})" if rounds > 1 else ""
    figures["baseline"] = bench.add(f"baseline: bare aiohttp GET /auto/<mark>{median_note}", "-", _median(baseline_runs))
    figures["guarded_get"] = bench.add(f"guarded GET /auto/<mark>{median_note}", "1,000", _median(guarded_runs))

    print("GET /auto/<mark> under /auth load", file=sys.stderr)
    figures["auth_load"] = bench.add(
        f"guarded GET /auto/<mark> while {AUTH_CONNECTIONS} connections POST /auth", "1,000", _measure_under_auth_load(bench, server, token)
    )

    print("GET /stock", file=sys.stderr)
    bench.add("GET /stock", "1,000", bench.measure(server, "/stock", get_script(token)))
    server.stop()
    for auto_count in (10, 10_000):
        server, _ = bench.start_dealer(auto_count)
        token = bench.log_in(server)
        bench.add("GET /stock", f"{auto_count:,}", bench.measure(server, "/stock", get_script(token)))
        server.stop()

    print("Durable writes", file=sys.stderr)
    auto_body = dict(seed.AUTO_FIELDS)
    for auto_count, key in ((100, "create_small"), (10_000, "create_large")):
        server, _ = bench.start_dealer(auto_count)
        token = bench.log_in(server)
        measurement = bench.measure(server, "/auto/x", lambda phase: create_and_delete_script(auto_body, token, f"Bench-{phase}-"))
        status, body = _request(server.port, "GET", "/stock", token=token)
        final_count = len(orjson.loads(body))
        figures[key] = bench.add("durable writes: POST /auto/<new mark>, DELETE an older one", f"{auto_count:,} → {final_count:,}", measurement)
        server.stop()

    print(f"Memory and start-up at {bench.args.big:,} autos", file=sys.stderr)
    server, figures["startup_seconds"] = bench.start_dealer(bench.args.big)
    figures["rss_after_start_mb"] = server.peak_rss_mb()
    token = bench.log_in(server)
    _request(server.port, "GET", "/stock", token=token)
    status, body = _request(server.port, "POST", "/auto/Bench-big", auto_body, token=token)
    if status != 201:
        raise RuntimeError(f"POST /auto/Bench-big returned {status}: {body!r}")
    figures["peak_rss_mb"] = server.peak_rss_mb()
    server.stop()
    return figures


def _measure_under_auth_load(bench: Bench, server: ServerProcess, token: str) -> Measurement:
    """Measure the guarded GET while a second wrk keeps POST /auth busy for the whole window."""
    credentials = {"username": BENCH_USERNAME, "password": BENCH_PASSWORD}
    auth_seconds = bench.args.warmup + bench.args.duration + 2
    auth_load = bench.wrk.start(server.url("/auth"), post_json_script(credentials), AUTH_CONNECTIONS, auth_seconds)
    time.sleep(1)
    try:
        measurement = bench.measure(server, "/auto/" + seed.mark_of(0), get_script(token))
    finally:
        auth = finish(auth_load)
    bench.add(f"POST /auth, the load of the row above ({AUTH_CONNECTIONS} connections)", "1,000", Measurement(auth, float("nan")))
    return measurement


def _verdict(met: bool) -> str:
    return "met" if met else "NOT met"


def _report(bench: Bench, figures: dict, pinning: str, file_system: str, load_average: str) -> str:
    args = bench.args
    baseline = figures["baseline"]
    baseline_rps = baseline.result.requests_per_second
    lines = [
        "| case | autos | req/s | × baseline | p50 ms | p99 ms | server CPU µs/request | errors |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for row in bench.rows:
        result = row.measurement.result
        cpu_us = row.measurement.cpu_us
        cpu_text = "-" if cpu_us != cpu_us else f"{cpu_us:.0f}"  # NaN: not measured.
        errors = result.socket_errors + result.non_2xx
        lines.append(
            f"| {row.case} | {row.autos} | {result.requests_per_second:,.0f} | {result.requests_per_second / baseline_rps:.2f} | "
            f"{result.p50_ms:.2f} | {result.p99_ms:.2f} | {cpu_text} | {errors} |"
        )

    guarded = figures["guarded_get"]
    get_ratio = guarded.result.requests_per_second / baseline_rps
    get_cpu_ratio = baseline.cpu_us / guarded.cpu_us
    create_ratio = figures["create_large"].result.requests_per_second / figures["create_small"].result.requests_per_second
    p99_ratio = figures["auth_load"].result.p99_ms / guarded.result.p99_ms
    big = f"{args.big:,}"
    lines += [
        "",
        "| target | measured | verdict |",
        "|---|---|---|",
        f"| guarded GET ≥ {GET_RATIO_TARGET} × baseline | {get_ratio:.2f} × in req/s "
        f"({get_cpu_ratio:.2f} × in CPU per request) | {_verdict(get_ratio >= GET_RATIO_TARGET)} |",
        f"| durable writes at 10,000 autos ≥ {CREATE_RATIO_TARGET} × at 100 | {create_ratio:.2f} × | "
        f"{_verdict(create_ratio >= CREATE_RATIO_TARGET)} |",
        f"| guarded GET p99 under /auth load ≤ {AUTH_P99_RATIO_TARGET:g} × idle p99 | {p99_ratio:.2f} × | "
        f"{_verdict(p99_ratio <= AUTH_P99_RATIO_TARGET)} |",
        f"| peak RSS at {big} autos ≤ {PEAK_RSS_TARGET_MB} MB | {figures['peak_rss_mb']:.0f} MB "
        f"({figures['rss_after_start_mb']:.0f} MB after start-up) | {_verdict(figures['peak_rss_mb'] <= PEAK_RSS_TARGET_MB)} |",
        f"| start-up at {big} autos ≤ {STARTUP_TARGET_SECONDS:g} s | {figures['startup_seconds']:.2f} s | "
        f"{_verdict(figures['startup_seconds'] <= STARTUP_TARGET_SECONDS)} |",
        "",
        f"- Machine: {_cpu_model()}, {os.cpu_count()} CPUs, Linux {platform.release()}; "
        f"Python {platform.python_version()}, aiohttp {aiohttp.__version__}, {_loop_name()}. "
        f"Load average before the run: {load_average}.",
        f"- Load: wrk, {args.connections} connections, {args.warmup:g} s warm-up then {args.duration:g} s per case. {pinning}",
        f"- Databases in {bench.work_dir.parent} ({file_system}); every write is fsynced.",
        "- Server CPU µs/request: user plus system CPU time of the server process during the run, divided by "
        "its requests; other load on the machine moves it less than req/s.",
        "- Peak RSS is VmHWM (1 MB = 10^6 bytes) after start-up, one GET /stock and one POST /auto/<mark>; "
        "start-up is from process spawn to the first 200 on a guarded GET.",
        "- errors: socket errors plus responses other than 2xx or 3xx.",
    ]
    return "\n".join(lines)


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _loop_name() -> str:
    try:
        import uvloop
    except ImportError:
        return "asyncio event loop"
    return f"uvloop {uvloop.__version__}"


def _file_system(path: Path) -> str:
    try:
        output = subprocess.run(["df", "--output=fstype", str(path)], capture_output=True, text=True, check=True).stdout
        return output.split()[-1]
    except (OSError, subprocess.CalledProcessError, IndexError):
        return "unknown file system"


def main(argv: list[str]) -> int:
    args = _parse_args(argv)
    wrk_path = require_wrk()

    cpus = sorted(os.sched_getaffinity(0))
    if args.no_pin or len(cpus) < 2:
        server_cpus = wrk_cpus = None
        pinning = "Servers and wrk were not pinned and shared all CPUs."
        wrk_threads = max(1, len(cpus) // 2)
    else:
        server_cpus, wrk_cpus = {cpus[0]}, set(cpus[1:])
        pinning = (
            f"Baseline and dealer servers were pinned to CPU {cpus[0]}, wrk to CPU "
            f"{','.join(map(str, sorted(wrk_cpus)))} (taskset-style affinity)."
        )
        wrk_threads = len(wrk_cpus)

    work_dir = Path(tempfile.mkdtemp(prefix="dealer-bench-", dir=args.tmp_dir))
    file_system = _file_system(work_dir)
    load_average = " ".join(f"{value:.2f}" for value in os.getloadavg())
    bench = Bench(args, Wrk(wrk_path, work_dir, wrk_cpus, wrk_threads), work_dir, server_cpus)
    try:
        figures = _run_cases(bench)
    except RuntimeError as error:
        print(f"Benchmark failed: {error}\nServer logs are kept in {work_dir}", file=sys.stderr)
        return 1
    finally:
        bench.stop_all()
    shutil.rmtree(work_dir, ignore_errors=True)

    print(_report(bench, figures, pinning, file_system, load_average))
    return 0
