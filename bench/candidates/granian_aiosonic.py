"""Granian RSGI + aiosonic (pure-Python asyncio client) — a bare-relay candidate beside granian_aiohttp.

Run: BENCH_UPSTREAM=http://127.0.0.1:9000/v1 granian --interface rsgi --host 127.0.0.1 --port 8002 \
       --runtime-mode mt --loop uvloop --no-ws --http 1 bench.candidates.granian_aiosonic:app
"""

from __future__ import annotations

import aiosonic

from bench.candidates.common import FORWARD, upstream_base


class Relay:
    def __init__(self) -> None:
        self.url = upstream_base() + "/chat/completions"
        self.client: aiosonic.HTTPClient | None = None

    def __rsgi_init__(self, loop) -> None:
        async def make() -> aiosonic.HTTPClient:
            return aiosonic.HTTPClient()

        self.client = loop.run_until_complete(make())

    async def __rsgi__(self, scope, proto) -> None:
        if scope.method != "POST" or scope.path != "/v1/chat/completions":
            proto.response_bytes(404, [("content-type", "text/plain")], b"not found")
            return
        body = await proto()
        sh = scope.headers
        hdrs = {k: v for k in FORWARD if (v := sh.get(k)) is not None}
        up = await self.client.post(self.url, data=body, headers=hdrs)
        ctype = up.headers.get("content-type", "application/json")
        if ctype.startswith("text/event-stream"):
            tr = proto.response_stream(
                up.status_code, [("content-type", ctype), ("cache-control", "no-cache")]
            )
            async for chunk in up.read_chunks():
                await tr.send_bytes(chunk)
            return
        data = await up.content()
        proto.response_bytes(up.status_code, [("content-type", ctype)], data)


app = Relay()
