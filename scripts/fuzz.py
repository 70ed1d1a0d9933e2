"""Fuzz the live server with schemathesis against its own OpenAPI document.

Start `run.py` on a free loopback port over a temporary copy of db.json,
register a user, log in, and run schemathesis over every operation with the
access token. Exit with schemathesis's code, so any finding fails CI.

Usage: python scripts/fuzz.py [--max-examples N] [--seed N] [other `schemathesis run` options]
"""

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHIPPED_DB = ROOT / "db.json"
CREDENTIALS = {"username": "fuzzer", "password": "fuzzer-password"}
HOOKS = ROOT / "scripts" / "fuzz_hooks.py"
# Every schemathesis check except positive_data_acceptance: by the API's
# contract a valid body can still get 400 ("Auto with that mark exists",
# "User already exists", and "No one autos found in DataBase" for /stock).
CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
    "negative_data_rejection",
    "missing_required_header",
    "unsupported_method",
    "allow_header_conformance",
    "use_after_free",
    "ensure_resource_availability",
    "ignored_auth",
)
START_TIMEOUT = 15.0
STOP_TIMEOUT = 15.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_listening(process: subprocess.Popen, port: int) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with code {process.returncode} before listening")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"the server did not listen on port {port} within {START_TIMEOUT} s")


def post_json(url: str, body: dict) -> tuple[int, dict]:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


def log_in(base_url: str) -> str:
    """Register the fuzzing user and return its access token."""
    status, body = post_json(f"{base_url}/register", CREDENTIALS)
    if status != 201:
        raise RuntimeError(f"POST /register returned {status} {body}")
    status, body = post_json(f"{base_url}/auth", CREDENTIALS)
    if status != 200:
        raise RuntimeError(f"POST /auth returned {status} {body}")
    return body["access_token"]


def schemathesis_command(base_url: str, token: str, args: argparse.Namespace) -> list[str]:
    executable = Path(sys.executable).with_name("schemathesis")
    return [
        str(executable),
        "run",
        f"{base_url}/openapi.json",
        "--header",
        f"Authorization: Bearer {token}",
        "--checks",
        ",".join(CHECKS),
        "--max-examples",
        str(args.max_examples),
        "--seed",
        str(args.seed),
        "--workers",
        "1",
    ]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--max-examples", type=int, default=500, help="test cases per operation and phase (default: %(default)s)"
    )
    parser.add_argument("--seed", type=int, default=1, help="random seed, for repeatable runs (default: %(default)s)")
    args, args.extra = parser.parse_known_args()
    return args


def main() -> int:
    args = parse_args()
    with tempfile.TemporaryDirectory(prefix="dealer-fuzz-") as folder:
        folder = Path(folder)
        db_path = folder / "db.json"
        shutil.copy(SHIPPED_DB, db_path)
        log_path = folder / "server.log"
        port = free_port()
        base_url = f"http://127.0.0.1:{port}"

        with log_path.open("wb") as log:
            server = subprocess.Popen(
                [
                    sys.executable,
                    str(ROOT / "run.py"),
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(port),
                    "--db",
                    str(db_path),
                ],
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            wait_until_listening(server, port)
            token = log_in(base_url)
        except (RuntimeError, OSError) as error:
            server.kill()
            server.wait()
            print(
                f"fuzz: failed to start: {error}; server log:\n{log_path.read_text(encoding='utf-8')}", file=sys.stderr
            )
            return 1

        try:
            command = schemathesis_command(base_url, token, args)
            print(f"fuzz: schemathesis over {base_url} with {args.max_examples} examples per operation", flush=True)
            environment = {**os.environ, "SCHEMATHESIS_HOOKS": str(HOOKS), "PYTHONPATH": str(ROOT)}
            # Run in the temporary folder: schemathesis keeps a .schemathesis cache in its working folder.
            code = subprocess.run([*command, *args.extra], cwd=folder, env=environment).returncode
        finally:
            server.terminate()
            try:
                server.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()

        # An exception in our code is logged by dealer.middlewares as "ERROR dealer...";
        # aiohttp's own ERROR lines report malformed HTTP that it rejected with 400.
        server_errors = [line for line in log_path.read_text(encoding="utf-8").splitlines() if " ERROR dealer" in line]
        for line in server_errors:
            print(f"fuzz: server log: {line}", file=sys.stderr)
        if code == 0 and server_errors:
            print("fuzz: schemathesis passed but the server logged errors", file=sys.stderr)
            return 1
        return code


if __name__ == "__main__":
    sys.exit(main())
