"""Noticing a client that left, so its upstream call is dropped rather than paid for to the end.

Granian tells an RSGI app that the client went through a future per request (`client_disconnect()`).
Arming it costs about 20,000 instructions a request (it is set up and torn down in Granian's Rust
runtime: ~3 % of a governed request, bench/README.md), and most requests are over in a few
milliseconds, long before a departure could save anything. So the watch is armed only for requests
still running `ARM_AFTER` seconds after they started, by one timer per worker that ticks every
`ARM_AFTER` seconds while requests are in flight: a client that leaves is noticed within
2 × `ARM_AFTER` (at most 0.1 s) of its request's start, and at once after that. A request that ends
first never touches Granian's future. A stream whose client left is also noticed by the next write.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sluicegate.server.context import RequestContext

ARM_AFTER = 0.05

# One request's entry: [start time, its task (None once over), proto, ctx, the armed watcher or None]
Entry = list[Any]


def watch_disconnect(proto: Any, ctx: RequestContext, task: asyncio.Task[Any]) -> asyncio.Future[Any]:
    """Cancel the request's task the moment the client goes, so the upstream call is dropped at once."""

    def gone(fut: asyncio.Future[Any]) -> None:
        if not fut.cancelled() and not task.done():
            ctx.client_gone = True
            task.cancel()

    watcher = asyncio.ensure_future(proto.client_disconnect())
    watcher.add_done_callback(gone)
    return watcher


class DisconnectWatch:
    """Arms `watch_disconnect` for the requests of one worker that outlive `after` seconds."""

    __slots__ = ("_after", "_handle", "_loop", "_pending")

    def __init__(self, after: float = ARM_AFTER) -> None:
        self._after = after
        self._pending: deque[Entry] = deque()  # in start order
        self._handle: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def add(self, proto: Any, ctx: RequestContext, task: asyncio.Task[Any]) -> Entry:
        """A request starts; pass the entry to `done` however it ends."""
        loop = self._loop
        if loop is None:
            loop = self._loop = asyncio.get_running_loop()
        now = loop.time()
        entry = [now, task, proto, ctx, None]
        self._pending.append(entry)
        if self._handle is None:
            self._handle = loop.call_at(now + self._after, self._tick)
        return entry

    @staticmethod
    def done(entry: Entry) -> None:
        """The request is over: no watch will be armed for it, and one that was is dropped."""
        watcher = entry[4]
        entry[1] = entry[2] = entry[3] = entry[4] = None  # nothing of the request is kept alive here
        if watcher is not None:
            watcher.cancel()

    def _tick(self) -> None:
        loop = self._loop
        assert loop is not None
        now = loop.time()
        cutoff = now - self._after
        pending = self._pending
        while pending and pending[0][0] <= cutoff:
            entry = pending.popleft()
            task = entry[1]
            if task is not None and not task.done():
                entry[4] = watch_disconnect(entry[2], entry[3], task)
        # A fixed beat, not one timer per request: a request is armed between `after` and twice that.
        self._handle = loop.call_at(now + self._after, self._tick) if pending else None

    def close(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        self._pending.clear()
