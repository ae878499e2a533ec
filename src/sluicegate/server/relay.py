"""Relaying an upstream's answer to the client: whole, or as a stream chunk by chunk.

A stream is never buffered: each chunk is sent as it arrives. Once the status line has gone out, a
failure can only be reported inside the stream, so it becomes an `{"error": ...}` event (which the
official SDKs raise as an APIError) followed by `[DONE]`, never a silent truncation.

A chat or completions stream is complete when the upstream sent `[DONE]` or a `finish_reason` (some
upstreams omit `[DONE]`; the gateway then adds it). One that simply stops with neither, as llama.cpp's
server does when it fails after its headers, is reported the same way as a cut connection: an error
event with `code: "upstream_stream_incomplete"`, then `[DONE]` so that clients waiting for it stop.
When the client asked for usage and the upstream sent none, the gateway's own count goes out as an
OpenAI usage chunk (`choices: []`) just before `[DONE]`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

from sluicegate.config.model import Timeouts
from sluicegate.metering.stream import carries_value
from sluicegate.metering.usage import Usage
from sluicegate.protocol.errors import GatewayError
from sluicegate.protocol.sse import DONE, DONE_EVENT, SSEDecoder, error_event
from sluicegate.server.upstream_client import Answer
from sluicegate.server.upstream_errors import map_error

log = logging.getLogger("sluicegate.relay")

try:  # Granian raises these when the client has gone
    from granian.rsgi import ProtocolClosed, ProtocolError

    CLIENT_GONE: tuple[type[BaseException], ...] = (ProtocolClosed, ProtocolError, ConnectionError)
except ImportError:  # pragma: no cover
    CLIENT_GONE = (ConnectionError,)


INCOMPLETE = "upstream_stream_incomplete"
INCOMPLETE_MESSAGE = "The upstream ended the stream before the answer was complete."
_FINISH_KEY = b'"finish_reason"'


def has_finish_reason(data: bytes) -> bool:
    """Whether a chat/completions chunk carries a non-null `finish_reason` (a byte search, no parse)."""
    at = data.find(_FINISH_KEY)
    return at >= 0 and carries_value(data, _FINISH_KEY, at)


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
    when the client did not), or raises `EndStream` to end the stream there. `usage_chunk` is
    called once at the end of a complete stream whose client asked for usage: the bytes of a usage
    event to send when the upstream reported none; `estimated_usage` is the same count for
    translators that write their own usage (Anthropic's).
    """

    __slots__ = ()  # so that its subclasses' __slots__ hold (one per concurrent stream)

    def on_event(self, data: bytes) -> bool:
        return True

    def on_first_byte(self) -> None:
        pass

    def usage_chunk(self) -> bytes | None:
        return None

    def estimated_usage(self) -> Usage | None:
        """The gateway's own count when the upstream reported no usage (settles it); else None."""
        return None


async def relay_stream(
    transport: Any,
    resp: Answer,
    timeouts: Timeouts,
    observer: StreamObserver,
    *,
    filtering: bool,
    cut_message: Callable[[], str | None] | None = None,
    check_end: bool = False,
    wants_usage: bool = False,
) -> str | None:
    """Forward SSE events until the upstream ends. Returns an error code if the stream failed.

    With `filtering` off, chunks go out exactly as received and only the last bytes are looked at
    (for `[DONE]`); with it on, chunks are split into events so metering can see and drop some.
    `check_end` (chat and completions streams) reports a stream with neither `[DONE]` nor a
    finish_reason as incomplete; `wants_usage` lets the observer add its usage chunk before `[DONE]`.
    """
    decoder = SSEDecoder()
    saw_done = False
    # The stream's last two events, by reference: a finish_reason comes in the last chunk but one
    # (before the usage chunk) or the last; looking only at them when `[DONE]` never came keeps the
    # per-chunk cost at two assignments.
    last = prev = b""
    first = True
    error: str | None = None
    try:
        async for chunk in resp:
            if first:
                observer.on_first_byte()
                first = False
            data = decoder.single(chunk)
            if data is not None:  # one whole event, the common chunk: no Event, no list
                if data == DONE:
                    if wants_usage and not saw_done:
                        extra = observer.usage_chunk()
                        if extra:
                            chunk = extra + chunk
                    saw_done = True
                else:
                    if data:  # not an empty event
                        prev, last = last, data
                    if not observer.on_event(data) and filtering:
                        continue
                await transport.send_bytes(chunk)
                continue
            events = decoder.feed(chunk)
            if filtering:
                parts = []
                try:
                    for ev in events:
                        if ev.data == DONE:
                            saw_done = True
                            if wants_usage:
                                extra = observer.usage_chunk()
                                if extra:
                                    parts.append(extra)
                            parts.append(ev.raw)
                        else:
                            if ev.data:  # not a keep-alive comment
                                prev, last = last, ev.data
                            if observer.on_event(ev.data):
                                parts.append(ev.raw)
                finally:  # on EndStream, what came before the refused event still goes out
                    if parts:
                        await transport.send_bytes(b"".join(parts))
            else:
                done_before = saw_done
                for ev in events:
                    if ev.data == DONE:
                        saw_done = True
                    else:
                        if ev.data:  # not a keep-alive comment
                            prev, last = last, ev.data
                        observer.on_event(ev.data)
                if wants_usage and saw_done and not done_before:
                    chunk = _with_usage_before_done(chunk, observer)
                await transport.send_bytes(chunk)
        for ev in decoder.flush():  # an upstream that ended without the final blank line
            if ev.data == DONE:
                saw_done = True
            else:
                if ev.data:
                    prev, last = last, ev.data
                if observer.on_event(ev.data):
                    # Unfiltered, its bytes already went out: only the terminating blank line is missing.
                    await transport.send_bytes(ev.raw if filtering else b"\n\n")
        if not saw_done:
            if check_end and not (has_finish_reason(last) or has_finish_reason(prev)):
                error = INCOMPLETE
                log.error("upstream stream ended without [DONE] or a finish_reason (%s)", INCOMPLETE)
                await transport.send_bytes(
                    error_event(INCOMPLETE_MESSAGE, "api_error", INCOMPLETE) + DONE_EVENT
                )
                return error
            extra = observer.usage_chunk() if wants_usage else None
            await transport.send_bytes(extra + DONE_EVENT if extra else DONE_EVENT)
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
        # A traceback kept anywhere would keep this frame, and with it Granian's transport, alive until
        # the garbage collector runs, and Granian ends the response only when the transport is freed:
        # the client would wait for the end. So none is kept.
        exc.__traceback__ = None
        mapped = map_error(exc, timeouts, before_headers=False)
        if not isinstance(mapped, GatewayError):
            log.exception("stream relay failed")
            mapped = GatewayError("The stream failed inside the gateway.")
        error = mapped.code or "stream_error"
        await transport.send_bytes(error_event(mapped.message, mapped.type, mapped.code) + DONE_EVENT)
    return error


def _with_usage_before_done(chunk: bytes, observer: StreamObserver) -> bytes:
    """An unfiltered chunk holding `[DONE]`, with the observer's usage chunk put just before it.

    Only when `data: [DONE]` lies whole inside this chunk; if it was split across reads (its start
    already sent), the usage chunk is left out rather than corrupting the event.
    """
    at = chunk.rfind(b"data: [DONE]")
    if at < 0:
        at = chunk.rfind(b"data:[DONE]")
    if at < 0 or (at > 0 and chunk[at - 1 : at] != b"\n"):
        return chunk
    extra = observer.usage_chunk()
    return chunk[:at] + extra + chunk[at:] if extra else chunk


def first_byte_clock() -> Callable[[], float]:
    t0 = time.perf_counter()
    return lambda: time.perf_counter() - t0
