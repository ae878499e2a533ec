"""(i) aiohttp web server + aiohttp client.

Run: BENCH_UPSTREAM=http://127.0.0.1:9000/v1 python -m bench.candidates.aiohttp_server --port 8001
"""

from __future__ import annotations

import argparse

import aiohttp
from aiohttp import web

from bench.candidates.common import FORWARD, upstream_base


async def on_startup(app: web.Application) -> None:
    conn = aiohttp.TCPConnector(limit=0, ttl_dns_cache=None, keepalive_timeout=60)
    app["session"] = aiohttp.ClientSession(
        connector=conn, auto_decompress=False, skip_auto_headers=("User-Agent",)
    )


async def on_cleanup(app: web.Application) -> None:
    await app["session"].close()


def make_app() -> web.Application:
    base = upstream_base()

    async def relay(request: web.Request) -> web.StreamResponse:
        body = await request.read()
        hdrs = {k: v for k in FORWARD if (v := request.headers.get(k)) is not None}
        async with request.app["session"].post(base + request.path[3:], data=body, headers=hdrs) as up:
            ctype = up.headers.get("content-type", "application/json")
            if ctype.startswith("text/event-stream"):
                resp = web.StreamResponse(
                    status=up.status, headers={"content-type": ctype, "cache-control": "no-cache"}
                )
                await resp.prepare(request)
                async for chunk in up.content.iter_any():
                    await resp.write(chunk)
                await resp.write_eof()
                return resp
            data = await up.read()
            return web.Response(status=up.status, body=data, headers={"content-type": ctype})

    app = web.Application()
    app.router.add_post("/v1/chat/completions", relay)
    app.on_startup.append(on_startup)
    app.on_cleanup.append(on_cleanup)
    return app


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=8001)
    args = ap.parse_args()
    import uvloop

    web.run_app(
        make_app(),
        host="127.0.0.1",
        port=args.port,
        access_log=None,
        print=None,
        loop=uvloop.new_event_loop(),
    )


if __name__ == "__main__":
    main()
