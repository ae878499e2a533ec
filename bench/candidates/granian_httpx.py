"""(iv) Granian RSGI + httpx client.

Run: BENCH_UPSTREAM=http://127.0.0.1:9000/v1 granian --interface rsgi --host 127.0.0.1 --port 8004 \
       --runtime-mode st --loop uvloop --no-ws --http 1 bench.candidates.granian_httpx:app
"""

from __future__ import annotations

import httpx

from bench.candidates.common import FORWARD, upstream_base


class Relay:
    def __init__(self) -> None:
        self.base = upstream_base()
        self.client: httpx.AsyncClient | None = None

    def __rsgi_init__(self, loop) -> None:
        limits = httpx.Limits(max_connections=None, max_keepalive_connections=1024, keepalive_expiry=60)
        self.client = httpx.AsyncClient(limits=limits, timeout=httpx.Timeout(60.0))

    def __rsgi_del__(self, loop) -> None:
        if self.client is not None:
            loop.run_until_complete(self.client.aclose())

    async def __rsgi__(self, scope, proto) -> None:
        if scope.method != "POST" or scope.path != "/v1/chat/completions":
            proto.response_bytes(404, [("content-type", "text/plain")], b"not found")
            return
        body = await proto()
        sh = scope.headers
        hdrs = {k: v for k in FORWARD if (v := sh.get(k)) is not None}
        req = self.client.build_request("POST", self.base + "/chat/completions", content=body, headers=hdrs)
        up = await self.client.send(req, stream=True)
        try:
            ctype = up.headers.get("content-type", "application/json")
            if ctype.startswith("text/event-stream"):
                tr = proto.response_stream(
                    up.status_code, [("content-type", ctype), ("cache-control", "no-cache")]
                )
                async for chunk in up.aiter_raw():
                    await tr.send_bytes(chunk)
                return
            data = await up.aread()
            proto.response_bytes(up.status_code, [("content-type", ctype)], data)
        finally:
            await up.aclose()


app = Relay()
