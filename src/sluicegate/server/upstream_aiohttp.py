"""The aiohttp upstream client, for `server.upstream_client: aiohttp`.

pyreqwest (server/upstream_client.py, the default) costs about a quarter fewer instructions a request,
but cannot abort a request before the upstream's response headers: a client that leaves while a long
non-streaming answer is being generated no longer closes the upstream connection, so a self-hosted
server (vLLM, Ollama, llama.cpp stop generating when their client goes) keeps generating until its
answer is ready or max(first_byte, idle) passes. aiohttp closes the connection the moment the waiting
task is cancelled. Operators whose own GPUs serve long non-streaming requests choose this client
(docs/configuration.md); the answer, the errors and every record are the same with either.

One ClientSession per worker: its connector keeps connections to each upstream open. The read timeout
is the first_byte timeout until the headers and the idle timeout after them (aiohttp has one socket
read timeout; it is re-armed when the headers come); total and connect are aiohttp's own.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp

from sluicegate.config.model import Timeouts
from sluicegate.protocol.errors import GatewayError, UpstreamTimeout, UpstreamUnavailable
from sluicegate.server.upstream_client import UPSTREAM_INCOMPLETE


class AiohttpClient:
    """The same `send` as UpstreamClient, on an aiohttp connection pool."""

    def __init__(self, *, pool_size: int = 0, keepalive_s: float = 60.0) -> None:
        self._pool_size = pool_size
        self._keepalive = keepalive_s
        self._session: aiohttp.ClientSession | None = None
        # One ClientTimeout per upstream's Timeouts (building one is an attrs constructor per request).
        self._client_timeouts: dict[int, tuple[Timeouts, aiohttp.ClientTimeout]] = {}

    async def start(self) -> None:
        connector = aiohttp.TCPConnector(
            limit=self._pool_size,
            limit_per_host=0,
            ttl_dns_cache=300,
            keepalive_timeout=self._keepalive,
            enable_cleanup_closed=True,
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            auto_decompress=False,
            skip_auto_headers=("User-Agent",),
            cookie_jar=aiohttp.DummyCookieJar(),
            timeout=aiohttp.ClientTimeout(total=None),
        )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def send(
        self, method: str, url: str, headers: dict[str, str], body: bytes | None, timeouts: Timeouts
    ) -> AiohttpResponse:
        """Send a request and wait for the response headers (not the body); close it with `aclose`."""
        if self._session is None:
            await self.start()
        assert self._session is not None
        cached = self._client_timeouts.get(id(timeouts))
        if cached is None or cached[0] is not timeouts:
            cached = (
                timeouts,
                aiohttp.ClientTimeout(
                    total=timeouts.total, connect=timeouts.connect, sock_read=timeouts.first_byte
                ),
            )
            self._client_timeouts[id(timeouts)] = cached
        try:
            resp = await self._session.request(
                method, url, data=body, headers=headers, timeout=cached[1], allow_redirects=False
            )
        except BaseException as exc:
            raise map_aiohttp_error(exc, timeouts, before_headers=True) from None
        conn = resp.connection
        if conn is not None and conn.protocol is not None:
            # After the headers the read timeout is the idle gap allowed between chunks. Setting it does
            # not re-arm the timer already running with the first-byte value, so re-arm it: otherwise a
            # stall right after the first chunk would be allowed first_byte seconds instead of idle.
            conn.protocol.read_timeout = timeouts.idle
            rearm = getattr(conn.protocol, "_reschedule_timeout", None)
            if rearm is not None:
                rearm()
        return AiohttpResponse(resp, timeouts)


class AiohttpResponse:
    """An aiohttp answer behind the request path's `Answer` interface (server/upstream_client.py)."""

    __slots__ = ("_done", "_resp", "content_type", "headers", "status", "timeouts")

    def __init__(self, resp: aiohttp.ClientResponse, timeouts: Timeouts) -> None:
        self._resp = resp
        self._done = False
        self.timeouts = timeouts
        self.status = resp.status
        self.headers = resp.headers
        self.content_type = resp.headers.get("content-type", "")

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self

    async def __anext__(self) -> bytes:
        try:
            chunk = await self._resp.content.readany()
        except BaseException as exc:
            # aiohttp keeps the exception on the response's reader; its traceback would keep the relay's
            # frame, and with it Granian's transport, alive until the garbage collector runs.
            exc.__traceback__ = None
            raise map_aiohttp_error(exc, self.timeouts, before_headers=False) from None
        if not chunk:
            self._done = True
            raise StopAsyncIteration
        return chunk

    async def read(self) -> bytes:
        """The whole body; one cut short of its Content-Length is a 502 `upstream_incomplete`."""
        try:
            data = await self._resp.read()
        except aiohttp.ClientPayloadError as exc:
            exc.__traceback__ = None
            raise UpstreamUnavailable(
                "The upstream's answer was cut short (fewer bytes than its Content-Length).",
                code=UPSTREAM_INCOMPLETE,
            ) from None
        except BaseException as exc:
            exc.__traceback__ = None
            raise map_aiohttp_error(exc, self.timeouts, before_headers=False) from None
        self._done = True
        return data

    async def aclose(self) -> None:
        """An answer read to its end goes back to the pool; one abandoned closes its connection."""
        if self._done:
            self._resp.release()
        else:
            self._done = True
            self._resp.close()

    def header_list(self, drop: frozenset[str]) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = []
        for name, value in self._resp.raw_headers:
            lname = name.decode("latin-1").lower()
            if lname not in drop:
                out.append((lname, value.decode("latin-1")))
        return out


def map_aiohttp_error(exc: BaseException, timeouts: Timeouts, *, before_headers: bool) -> BaseException:
    """A network failure as the GatewayError a client should see (without upstream names or keys)."""
    if isinstance(exc, asyncio.CancelledError | GatewayError):
        return exc
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return UpstreamTimeout(
            f"Could not connect to the upstream within {timeouts.connect:g}s (connect timeout).",
            code="upstream_connect_timeout",
        )
    if isinstance(exc, aiohttp.SocketTimeoutError):
        if before_headers:
            return UpstreamTimeout(
                f"The upstream did not start answering within {timeouts.first_byte:g}s (first_byte timeout).",
                code="upstream_first_byte_timeout",
            )
        return UpstreamTimeout(
            f"The upstream sent nothing for {timeouts.idle:g}s (idle timeout).", code="upstream_idle_timeout"
        )
    if isinstance(exc, asyncio.TimeoutError | TimeoutError):
        return UpstreamTimeout(
            f"The upstream did not finish within {timeouts.total:g}s (total timeout).",
            code="upstream_total_timeout",
        )
    if isinstance(exc, aiohttp.ClientConnectorError):
        return UpstreamUnavailable(
            "The upstream could not be reached (connection refused or unreachable).",
            code="upstream_connect_error",
        )
    if isinstance(exc, aiohttp.ServerDisconnectedError | aiohttp.ClientOSError | aiohttp.ClientPayloadError):
        return UpstreamUnavailable(
            "The upstream closed the connection before answering."
            if before_headers
            else "The upstream closed the connection mid-answer.",
            code="upstream_disconnected",
        )
    if isinstance(exc, aiohttp.ClientResponseError | aiohttp.ClientError):
        return UpstreamUnavailable("The upstream sent an invalid response.", code="bad_upstream_response")
    return exc
