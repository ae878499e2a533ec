"""Deadlines for reading request bodies: one sweeping timer per worker, not one timer per request.

A client that sends its body slowly (or stops half way) must not hold a connection, and its key's
concurrency slot, for ever. A timer per request costs 1-3 µs on every request (asyncio.timeout(), or a
bare call_at handle and its cancel), most of which never wait at all; here a request only writes its
deadlines into a dict, and one task looks at that dict a few times a second and cancels the requests
that are late. The deadlines are therefore kept to within one tick (a quarter second by default).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any


class BodyDeadlines:
    """The requests reading their body now: task -> [total deadline, idle deadline, expired, idle_s,
    total_s] (a list, updated in place by the reader as chunks arrive)."""

    __slots__ = ("_due", "_sweeper", "idle_s", "tick_s", "total_s")

    def __init__(self, total_s: float, idle_s: float, tick_s: float = 0.25) -> None:
        self.total_s = total_s
        self.idle_s = idle_s
        self.tick_s = min(tick_s, idle_s / 4, total_s / 4)
        self._due: dict[asyncio.Task[Any], list[Any]] = {}
        self._sweeper: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._sweeper is None:
            self._sweeper = asyncio.get_running_loop().create_task(
                self._sweep(), name="sluicegate-body-deadlines"
            )

    async def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
            self._sweeper = None

    def watch(self, task: asyncio.Task[Any], now: float) -> list[Any]:
        """Start the clock for `task`; the entry is updated in place as chunks arrive."""
        entry = [now + self.total_s, now + self.idle_s, False, self.idle_s, self.total_s]
        self._due[task] = entry
        return entry

    def done(self, task: asyncio.Task[Any]) -> None:
        self._due.pop(task, None)

    def expire_late(self, now: float) -> int:
        """Cancel every request past a deadline (once); how many were cancelled."""
        late = 0
        for task, entry in list(self._due.items()):
            if not entry[2] and (now >= entry[0] or now >= entry[1]):
                entry[2] = True
                task.cancel()
                late += 1
        return late

    async def _sweep(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self.tick_s)
            if self._due:
                self.expire_late(loop.time())
