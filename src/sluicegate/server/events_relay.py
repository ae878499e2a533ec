"""Relaying a same-wire stream whose protocol ends with an event instead of `[DONE]` (the Responses API).

Bytes go out exactly as they arrive (no re-encoding, no split), as in the plain relay; metering sees
each event (a Responses stream's usage is inside `response.completed`). No `[DONE]` is added: this wire
has none. The codec's `StreamEnd` says whether the last event made the stream complete; a stream that
stops before it, or fails, ends with the wire's own in-band error event (`upstream_stream_incomplete`,
or the failure's code), so a client never takes a cut answer for a whole one.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from sluicegate.protocol.errors import GatewayError
from sluicegate.protocol.sse import SSEDecoder
from sluicegate.server.relay import CLIENT_GONE, INCOMPLETE, INCOMPLETE_MESSAGE, EndStream, StreamObserver
from sluicegate.server.upstream_client import Answer
from sluicegate.server.upstream_errors import map_error

if TYPE_CHECKING:
    from sluicegate.config.model import Timeouts
    from sluicegate.inbound.base import StreamEnd
    from sluicegate.server.responses_owned import OwnerTap

log = logging.getLogger("sluicegate.relay")


async def relay_events(
    transport: Any,
    resp: Answer,
    timeouts: Timeouts,
    observer: StreamObserver,
    end: StreamEnd,
    tap: OwnerTap | None = None,
) -> str | None:
    """Forward the upstream's events as they come; returns an error code when it did not end complete.

    `tap` (a stored native Responses stream) is shown events until it has the response's id, and its
    record of the owner is awaited before the final event goes out (server/responses_owned.py)."""
    decoder = SSEDecoder()
    first = True
    seen = 0
    final = False
    try:
        async for chunk in resp:
            if first:
                observer.on_first_byte()
                first = False
            events = decoder.feed(chunk)
            for i, ev in enumerate(events):
                try:
                    observer.on_event(ev.data)
                except EndStream:  # what came before the refused event still goes out
                    done = b"".join(e.raw for e in events[:i])
                    if done:
                        await transport.send_bytes(done)
                    raise
                seen += 1
                final = end.is_final(ev.data)
                if tap is not None and tap.task is None:
                    tap.see(ev.data)
            if final and tap is not None:
                await tap.settle()
            await transport.send_bytes(chunk)
        for ev in decoder.flush():  # the last event lacked its blank line: its bytes already went out
            seen += 1
            observer.on_event(ev.data)
            final = end.is_final(ev.data)
            if tap is not None:
                tap.see(ev.data)
                await tap.settle()
            await transport.send_bytes(b"\n\n")
        if not final:
            log.error("upstream stream ended before its final event (%s)", INCOMPLETE)
            await transport.send_bytes(end.failure(INCOMPLETE_MESSAGE, INCOMPLETE, seen))
            return INCOMPLETE
        return None
    except CLIENT_GONE:
        raise
    except EndStream as stop:  # the answer reached its budget
        await transport.send_bytes(end.failure(stop.message, stop.code, seen))
        return stop.code
    except asyncio.CancelledError:
        raise
    except BaseException as exc:
        failure = stream_failure(exc, timeouts)
        code = failure.code or "stream_error"
        await transport.send_bytes(end.failure(failure.message, code, seen))
        return code


def stream_failure(exc: BaseException, timeouts: Timeouts) -> GatewayError:
    """What to tell the client in band when a relayed stream fails after its headers went out."""
    # A kept traceback would keep the relay's frame, and with it Granian's transport, alive until the
    # garbage collector runs (see relay.relay_stream).
    exc.__traceback__ = None
    mapped = map_error(exc, timeouts, before_headers=False)
    if isinstance(mapped, GatewayError):
        return mapped
    log.error("stream relay failed: %s", type(exc).__name__)
    return GatewayError("The stream failed inside the gateway.")
