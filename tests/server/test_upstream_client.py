"""The upstream client (pyreqwest) against a raw socket server: what goes on the wire, and each failure's code.

The e2e tests cover the same through a running gateway; these pin the client's own promises where a
raw server can misbehave exactly (a stall before a given chunk, a body short of its length, garbage).
"""

from __future__ import annotations

import asyncio
import gzip
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from sluicegate.config.model import Timeouts
from sluicegate.protocol.errors import GatewayError
from sluicegate.server.upstream_client import UpstreamClient, UpstreamResponse, response_headers

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter, bytes], Awaitable[None]]


class Server:
    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.heads: list[bytes] = []
        self.closed_at: list[float] = []
        self.server: asyncio.Server | None = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = b""
        while b"\r\n\r\n" not in head:
            data = await reader.read(65536)
            if not data:
                writer.close()
                return
            head += data
        self.heads.append(head.split(b"\r\n\r\n")[0])

        async def watch() -> None:  # when the client closes the connection
            try:
                while await reader.read(65536):
                    pass
            except OSError:
                pass
            self.closed_at.append(time.monotonic())

        watcher = asyncio.ensure_future(watch())
        try:
            await self.handler(reader, writer, head)
        except (ConnectionError, OSError):
            pass
        finally:
            await asyncio.sleep(0)
            if watcher.done():
                writer.close()

    async def __aenter__(self) -> str:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()


def chunked_head(ctype: bytes = b"text/event-stream") -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Type: " + ctype + b"\r\nTransfer-Encoding: chunked\r\n\r\n"


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


@pytest.fixture
async def client() -> AsyncIterator[UpstreamClient]:
    c = UpstreamClient()
    await c.start()
    yield c
    await c.close()


async def failure(coro: Awaitable[object]) -> GatewayError:
    with pytest.raises(GatewayError) as caught:
        await coro
    return caught.value


async def read_all(resp: UpstreamResponse) -> list[bytes]:
    try:
        return [c async for c in resp]
    finally:
        await resp.aclose()


async def test_nothing_is_added_on_the_gateways_behalf_and_nothing_is_decoded(
    client: UpstreamClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # reqwest reads HTTP(S)_PROXY by default: a proxy that does not exist would fail every request
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    monkeypatch.setenv("http_proxy", "http://127.0.0.1:9")
    monkeypatch.setenv("ALL_PROXY", "http://127.0.0.1:9")
    body = gzip.compress(b'{"ok": true}')

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, head: bytes) -> None:
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Encoding: gzip\r\n"
            b"Set-Cookie: a=b\r\nX-Request-Id: up-1\r\nx-ratelimit-remaining-requests: 5\r\n"
            b"Connection: close\r\nContent-Length: %d\r\n\r\n" % len(body) + body
        )
        await writer.drain()
        writer.close()  # one request a connection: the next one must come on a new connection

    server = Server(handler)
    async with server as base:
        headers = {"content-type": "application/json", "authorization": "Bearer k"}
        resp = await client.send("POST", base + "/v1/chat/completions", headers, b"{}", Timeouts())
        assert resp.status == 200 and resp.content_type == "application/json"
        assert await resp.read() == body  # not decompressed
        await resp.aclose()
        relayed = dict(response_headers(resp, frozenset({"content-length", "set-cookie"})))
        assert relayed["content-encoding"] == "gzip" and relayed["x-request-id"] == "up-1"
        # the cookie the upstream set is not sent back
        again = await client.send("POST", base + "/v1/chat/completions", headers, b"{}", Timeouts())
        await again.read()
        await again.aclose()
    sent = [h.decode().lower().split("\r\n") for h in server.heads]
    assert len(sent) == 2
    for lines in sent:
        names = {line.split(":", 1)[0] for line in lines[1:]}
        assert names <= {"content-type", "authorization", "accept", "user-agent", "host", "content-length"}
        assert "user-agent: " in lines or "user-agent:" in lines  # reqwest always sends one: empty
        assert "cookie" not in names and "accept-encoding" not in names


async def test_a_redirect_is_relayed_not_followed(client: UpstreamClient) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, head: bytes) -> None:
        writer.write(b"HTTP/1.1 302 Found\r\nLocation: /elsewhere\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()

    server = Server(handler)
    async with server as base:
        resp = await client.send("GET", base + "/v1/models", {}, None, Timeouts())
        assert resp.status == 302 and resp.headers.get("location") == "/elsewhere"
        await resp.aclose()
    assert len(server.heads) == 1


async def test_a_stream_comes_chunk_by_chunk_as_it_is_sent(client: UpstreamClient) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, head: bytes) -> None:
        writer.write(chunked_head())
        for i in range(3):
            writer.write(chunk(b"data: %d\n\n" % i))
            await writer.drain()
            await asyncio.sleep(0.2)
        writer.write(b"0\r\n\r\n")
        await writer.drain()

    async with Server(handler) as base:
        resp = await client.send("GET", base + "/s", {}, None, Timeouts())
        started, seen = time.monotonic(), []
        async for piece in resp:
            seen.append((piece, time.monotonic() - started))
        await resp.aclose()
    assert [p for p, _ in seen] == [b"data: 0\n\n", b"data: 1\n\n", b"data: 2\n\n"]
    assert seen[0][1] < 0.15, "the first chunk was held back"


@pytest.mark.parametrize(("first_byte", "idle"), [(5.0, 0.4), (0.2, 5.0)])
async def test_idle_holds_between_chunks_whatever_first_byte_is(
    client: UpstreamClient, first_byte: float, idle: float
) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, head: bytes) -> None:
        writer.write(chunked_head() + chunk(b"data: 0\n\n"))
        await writer.drain()
        await asyncio.sleep(0.3 if idle > 1 else 3)  # longer than first_byte / than idle
        writer.write(chunk(b"data: 1\n\n") + b"0\r\n\r\n")
        await writer.drain()
        await asyncio.sleep(3)

    server = Server(handler)
    async with server as base:
        t = Timeouts(first_byte=first_byte, idle=idle, total=30)
        resp = await client.send("GET", base + "/s", {}, None, t)
        if idle > 1:  # a gap longer than first_byte but shorter than idle is fine
            assert await read_all(resp) == [b"data: 0\n\n", b"data: 1\n\n"]
            return
        started = time.monotonic()
        error = await failure(read_all(resp))
        waited = time.monotonic() - started
        await asyncio.sleep(0.2)  # the server's side sees the close
    assert error.code == "upstream_idle_timeout"
    assert 0.3 <= waited < 1.5
    assert server.closed_at, "the stalled upstream connection was not closed"


async def test_first_byte_and_total_each_fail_with_their_own_code(client: UpstreamClient) -> None:
    async def hang(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, head: bytes) -> None:
        await asyncio.sleep(5)

    async def endless(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, head: bytes) -> None:
        writer.write(chunked_head())
        for i in range(100):
            writer.write(chunk(b"data: %d\n\n" % i))
            await writer.drain()
            await asyncio.sleep(0.1)

    async with Server(hang) as base:
        t = Timeouts(first_byte=0.3, idle=0.3, total=30)
        started = time.monotonic()
        error = await failure(client.send("POST", base + "/h", {}, b"{}", t))
        assert error.code == "upstream_first_byte_timeout" and error.status == 504
        assert time.monotonic() - started < 1.5
    async with Server(endless) as base:
        resp = await client.send("GET", base + "/e", {}, None, Timeouts(first_byte=5, idle=5, total=0.8))
        error = await failure(read_all(resp))
        assert error.code == "upstream_total_timeout"


async def test_total_passing_while_the_gateway_is_busy_fails_the_next_read(client: UpstreamClient) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, head: bytes) -> None:
        writer.write(chunked_head() + chunk(b"data: 0\n\n") + chunk(b"data: 1\n\n"))
        await writer.drain()
        await asyncio.sleep(3)

    async with Server(handler) as base:
        resp = await client.send("GET", base + "/s", {}, None, Timeouts(total=0.3))
        first = await resp.__anext__()
        assert first.startswith(b"data: 0")
        await asyncio.sleep(0.5)  # a slow client: the deadline passes while nothing is awaited upstream
        error = await failure(resp.__anext__())
        await resp.aclose()
    assert error.code == "upstream_total_timeout"


async def test_a_client_that_leaves_wins_over_a_deadline(client: UpstreamClient) -> None:
    async def hang(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, head: bytes) -> None:
        writer.write(chunked_head())
        await writer.drain()
        await asyncio.sleep(5)

    async with Server(hang) as base:
        resp = await client.send("GET", base + "/s", {}, None, Timeouts(idle=0.2))

        async def relay() -> None:
            async for _ in resp:
                pass

        task = asyncio.ensure_future(relay())
        await asyncio.sleep(0.1)
        task.cancel()  # what the disconnect watcher does
        with pytest.raises(asyncio.CancelledError):
            await task
        await resp.aclose()


async def test_network_failures_map_to_their_codes(client: UpstreamClient) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    error = await failure(client.send("GET", f"http://127.0.0.1:{dead}/v1/x", {}, None, Timeouts()))
    assert (error.code, error.status) == ("upstream_connect_error", 502)

    async def close(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, head: bytes) -> None:
        writer.close()

    async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, head: bytes) -> None:
        writer.write(b"this is not http\r\n\r\n")
        await writer.drain()
        writer.close()

    async def short(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, head: bytes) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{}")
        await writer.drain()
        writer.close()

    async def cut(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, head: bytes) -> None:
        writer.write(chunked_head() + chunk(b"data: 0\n\n"))
        await writer.drain()
        await asyncio.sleep(0.1)
        writer.close()

    async with Server(close) as base:
        error = await failure(client.send("GET", base + "/x", {}, None, Timeouts()))
        assert error.code == "upstream_disconnected"
    async with Server(garbage) as base:
        error = await failure(client.send("GET", base + "/x", {}, None, Timeouts()))
        assert error.code == "bad_upstream_response"
    async with Server(short) as base:
        resp = await client.send("GET", base + "/x", {}, None, Timeouts())
        error = await failure(resp.read())
        await resp.aclose()
        assert (error.code, error.status) == ("upstream_incomplete", 502)
    async with Server(cut) as base:
        resp = await client.send("GET", base + "/x", {}, None, Timeouts())
        error = await failure(read_all(resp))
        assert error.code == "upstream_disconnected"
        assert "127.0.0.1" not in error.message  # nothing of the upstream's address or reqwest's text


async def test_a_connect_that_hangs_is_a_connect_timeout(client: UpstreamClient) -> None:
    # A listener whose accept queue is full: the kernel drops further SYNs, so connecting hangs.
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    try:
        for _ in range(8):
            f = socket.socket()
            f.setblocking(False)
            f.connect_ex(("127.0.0.1", port))
            fillers.append(f)
        await asyncio.sleep(0.1)
        t = Timeouts(connect=0.3, first_byte=5, idle=5, total=30)
        started = time.monotonic()
        error = await failure(client.send("GET", f"http://127.0.0.1:{port}/x", {}, None, t))
    finally:
        for f in fillers:
            f.close()
        listener.close()
    assert (error.code, error.status) == ("upstream_connect_timeout", 504)
    assert time.monotonic() - started < 2


class SwallowingReader:
    """A body reader that, like pyreqwest 0.15's when a chunk and a cancellation arrive together, answers
    the chunk and drops the CancelledError (its `tokio::select!` picks either at random)."""

    def __init__(self) -> None:
        self.waiting = asyncio.Event()

    async def read_chunk(self) -> bytes:
        self.waiting.set()
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            pass
        return b"data: late\n\n"


async def test_a_cancellation_the_reader_swallows_is_raised_all_the_same(client: UpstreamClient) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, head: bytes) -> None:
        writer.write(chunked_head())
        writer.write(chunk(b"data: 0\n\n"))
        await writer.drain()
        await asyncio.sleep(5)

    async with Server(handler) as base:
        swallower = SwallowingReader()

        async def relay() -> list[bytes]:
            resp = await client.send("GET", base + "/s", {}, None, Timeouts())
            resp._reader = swallower  # the next read swallows the cancel
            try:
                return [c async for c in resp]
            finally:
                await resp.aclose()

        task = asyncio.ensure_future(relay())
        await asyncio.wait_for(swallower.waiting.wait(), 5)
        task.cancel()
        # A shutdown's cut, a client that left: the relay must end as cancelled, not go on reading.
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(task, 5)


async def test_the_timer_is_set_only_for_a_request_still_running_after_the_beat(
    client: UpstreamClient,
) -> None:
    """Most answers come within milliseconds: they set no timer at all (server/later.py). A request
    still waiting after the beat sets it then, and its deadline is kept as exactly as before."""

    async def quick(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, head: bytes) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}")
        await writer.drain()

    async def slow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, head: bytes) -> None:
        await asyncio.sleep(0.25)
        await quick(reader, writer, head)

    async def hang(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, head: bytes) -> None:
        await asyncio.sleep(5)

    async with Server(quick) as base:
        resp = await client.send("GET", base + "/q", {}, None, Timeouts())
        entry = resp._entry
        assert entry is not None and resp._handle is None
        assert await read_all(resp) == [b"{}"]
        assert entry[1] is None and resp._handle is None  # cancelled: no timer was ever set
    async with Server(slow) as base:
        resp = await client.send("GET", base + "/s", {}, None, Timeouts())
        assert resp._entry is None and resp._handle is not None  # set by the beat while it waited
        assert await read_all(resp) == [b"{}"]
        assert resp._handle is None
    async with Server(hang) as base:
        started = time.monotonic()
        error = await failure(client.send("GET", base + "/h", {}, None, Timeouts(first_byte=0.3)))
        waited = time.monotonic() - started
    assert error.code == "upstream_first_byte_timeout"
    assert 0.29 <= waited < 1.0, waited  # the deadline's own time, not the beat's
