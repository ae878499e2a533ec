"""Stand-in OpenAI upstream for benchmarks: as fast as we can make it in Python.

Why a hand-written asyncio Protocol on uvloop rather than a framework: the upstream must be
far faster than any gateway under test while sharing one core with the load generator, so it
does the least possible work per request: a minimal HTTP/1.1 parser (Content-Length bodies,
keep-alive) and responses made of precomputed bytes.

POST /v1/chat/completions
  body without "stream": true  -> a fixed chat.completion with usage (Content-Length)
  body with "stream": true     -> SSE over chunked encoding: N chunk events, then data: [DONE]
  headers x-bench-chunks: N (default 10), x-bench-delay-ms: D (default 0) shape the stream,
  so one upstream serves every scenario (fast streams, 1,000 slow streams). The same knobs in the
  body, `"user": "bench:N:D"`, win over the headers (a gateway forwards the body's `user` field;
  it need not forward unknown headers).
POST /v1/embeddings
  bag-of-words vectors of 1,536 dimensions (each word adds 1 where its CRC-32 points), so texts that
  share most words are close: the semantic cache's bench (bench/cache_bench.py --semantic) needs
  near-identical prompts to be near. The answer is as large as a real one (1,536 numbers per input).
Anything else -> 404.

Run:  taskset -c 1 python bench/upstream.py --port 9000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import signal
import zlib

COMPLETION = json.dumps(
    {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "created": 1764000000,
        "model": "bench-model",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Hello! How can I help you today?"},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 12, "completion_tokens": 9, "total_tokens": 21},
    },
    separators=(",", ":"),
).encode()

RESP_JSON = (
    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: "
    + str(len(COMPLETION)).encode()
    + b"\r\n\r\n"
    + COMPLETION
)
RESP_404 = b"HTTP/1.1 404 Not Found\r\ncontent-type: text/plain\r\ncontent-length: 9\r\n\r\nnot found"
STREAM_HEAD = (
    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\n"
    b"transfer-encoding: chunked\r\n\r\n"
)


EMBED_DIM = 1536
WORD = re.compile(r"[a-z0-9']+")


def embeddings_answer(body: bytes) -> bytes:
    """A whole HTTP answer to /v1/embeddings: one bag-of-words vector per input, every number written
    with six decimals (a real answer's size: ~14 KB per input)."""
    try:
        value = json.loads(body).get("input")
    except ValueError:
        value = ""
    texts = [value] if isinstance(value, str) else [str(v) for v in value or ()]
    data = []
    for i, text in enumerate(texts):
        vector = [0.0] * EMBED_DIM
        for word in WORD.findall(text.lower()):
            vector[zlib.crc32(word.encode()) % EMBED_DIM] += 1.0
        norm = sum(v * v for v in vector) ** 0.5 or 1.0
        numbers = ",".join(f"{v / norm:.6f}" for v in vector)
        data.append(f'{{"object":"embedding","index":{i},"embedding":[{numbers}]}}')
    tokens = sum(len(t.split()) for t in texts)
    payload = (
        f'{{"object":"list","data":[{",".join(data)}],"model":"bench-embed",'
        f'"usage":{{"prompt_tokens":{tokens},"total_tokens":{tokens}}}}}'
    ).encode()
    return (
        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: "
        + str(len(payload)).encode()
        + b"\r\n\r\n"
        + payload
    )


def _chunked(payload: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(payload), payload)


def _event(i: int) -> bytes:
    delta = {"content": f"tok{i} "} if i else {"role": "assistant", "content": ""}
    obj = {
        "id": "chatcmpl-bench",
        "object": "chat.completion.chunk",
        "created": 1764000000,
        "model": "bench-model",
        "choices": [{"index": 0, "delta": delta, "finish_reason": None}],
    }
    return b"data: " + json.dumps(obj, separators=(",", ":")).encode() + b"\n\n"


def _final_event(n: int) -> bytes:
    obj = {
        "id": "chatcmpl-bench",
        "object": "chat.completion.chunk",
        "created": 1764000000,
        "model": "bench-model",
        "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 12, "completion_tokens": n, "total_tokens": 12 + n},
    }
    return b"data: " + json.dumps(obj, separators=(",", ":")).encode() + b"\n\n"


MAX_CHUNKS = 1000
CHUNK_EVENTS = [_chunked(_event(i)) for i in range(MAX_CHUNKS)]
TAIL = _chunked(b"data: [DONE]\n\n") + b"0\r\n\r\n"
_fast_cache: dict[int, bytes] = {}


def fast_stream(n: int) -> bytes:
    """A whole zero-delay stream as one precomputed write (n content chunks + usage + [DONE])."""
    b = _fast_cache.get(n)
    if b is None:
        b = STREAM_HEAD + b"".join(CHUNK_EVENTS[:n]) + _chunked(_final_event(n)) + TAIL
        _fast_cache[n] = b
    return b


class UpstreamProtocol(asyncio.Protocol):
    __slots__ = ("transport", "buf", "loop", "closed")

    def __init__(self) -> None:
        self.buf = b""
        self.transport: asyncio.Transport | None = None
        self.loop = asyncio.get_running_loop()
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True

    def data_received(self, data: bytes) -> None:
        buf = self.buf + data if self.buf else data
        while True:
            he = buf.find(b"\r\n\r\n")
            if he < 0:
                break
            head = buf[:he]
            clen = 0
            lower = head.lower()
            i = lower.find(b"\r\ncontent-length:")
            if i >= 0:
                j = lower.find(b"\r\n", i + 2)
                clen = int(head[i + 17 : j if j >= 0 else len(head)])
            end = he + 4 + clen
            if len(buf) < end:
                break
            body = buf[he + 4 : end]
            buf = buf[end:]
            self.handle(head, lower, body)
        self.buf = buf

    def handle(self, head: bytes, lower: bytes, body: bytes) -> None:
        if head.startswith(b"POST /v1/embeddings "):
            self.transport.write(embeddings_answer(body))
            return
        if not head.startswith(b"POST /v1/chat/completions "):
            self.transport.write(RESP_404)
            return
        if b'"stream":true' not in body and b'"stream": true' not in body:
            self.transport.write(RESP_JSON)
            return
        n, delay = 10, 0.0
        i = lower.find(b"\r\nx-bench-chunks:")
        if i >= 0:
            j = lower.find(b"\r\n", i + 2)
            n = min(MAX_CHUNKS, int(head[i + 17 : j if j >= 0 else len(head)]))
        i = lower.find(b"\r\nx-bench-delay-ms:")
        if i >= 0:
            j = lower.find(b"\r\n", i + 2)
            delay = float(head[i + 19 : j if j >= 0 else len(head)]) / 1000.0
        i = body.find(b'"user":"bench:')
        if i >= 0:  # same knobs in the body, for gateways that do not forward x-bench-* headers
            j = body.find(b'"', i + 14)
            n_s, _, d_s = body[i + 14 : j].partition(b":")
            n, delay = min(MAX_CHUNKS, int(n_s)), float(d_s or 0) / 1000.0
        if delay <= 0:
            self.transport.write(fast_stream(n))
            return
        # Slow stream: head and first chunk now, then one chunk every `delay` seconds.
        # Requests on a connection are served in order, so a pipelined request behind a
        # slow stream would interleave; clients in this bench never pipeline.
        self.transport.write(STREAM_HEAD + CHUNK_EVENTS[0])
        self.loop.call_later(delay, self._tick, 1, n, delay)

    def _tick(self, i: int, n: int, delay: float) -> None:
        if self.closed:
            return
        if i < n:
            self.transport.write(CHUNK_EVENTS[i])
            self.loop.call_later(delay, self._tick, i + 1, n, delay)
        else:
            self.transport.write(_chunked(_final_event(n)) + TAIL)


async def serve(host: str, port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(UpstreamProtocol, host, port, backlog=4096, reuse_port=True)
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    async with server:
        await stop.wait()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=9000)
    ap.add_argument("--workers", type=int, default=1, help="processes sharing the port (SO_REUSEPORT)")
    args = ap.parse_args()
    if args.host not in ("127.0.0.1", "::1", "localhost"):
        raise SystemExit("bench upstream binds to loopback only")
    for _ in range(args.workers - 1):
        if os.fork() == 0:
            break
    try:
        import uvloop

        uvloop.run(serve(args.host, args.port))
    except ImportError:
        asyncio.run(serve(args.host, args.port))


if __name__ == "__main__":
    main()
