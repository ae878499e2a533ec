"""Relaying a stream whose client wire differs from the upstream's: decode, meter, encode, send.

The I/O half of a Translation edge (inbound/): the upstream adapter's decoder yields canonical chunk
payloads, metering sees each (the usage is the upstream's), the codec's encoder turns them into the
client's frames, which go out as they come. The end is the encoder's to judge: it writes the closing
frames, or its wire's in-band error when the upstream failed or stopped short. The edge's `before_end`
runs before those last frames (the Responses codec keeps the response there, so a client that sends
its next request the moment it reads `response.completed` finds it).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from sluicegate.server.events_relay import INCOMPLETE, log, stream_failure
from sluicegate.server.relay import CLIENT_GONE, EndStream, StreamObserver

if TYPE_CHECKING:
    from sluicegate.config.model import Timeouts
    from sluicegate.inbound.base import Translation
    from sluicegate.providers.adapter import StreamDecoder
    from sluicegate.server.context import RequestContext
    from sluicegate.server.upstream_client import Answer


async def relay_translated(
    transport: Any,
    resp: Answer,
    timeouts: Timeouts,
    observer: StreamObserver,
    ctx: RequestContext,
    edge: Translation,
    decoder: StreamDecoder,
) -> str | None:
    """Each upstream event goes to metering and to the encoder; the encoder's frames go out."""
    encoder = edge.stream(ctx)
    first = True
    try:
        async for chunk in resp:
            if first:
                observer.on_first_byte()
                first = False
            out = []
            try:
                for ev in decoder.feed(chunk):
                    observer.on_event(ev.data)
                    frames = encoder.feed(ev.data)
                    if frames:
                        out.append(frames)
            finally:  # on EndStream, what came before the refused event still goes out
                if out:
                    await transport.send_bytes(b"".join(out))
        for ev in decoder.flush():
            observer.on_event(ev.data)
            frames = encoder.feed(ev.data)
            if frames:
                await transport.send_bytes(frames)
        tail = encoder.finish()
        await edge.before_end(ctx)
        if tail:
            await transport.send_bytes(tail)
        if getattr(encoder, "incomplete", False):  # the encoder wrote the wire's error; log it as one
            log.error("upstream stream ended before it was complete (%s)", INCOMPLETE)
            return INCOMPLETE
        return None
    except CLIENT_GONE:
        raise
    except EndStream as stop:  # the answer reached its budget: the wire's own error ends it
        tail = edge.stopped(encoder, stop)
        if tail:
            await transport.send_bytes(tail)
        return stop.code
    except asyncio.CancelledError:
        raise
    except BaseException as exc:
        failure = stream_failure(exc, timeouts)
        await transport.send_bytes(encoder.finish(failure.message))
        return failure.code or "stream_error"
