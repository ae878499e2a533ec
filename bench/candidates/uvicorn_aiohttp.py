"""(iii) uvicorn (httptools, uvloop) raw ASGI + aiohttp client.

Run: BENCH_UPSTREAM=http://127.0.0.1:9000/v1 uvicorn --host 127.0.0.1 --port 8003 --loop uvloop \
       --http httptools --no-access-log --lifespan on bench.candidates.uvicorn_aiohttp:app
"""

from __future__ import annotations

import aiohttp

from bench.candidates.common import FORWARD, upstream_base

FWD = tuple(k.encode() for k in FORWARD)


class Relay:
    def __init__(self) -> None:
        self.base = upstream_base()
        self.session: aiohttp.ClientSession | None = None

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "lifespan":
            while True:
                msg = await receive()
                if msg["type"] == "lifespan.startup":
                    conn = aiohttp.TCPConnector(limit=0, ttl_dns_cache=None, keepalive_timeout=60)
                    self.session = aiohttp.ClientSession(
                        connector=conn, auto_decompress=False, skip_auto_headers=("User-Agent",)
                    )
                    await send({"type": "lifespan.startup.complete"})
                elif msg["type"] == "lifespan.shutdown":
                    await self.session.close()
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        if scope["method"] != "POST" or scope["path"] != "/v1/chat/completions":
            await send(
                {"type": "http.response.start", "status": 404, "headers": [(b"content-type", b"text/plain")]}
            )
            await send({"type": "http.response.body", "body": b"not found"})
            return
        chunks = []
        while True:
            msg = await receive()
            chunks.append(msg.get("body", b""))
            if not msg.get("more_body"):
                break
        body = b"".join(chunks)
        hdrs = {k.decode(): v.decode() for k, v in scope["headers"] if k in FWD}
        async with self.session.post(self.base + "/chat/completions", data=body, headers=hdrs) as up:
            ctype = up.headers.get("content-type", "application/json")
            if ctype.startswith("text/event-stream"):
                await send(
                    {
                        "type": "http.response.start",
                        "status": up.status,
                        "headers": [(b"content-type", ctype.encode()), (b"cache-control", b"no-cache")],
                    }
                )
                async for chunk in up.content.iter_any():
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
                await send({"type": "http.response.body", "body": b""})
                return
            data = await up.read()
            await send(
                {
                    "type": "http.response.start",
                    "status": up.status,
                    "headers": [
                        (b"content-type", ctype.encode()),
                        (b"content-length", str(len(data)).encode()),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": data})


app = Relay()
