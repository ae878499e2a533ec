"""The pool of keep-alive connections to upstreams, and the mapping of network failures to errors.

One aiohttp ClientSession per worker process: its connector keeps connections to each upstream open so
the hot path pays no TCP or TLS handshake. Each failure mode maps to its own error so the client (and
the retry logic) can tell a refused connection from a slow upstream.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp

from sluicegate.config.model import Timeouts
from sluicegate.protocol.errors import GatewayError, UpstreamTimeout, UpstreamUnavailable


class UpstreamClient:
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
    ) -> aiohttp.ClientResponse:
        """Send a request and wait for the response headers (not the body)."""
        assert self._session is not None, "UpstreamClient.start() was not awaited"
        cached = self._client_timeouts.get(id(timeouts))
        if cached is None or cached[0] is not timeouts:
            cached = (
                timeouts,
                aiohttp.ClientTimeout(
                    total=timeouts.total, connect=timeouts.connect, sock_read=timeouts.first_byte
                ),
            )
            self._client_timeouts[id(timeouts)] = cached
        timeout = cached[1]
        try:
            resp = await self._session.request(
                method, url, data=body, headers=headers, timeout=timeout, allow_redirects=False
            )
        except BaseException as exc:
            raise map_error(exc, timeouts, before_headers=True) from None
        conn = resp.connection
        if conn is not None and conn.protocol is not None:
            # After the headers the read timeout is the idle gap allowed between chunks. Setting it does
            # not re-arm the timer already running with the first-byte value, so re-arm it: otherwise a
            # stall right after the first chunk would be allowed first_byte seconds instead of idle.
            conn.protocol.read_timeout = timeouts.idle
            rearm = getattr(conn.protocol, "_reschedule_timeout", None)
            if rearm is not None:
                rearm()
        return resp


def map_error(exc: BaseException, timeouts: Timeouts, *, before_headers: bool) -> BaseException:
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


def response_headers(resp: Any, drop: frozenset[str]) -> list[tuple[str, str]]:
    """Upstream headers a client relies on (ids, processing time, rate limits, content type)."""
    out: list[tuple[str, str]] = []
    for name, value in resp.raw_headers:
        lname = name.decode("latin-1").lower()
        if lname not in drop:
            out.append((lname, value.decode("latin-1")))
    return out
