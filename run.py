"""Start the dealer API server: `python run.py --help` lists the options."""

import argparse
import logging
import os
import sys
from pathlib import Path

from aiohttp import web

from dealer import Config, create_app
from dealer.config import DEFAULT_TOKEN_TTL
from dealer.errors import StartupError
from dealer.jwt_secret import SECRET_BYTES as MIN_SECRET_BYTES
from dealer.serving import LOG_FORMAT, AccessLogBuffer, access_logger_class, new_event_loop

logger = logging.getLogger("dealer")

MAX_TOKEN_TTL = 10 * 365 * 24 * 3600
# Seconds that a stop waits for requests in progress, such as a change
# waiting for its write, before it cancels them.
SHUTDOWN_TIMEOUT = 5.0


def _parse_args(argv: list[str]) -> argparse.Namespace:
    env = os.environ
    parser = argparse.ArgumentParser(
        description="Run the dealer REST API. Each option can also be set by the environment variable in brackets.",
    )
    parser.add_argument(
        "--host", default=env.get("DEALER_HOST", "127.0.0.1"), help="address to listen on [DEALER_HOST] (default: %(default)s)"
    )
    parser.add_argument(
        "--port", type=int, default=env.get("DEALER_PORT", "8080"), help="TCP port [DEALER_PORT] (default: %(default)s)"
    )
    parser.add_argument(
        "--db",
        type=Path,
        default=env.get("DEALER_DB", "db.json"),
        help="JSON file with the users and autos, created if missing [DEALER_DB] (default: %(default)s)",
    )
    parser.add_argument(
        "--token-ttl",
        type=int,
        default=env.get("DEALER_TOKEN_TTL", str(DEFAULT_TOKEN_TTL)),
        help="lifetime of access tokens in seconds [DEALER_TOKEN_TTL] (default: %(default)s)",
    )
    parser.add_argument(
        "--jwt-secret",
        default=env.get("DEALER_JWT_SECRET"),
        help="key that signs access tokens [DEALER_JWT_SECRET] "
        "(default: 32 random bytes generated once and kept in <db>.secret)",
    )
    args = parser.parse_args(argv)

    if not args.host:
        parser.error("--host must not be empty; use 127.0.0.1 for this machine only, or 0.0.0.0 for every network")
    if not 1 <= args.port <= 65535:
        parser.error(f"--port must be from 1 to 65535, not {args.port}")
    if args.db.name in ("", ".", ".."):
        parser.error(f"--db must name a file, such as db.json, not {str(args.db)!r}")
    if not 0 < args.token_ttl <= MAX_TOKEN_TTL:
        parser.error(f"--token-ttl must be from 1 to {MAX_TOKEN_TTL} seconds (10 years)")
    if args.jwt_secret and len(args.jwt_secret.encode("utf-8")) < MIN_SECRET_BYTES:
        parser.error(
            f"--jwt-secret must be at least {MIN_SECRET_BYTES} bytes, as HS256 needs; "
            "omit it to use a generated secret"
        )
    return args


def main(argv: list[str]) -> int:
    args = _parse_args(argv)
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)
    access_log = AccessLogBuffer(sys.stderr)

    secret = args.jwt_secret.encode("utf-8") if args.jwt_secret else None
    app = create_app(Config(db_path=args.db, jwt_secret=secret, token_ttl=args.token_ttl))

    def announce(_banner: str) -> None:
        host = f"[{args.host}]" if ":" in args.host else args.host
        logger.info("Listening on http://%s:%d with database %s; press Ctrl+C to stop", host, args.port, args.db)

    try:
        web.run_app(
            app,
            host=args.host,
            port=args.port,
            access_log_class=access_logger_class(access_log),
            print=announce,
            shutdown_timeout=SHUTDOWN_TIMEOUT,
            loop=new_event_loop(),
        )
    except StartupError as error:
        logger.error("%s", error)
        return 2
    except OSError as error:
        logger.error("Cannot listen on %s:%d: %s", args.host, args.port, error.strerror or error)
        return 1
    finally:
        access_log.flush()
    logger.info("Stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
