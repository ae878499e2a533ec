"""Noticing a client that left, so its upstream call is dropped rather than paid for to the end.

Granian tells an RSGI app that the client went through a future per request (`client_disconnect()`).
Arming it costs 20-30 k instructions a request (it is set up and torn down in Granian's Rust
runtime: ~3 % of a governed request, bench/README.md), and most requests are over in a few
milliseconds, long before a departure could save anything. So the watch is armed only for requests
still running 50 ms after they started (server/later.py: one beat per worker): a client that leaves
is noticed within 0.1 s of its request's start, and at once after that. A request that ends first
never touches Granian's future. A stream whose client left is also noticed at its next write.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from sluicegate.server.later import Entry, Later

if TYPE_CHECKING:
    from sluicegate.server.context import RequestContext


def watch_disconnect(proto: Any, ctx: RequestContext, task: asyncio.Task[Any]) -> asyncio.Future[Any]:
    """Cancel the request's task the moment the client goes, so the upstream call is dropped at once."""

    def gone(fut: asyncio.Future[Any]) -> None:
        if not fut.cancelled() and not task.done():
            ctx.client_gone = True
            task.cancel()

    watcher = asyncio.ensure_future(proto.client_disconnect())
    watcher.add_done_callback(gone)
    return watcher


def _arm(held: list[Any]) -> None:
    proto, ctx, task, _ = held
    if not task.done():
        held[3] = watch_disconnect(proto, ctx, task)


class DisconnectWatch:
    """Arms `watch_disconnect` for the requests of one worker that outlive `after` seconds."""

    __slots__ = ("_later",)

    def __init__(self, later: Later | None = None) -> None:
        self._later = later or Later()

    def add(self, proto: Any, ctx: RequestContext, task: asyncio.Task[Any]) -> Entry:
        """A request starts; pass the entry to `done` however it ends."""
        return self._later.add(_arm, [proto, ctx, task, None])

    @staticmethod
    def done(entry: Entry) -> None:
        """The request is over: no watch will be armed for it, and one that was is dropped."""
        held = entry[2]
        Later.cancel(entry)
        if held is not None:
            watcher = held[3]
            held.clear()
            if watcher is not None:
                watcher.cancel()
