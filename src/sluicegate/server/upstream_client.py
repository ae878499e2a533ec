"""The pool of keep-alive connections to upstreams, the four timeouts, and network failures as errors.

The client is pyreqwest (Rust reqwest/hyper under a Python binding; bench/README.md, "Upstream client:
pyreqwest"): HTTP/1.1 only, no proxy from the environment, no cookies, no redirects followed, no
decompression (bodies and Content-Encoding pass through as they came, and no Accept-Encoding is
asked for). reqwest sets the connect and read timeouts per client, so there is one client (one pool)
per distinct pair; each keeps its connections to each upstream open, so the hot path pays no TCP or
TLS handshake.

Which timeout fired is decided by the gateway's own timer, because reqwest's cannot say (its read
timeout runs from the start of the request to the headers and then between body frames, and every
deadline it has fails as a "connect" timeout before the headers). One timer per request (in
`UpstreamResponse`) fires at the earliest of its deadlines and only then looks at the clock again,
so an answer that comes in time costs one timer set and one cancelled whatever its number of chunks;
and that timer is only set 50 to 100 ms into the request (server/later.py: one beat per worker), so
most answers, over sooner, cost none (deadlines of 0.1 s or less set it at once):

- first_byte: from the start of the request to the response headers (a kept-alive connection sends at
  once; a new one connects first, under its own connect timeout);
- idle: the longest wait for the next chunk once the headers came (time spent sending the previous
  chunk to a slow client does not count: nothing was being waited for);
- total: the whole request, streams included.

When a deadline passes while the request waits on the upstream, the timer cancels the waiting task
and the wait turns that cancellation into the deadline's own error (`asyncio.timeout`'s method: a
cancellation the gateway did not make, a client that left, still wins). When the total deadline
passes while the gateway is busy with the client, the next wait fails at once. reqwest's own read
timeout (max(first_byte, idle)) and total timeout are set 50 ms beyond the gateway's: they close the
connection of a request abandoned before its headers, which pyreqwest 0.15 cannot abort (cancelling
the awaiting task stops the wait, not the request running on its Rust runtime). An answer abandoned
after its headers is closed at once by `aclose`.

Each failure maps to its own error so the client (and the retry logic) can tell a refused connection
from a slow upstream. Messages never carry the upstream's URL, headers or reqwest's own text.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any, Protocol

from pyreqwest import exceptions as rq
from pyreqwest.client import Client, ClientBuilder

from sluicegate.config.model import Timeouts
from sluicegate.protocol.errors import UpstreamTimeout, UpstreamUnavailable
from sluicegate.server.later import Entry, Later
from sluicegate.server.upstream_errors import map_error

log = logging.getLogger("sluicegate.upstream")

INF = float("inf")
# A timer the loop runs a little early (uvloop counts in milliseconds) still counts as on time.
EARLY = 0.002
# reqwest's own deadlines are set this much later than the gateway's: they only close connections.
SLACK = 0.05

FIRST_BYTE, IDLE, TOTAL = "first_byte", "idle", "total"
UPSTREAM_INCOMPLETE = "upstream_incomplete"


class Answer(Protocol):
    """An upstream's answer as the request path reads it, whichever client fetched it: status and
    headers at once, the body whole (`read`) or chunk by chunk, network failures as GatewayErrors."""

    status: int
    headers: Any  # case-insensitive `get`
    content_type: str
    timeouts: Timeouts

    def __aiter__(self) -> AsyncIterator[bytes]: ...

    async def read(self) -> bytes: ...

    async def aclose(self) -> None: ...

    def header_list(self, drop: frozenset[str]) -> list[tuple[str, str]]: ...


class UpstreamClient:
    def __init__(self, *, pool_size: int = 0, keepalive_s: float = 60.0, later: Later | None = None) -> None:
        self._pool_size = pool_size
        self._keepalive = keepalive_s
        # reqwest sets the connect and read timeouts per client: one client per distinct pair
        self._clients: dict[tuple[float, float], Client] = {}
        # per upstream's Timeouts: its client and its total as a timedelta (made once, not per request)
        self._plans: dict[int, tuple[Timeouts, Client, timedelta]] = {}
        self._later = later or Later()  # sets each request's timer once the request has run 50 ms

    async def start(self) -> None:
        """Nothing to open: a client is built for each pair of timeouts when it is first needed."""

    async def close(self) -> None:
        clients, self._clients, self._plans = list(self._clients.values()), {}, {}
        for client in clients:
            await client.close()

    def _plan(self, timeouts: Timeouts) -> tuple[Timeouts, Client, timedelta]:
        # reqwest's read timeout runs from the start of the request to the headers, then between body
        # frames; set a little beyond the gateway's own deadlines, it only closes the connection of a
        # request the gateway gave up on before its headers (see the module's docstring).
        read = max(timeouts.first_byte, timeouts.idle) + SLACK
        client = self._clients.get((timeouts.connect, read))
        if client is None:
            client = self._clients[(timeouts.connect, read)] = self._client(timeouts.connect, read)
        plan = self._plans[id(timeouts)] = (timeouts, client, timedelta(seconds=timeouts.total + SLACK))
        return plan

    def _client(self, connect: float, read: float) -> Client:
        builder = (
            ClientBuilder()
            .http1_only()
            # the header names as the gateway wrote them (lower case), not re-cased
            .http1_lower_case_headers()
            # reqwest always sends a User-Agent (pyreqwest's own name by default): an empty one says nothing
            .user_agent("")
            # bodies and Content-Encoding pass through as they came, and no Accept-Encoding is added
            .gzip(False)
            .brotli(False)
            .zstd(False)
            .deflate(False)
            .follow_redirects(False)
            .referer(False)
            .default_cookie_store(False)
            .no_proxy()  # reqwest reads HTTP(S)_PROXY by default; the gateway never did
            .connect_timeout(timedelta(seconds=connect))
            .read_timeout(timedelta(seconds=read))
            .pool_idle_timeout(timedelta(seconds=self._keepalive))
        )
        if self._pool_size:
            builder = builder.max_connections(self._pool_size)
        return builder.build()

    async def send(
        self, method: str, url: str, headers: dict[str, str], body: bytes | None, timeouts: Timeouts
    ) -> UpstreamResponse:
        """Send a request and wait for the response headers (not the body).

        The body is read from the same task (the timer cancels the task that sent), and the response
        must be closed (`aclose`) when done with it."""
        plan = self._plans.get(id(timeouts))
        if plan is None or plan[0] is not timeouts:
            plan = self._plan(timeouts)
        builder = plan[1].request(method, url).headers(headers).timeout(plan[2]).streamed_read_buffer_limit(0)
        if body is not None:
            builder = builder.body_bytes(body)
        resp = UpstreamResponse(builder.build_streamed(), timeouts, self._later)
        await resp._open()
        return resp


class UpstreamResponse:
    """An upstream's answer: status and headers at once, the body read whole (`read`) or chunk by chunk
    (`async for chunk in resp`), each as `bytes`; network failures come out as GatewayErrors."""

    __slots__ = (
        "_cancelling",
        "_done",
        "_end",
        "_entry",
        "_expired",
        "_fired",
        "_handle",
        "_limit",
        "_loop",
        "_reader",
        "_req",
        "_resp",
        "_since",
        "_task",
        "content_type",
        "headers",
        "status",
        "timeouts",
    )

    def __init__(self, req: Any, timeouts: Timeouts, later: Later | None = None) -> None:
        self._req = req
        self.timeouts = timeouts
        self.status = 0
        self.headers: Any = None
        self.content_type = ""
        self._resp: Any = None
        self._reader: Any = None
        self._done = False
        loop = self._loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None
        self._task = task
        self._cancelling = task.cancelling()
        now = loop.time()
        self._since = now  # the start of the wait under way; INF while nothing is awaited
        self._limit = timeouts.first_byte
        self._end = now + timeouts.total
        self._fired: str | None = None  # the deadline that cancelled the task
        self._expired = False  # the total deadline passed while nothing was awaited
        self._handle: asyncio.TimerHandle | None = None
        self._entry: Entry | None = None
        if later is not None and min(timeouts.first_byte, timeouts.idle, timeouts.total) > 2 * later.after:
            self._entry = later.add(UpstreamResponse._arm, self)  # most answers are over before
        else:
            self._handle = loop.call_at(min(now + timeouts.first_byte, self._end), self._check)

    def _arm(self) -> None:
        """Still running after Later's delay: the timer looks at the deadlines now, and sets itself."""
        self._entry = None
        if not self._done:
            self._check()

    def _check(self) -> None:
        now = self._loop.time() + EARLY
        waiting = self._since != INF
        if now >= self._end:
            self._handle = None
            if waiting:
                self._fire(TOTAL)
            else:
                self._expired = True
            return
        due = self._since + self._limit
        if now >= due:
            self._handle = None
            self._fire(FIRST_BYTE if self._resp is None else IDLE)
            return
        self._handle = self._loop.call_at(min(due if waiting else now + self._limit, self._end), self._check)

    def _fire(self, which: str) -> None:
        self._fired = which
        self._task.cancel()

    def _timed_out(self, which: str) -> UpstreamTimeout:
        t = self.timeouts
        if which == FIRST_BYTE:
            return UpstreamTimeout(
                f"The upstream did not start answering within {t.first_byte:g}s (first_byte timeout).",
                code="upstream_first_byte_timeout",
            )
        if which == IDLE:
            return UpstreamTimeout(
                f"The upstream sent nothing for {t.idle:g}s (idle timeout).", code="upstream_idle_timeout"
            )
        return UpstreamTimeout(
            f"The upstream did not finish within {t.total:g}s (total timeout).", code="upstream_total_timeout"
        )

    def _swallowed(self) -> BaseException:
        """The cancellation of a wait that returned a result anyway, as it should have been raised.

        pyreqwest 0.15 races a cancellation against the result inside Rust (`tokio::select!` picks at
        random when both are ready): a chunk or the headers arriving as the task is cancelled win half of
        the time, and the CancelledError is lost. The task's pending cancellation count still says it was
        asked; left unraised, a shutdown's cut, a client's leaving or a deadline would be missed."""
        if (timeout := self._ours()) is not None:
            return timeout
        return asyncio.CancelledError()

    def _ours(self) -> UpstreamTimeout | None:
        """On a CancelledError: the deadline's error if the timer's cancel was the only one, else None."""
        fired = self._fired
        if fired is None or self._task.uncancel() > self._cancelling:
            return None
        return self._timed_out(fired)

    async def _open(self) -> None:
        task = self._task
        before = task.cancelling()
        try:
            resp = await self._req.__aenter__()
        except asyncio.CancelledError:
            self._stop()
            if (timeout := self._ours()) is None:
                raise
            raise timeout from None
        except BaseException as exc:
            self._stop()
            if isinstance(exc, rq.RequestTimeoutError):  # reqwest's deadlines all say "connect" here
                now = self._loop.time() + EARLY
                if now >= self._end:
                    raise self._timed_out(TOTAL) from None
                if now >= self._end - self.timeouts.total + self.timeouts.first_byte:
                    raise self._timed_out(FIRST_BYTE) from None
            raise map_error(exc, self.timeouts, before_headers=True) from None
        if task.cancelling() > before:  # a cancellation pyreqwest swallowed (see `_swallowed`)
            self._stop()
            await self._req.__aexit__(None, None, None)
            raise self._swallowed()
        self._resp = resp
        self._since = INF
        idle = self._limit = self.timeouts.idle
        handle = self._handle
        # The timer must never be later than a wait starting now could be due: with an idle timeout
        # shorter than first_byte, bring it forward (with the defaults, equal, it stays as it is).
        if handle is not None and handle.when() > (due := self._loop.time() + idle):
            handle.cancel()
            self._handle = self._loop.call_at(min(due, self._end), self._check)
        self.status = resp.status
        headers = self.headers = resp.headers
        try:
            self.content_type = headers.get("content-type") or ""
        except ValueError:  # not ASCII: no usable media type
            self.content_type = ""

    def _stop(self) -> None:
        if self._entry is not None:
            Later.cancel(self._entry)
            self._entry = None
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        self._since = INF

    def __aiter__(self) -> UpstreamResponse:
        return self

    async def __anext__(self) -> bytes:
        if self._expired:
            raise self._timed_out(TOTAL)
        reader = self._reader
        if reader is None:
            reader = self._reader = self._resp.body_reader
        self._since = self._loop.time()
        task = self._task
        before = task.cancelling()
        try:
            chunk = await reader.read_chunk()
        except asyncio.CancelledError:
            self._since = INF
            if (timeout := self._ours()) is None:
                raise
            raise timeout from None
        except BaseException as exc:
            self._since = INF
            if isinstance(exc, rq.RequestTimeoutError):
                raise self._timed_out(TOTAL if self._loop.time() + EARLY >= self._end else IDLE) from None
            raise map_error(exc, self.timeouts, before_headers=False) from None
        self._since = INF
        if task.cancelling() > before:  # a cancellation pyreqwest swallowed (see `_swallowed`)
            raise self._swallowed()
        if chunk is None:
            self._done = True
            raise StopAsyncIteration
        return bytes(chunk)

    async def read(self) -> bytes:
        """The whole body. One cut short (of its Content-Length, or mid-chunk) is a 502
        `upstream_incomplete`; the idle timeout holds between its chunks, as in a stream."""
        parts: list[bytes] = []
        try:
            async for chunk in self:
                parts.append(chunk)
        except UpstreamUnavailable as exc:
            if exc.code == "upstream_disconnected":
                raise UpstreamUnavailable(
                    "The upstream's answer was cut short (fewer bytes than its Content-Length).",
                    code=UPSTREAM_INCOMPLETE,
                ) from None
            raise
        return parts[0] if len(parts) == 1 else b"".join(parts)

    async def aclose(self) -> None:
        """Stop the timer; an answer not read to its end closes its connection (the upstream sees the
        request abandoned), one read to the end has already gone back to the pool."""
        if self._entry is not None:
            Later.cancel(self._entry)
            self._entry = None
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        if self._resp is not None and not self._done:
            self._done = True
            self._resp = self._reader = None
            await self._req.__aexit__(None, None, None)

    def header_list(self, drop: frozenset[str]) -> list[tuple[str, str]]:
        """The headers as (lower-case name, value) pairs, but those named in `drop`."""
        headers = self.headers
        try:
            return [(name, value) for name, value in headers.items() if name not in drop]
        except ValueError:  # a value that is not visible ASCII (obs-text): pyreqwest gives no str for it
            out: list[tuple[str, str]] = []
            for name in dict.fromkeys(headers.keys()):
                if name in drop:
                    continue
                try:
                    values = headers.getall(name)
                except ValueError:
                    log.warning("an upstream header with a non-ASCII value was not relayed")
                    continue
                out.extend((name, value) for value in values)
            return out


def response_headers(resp: Answer, drop: frozenset[str]) -> list[tuple[str, str]]:
    """Upstream headers a client relies on (ids, processing time, rate limits, content type)."""
    return resp.header_list(drop)
