"""(ii) Granian RSGI + aiohttp client.

Run: BENCH_UPSTREAM=http://127.0.0.1:9000/v1 granian --interface rsgi --host 127.0.0.1 --port 8002 \
       --runtime-mode st --loop uvloop --no-ws --http 1 bench.candidates.granian_aiohttp:app

Connector settings come from the environment so variants need no code change:
BENCH_POOL_LIMIT (0 = unlimited), BENCH_KEEPALIVE_S.
"""

from __future__ import annotations

import os

import aiohttp

from bench.candidates.common import FORWARD, upstream_base

JSON_CT = [("content-type", "application/json")]


class Relay:
    """An RSGI app object: the client session is made in __rsgi_init__, on Granian's event loop."""

    def __init__(self) -> None:
        self.base = upstream_base()
        self.session: aiohttp.ClientSession | None = None

    def __rsgi_init__(self, loop) -> None:
        async def make() -> aiohttp.ClientSession:
            conn = aiohttp.TCPConnector(
                limit=int(os.environ.get("BENCH_POOL_LIMIT", "0")),
                ttl_dns_cache=None,
                keepalive_timeout=float(os.environ.get("BENCH_KEEPALIVE_S", "60")),
            )
            return aiohttp.ClientSession(
                connector=conn, auto_decompress=False, skip_auto_headers=("User-Agent",)
            )

        self.session = loop.run_until_complete(make())

    def __rsgi_del__(self, loop) -> None:
        if self.session is not None:
            loop.run_until_complete(self.session.close())

    async def __rsgi__(self, scope, proto) -> None:
        if scope.method != "POST" or scope.path != "/v1/chat/completions":
            proto.response_bytes(404, [("content-type", "text/plain")], b"not found")
            return
        body = await proto()
        sh = scope.headers
        hdrs = {k: v for k in FORWARD if (v := sh.get(k)) is not None}
        async with self.session.post(self.base + "/chat/completions", data=body, headers=hdrs) as up:
            ctype = up.headers.get("content-type", "application/json")
            if ctype.startswith("text/event-stream"):
                tr = proto.response_stream(
                    up.status, [("content-type", ctype), ("cache-control", "no-cache")]
                )
                async for chunk in up.content.iter_any():
                    await tr.send_bytes(chunk)
                return
            data = await up.read()
            proto.response_bytes(up.status, [("content-type", ctype)], data)


app = Relay()
