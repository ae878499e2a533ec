"""Relaying an upstream's answer to the client: whole, or as a stream chunk by chunk.

A stream is never buffered: each chunk is sent as it arrives. Once the status line has gone out, a
failure can only be reported inside the stream, so it becomes an `{"error": ...}` event (which the
official SDKs raise as an APIError) followed by `[DONE]`, never a silent truncation.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

import aiohttp

from sluicegate.config.model import Timeouts
from sluicegate.protocol.errors import GatewayError
from sluicegate.protocol.sse import DONE, DONE_EVENT, SSEDecoder, error_event
from sluicegate.server.upstream_client import map_error

log = logging.getLogger("sluicegate.relay")

try:  # Granian raises these when the client has gone
    from granian.rsgi import ProtocolClosed, ProtocolError

    CLIENT_GONE: tuple[type[BaseException], ...] = (ProtocolClosed, ProtocolError, ConnectionError)
except ImportError:  # pragma: no cover
    CLIENT_GONE = (ConnectionError,)


BUDGET_EXCEEDED = "budget_exceeded"


class EndStream(Exception):
    """Raised by an observer to end a stream with an in-band error (the answer reached its budget).

    The event that raised is not forwarded; what came before it is.
    """

    def __init__(self, message: str, code: str = BUDGET_EXCEEDED, type_: str = "insufficient_quota") -> None:
        super().__init__(message)
        self.message, self.code, self.type = message, code, type_


class StreamObserver:
    """What the relay tells metering about a stream. The default sees every event and keeps nothing.

    `on_event` returns whether the event is forwarded (metering hides the usage chunk it asked for
    when the client did not), or raises `EndStream` to end the stream there.
    """

    def on_event(self, data: bytes) -> bool:
        return True

    def on_first_byte(self) -> None:
        pass


async def relay_stream(
    transport: Any,
    resp: aiohttp.ClientResponse,
    timeouts: Timeouts,
    observer: StreamObserver,
    *,
    filtering: bool,
    cut_message: Callable[[], str | None] | None = None,
) -> str | None:
    """Forward SSE events until the upstream ends. Returns an error code if the stream failed.

    With `filtering` off, chunks go out exactly as received and only the last bytes are looked at
    (for `[DONE]`); with it on, chunks are split into events so metering can see and drop some.
    """
    decoder = SSEDecoder()
    saw_done = False
    first = True
    error: str | None = None
    try:
        async for chunk in resp.content.iter_any():
            if first:
                observer.on_first_byte()
                first = False
            events = decoder.feed(chunk)
            if filtering:
                parts = []
                try:
                    for ev in events:
                        if ev.data == DONE:
                            saw_done = True
                            parts.append(ev.raw)
                        elif observer.on_event(ev.data):
                            parts.append(ev.raw)
                finally:  # on EndStream, what came before the refused event still goes out
                    if parts:
                        await transport.send_bytes(b"".join(parts))
            else:
                for ev in events:
                    if ev.data == DONE:
                        saw_done = True
                    else:
                        observer.on_event(ev.data)
                await transport.send_bytes(chunk)
        for ev in decoder.flush():  # an upstream that ended without the final blank line
            if ev.data == DONE:
                saw_done = True
            elif observer.on_event(ev.data):
                # Unfiltered, its bytes already went out: only the terminating blank line is missing.
                await transport.send_bytes(ev.raw if filtering else b"\n\n")
        if not saw_done:
            await transport.send_bytes(DONE_EVENT)
    except CLIENT_GONE:
        raise
    except EndStream as stop:
        await transport.send_bytes(error_event(stop.message, stop.type, stop.code) + DONE_EVENT)
        return stop.code
    except asyncio.CancelledError:
        message = cut_message() if cut_message is not None else None
        if message:  # ended by the gateway's shutdown, not by the client: say so in the stream
            with contextlib.suppress(Exception):
                await transport.send_bytes(error_event(message, "api_error", "gateway_shutdown") + DONE_EVENT)
        raise
    except BaseException as exc:
        # aiohttp keeps the exception on the response's reader; its traceback would keep this frame,
        # and with it Granian's transport, alive until the garbage collector runs, and Granian ends
        # the response only when the transport is freed: the client would wait for the end.
        exc.__traceback__ = None
        mapped = map_error(exc, timeouts, before_headers=False)
        if not isinstance(mapped, GatewayError):
            log.exception("stream relay failed")
            mapped = GatewayError("The stream failed inside the gateway.")
        error = mapped.code or "stream_error"
        await transport.send_bytes(error_event(mapped.message, mapped.type, mapped.code) + DONE_EVENT)
    return error


def first_byte_clock() -> Callable[[], float]:
    t0 = time.perf_counter()
    return lambda: time.perf_counter() - t0
