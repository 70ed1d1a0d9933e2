"""The baseline: a bare aiohttp app that returns one auto's JSON, with no auth, no store and no access log.

Its throughput is what aiohttp itself can do on the machine; the benchmark
reports every dealer case as a ratio to it. Run it with
`python -m bench.baseline --port 8081`.
"""

import argparse
import sys

import orjson
from aiohttp import web

from bench.seed import AUTO_FIELDS


def create_baseline_app() -> web.Application:
    async def get_auto(request: web.Request) -> web.Response:
        body = orjson.dumps({"mark": request.match_info["mark"], **AUTO_FIELDS})
        return web.Response(body=body, content_type="application/json")

    app = web.Application()
    app.router.add_get("/auto/{mark}", get_auto)
    return app


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description="Serve GET /auto/<mark> with aiohttp and nothing else.")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    parser.add_argument("--port", type=int, required=True, help="TCP port")
    args = parser.parse_args(argv)

    # The same event loop as run.py picks, so that the comparison measures the app, not the loop.
    from dealer.serving import new_event_loop

    web.run_app(create_baseline_app(), host=args.host, port=args.port, access_log=None, print=None, loop=new_event_loop())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
