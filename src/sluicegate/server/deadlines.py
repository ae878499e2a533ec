"""Deadlines checked by one sweeping timer per worker, not one timer per request.

A client that sends its body slowly (or stops half way) must not hold a connection, and its key's
concurrency slot, for ever; an upstream answer must end within its `timeouts.total`. A timer per request
costs 1-3 µs on every request (asyncio.timeout(), aiohttp's total timeout, or a bare call_at handle and
its cancel), most of which never fire; here a request only writes its deadline into a dict, and one task
looks at that dict a few times a second and ends what is late. The deadlines are therefore kept to
within one tick (a quarter to half a second).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any


class _Sweeping:
    """One task calling `expire_late(now)` every `tick_s` while anything is due."""

    __slots__ = ("_due", "_sweeper", "tick_s")

    def __init__(self, tick_s: float) -> None:
        self.tick_s = tick_s
        self._due: dict[Any, Any] = {}
        self._sweeper: asyncio.Task[None] | None = None

    def expire_late(self, now: float) -> int:
        raise NotImplementedError

    def start(self) -> None:
        if self._sweeper is None:
            self._sweeper = asyncio.get_running_loop().create_task(
                self._sweep(), name=f"sluicegate-{type(self).__name__}"
            )

    async def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
            self._sweeper = None

    async def _sweep(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self.tick_s)
            if self._due:
                self.expire_late(loop.time())


class BodyDeadlines(_Sweeping):
    """The requests reading their body now: task -> [total deadline, idle deadline, expired, idle_s,
    total_s] (a list, updated in place by the reader as chunks arrive)."""

    __slots__ = ("idle_s", "total_s")

    def __init__(self, total_s: float, idle_s: float, tick_s: float = 0.25) -> None:
        super().__init__(min(tick_s, idle_s / 4, total_s / 4))
        self.total_s = total_s
        self.idle_s = idle_s

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


class AnswerDeadlines(_Sweeping):
    """Upstream answers being read: aiohttp response -> the loop time its `timeouts.total` runs out.

    A late answer's body reader is given a TimeoutError, which every relay maps to the total timeout
    (upstream_total_timeout), as aiohttp's own total timer did. Only answers whose headers came are
    watched: before them, the connect and first-byte timeouts bound the wait (server/upstream_client.py
    keeps aiohttp's total timer when they would not).
    """

    __slots__ = ()

    def __init__(self, tick_s: float = 0.5) -> None:
        super().__init__(tick_s)

    def watch(self, resp: Any, deadline: float) -> None:
        self._due[resp] = deadline

    def done(self, resp: Any) -> None:
        self._due.pop(resp, None)

    def expire_late(self, now: float) -> int:
        late = [resp for resp, due in self._due.items() if now >= due]
        for resp in late:
            del self._due[resp]
            resp.content.set_exception(TimeoutError())
        return len(late)
