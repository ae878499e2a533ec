"""Granian RSGI + pyreqwest (Rust reqwest/hyper client) — a bare-relay candidate beside granian_aiohttp.

Run: BENCH_UPSTREAM=http://127.0.0.1:9000/v1 granian --interface rsgi --host 127.0.0.1 --port 8002 \
       --runtime-mode mt --loop uvloop --no-ws --http 1 bench.candidates.granian_pyreqwest:app
"""

from __future__ import annotations

from pyreqwest.client import ClientBuilder

from bench.candidates.common import FORWARD, upstream_base


class Relay:
    def __init__(self) -> None:
        self.url = upstream_base() + "/chat/completions"
        self.client = None

    def __rsgi_init__(self, loop) -> None:
        async def make():
            return ClientBuilder().http1_only().build()

        self.client = loop.run_until_complete(make())

    def __rsgi_del__(self, loop) -> None:
        if self.client is not None:
            loop.run_until_complete(self.client.close())

    async def __rsgi__(self, scope, proto) -> None:
        if scope.method != "POST" or scope.path != "/v1/chat/completions":
            proto.response_bytes(404, [("content-type", "text/plain")], b"not found")
            return
        body = await proto()
        sh = scope.headers
        hdrs = {k: v for k in FORWARD if (v := sh.get(k)) is not None}
        req = self.client.post(self.url).headers(hdrs).body_bytes(body).build_streamed()
        async with req as up:
            ctype = up.headers.get("content-type", "application/json")
            if ctype.startswith("text/event-stream"):
                tr = proto.response_stream(
                    up.status, [("content-type", ctype), ("cache-control", "no-cache")]
                )
                reader = up.body_reader
                while (chunk := await reader.read_chunk()) is not None:
                    await tr.send_bytes(bytes(chunk))
                return
            data = await up.bytes()
            proto.response_bytes(up.status, [("content-type", ctype)], bytes(data))


app = Relay()
