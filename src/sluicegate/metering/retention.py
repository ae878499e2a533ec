"""Request-log retention: deleting old log rows on a schedule, off the request path.

The log sink owns one when `log_retention_days` is set; it calls the store's `purge(days)` at start
and then every `interval` seconds. A failing purge is logged and tried again next time: retention
must never stop the log.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

Purge = Callable[[int], Awaitable[object]]


class Retention:
    """A background task calling `purge(days)` now and every `interval` seconds (if `days` is set)."""

    def __init__(self, purge: Purge, days: int | None, interval: float, logger: logging.Logger) -> None:
        self._purge = purge
        self._days = days
        self._interval = interval
        self._log = logger
        self._task: asyncio.Task[None] | None = None
        self.purges = 0

    def start(self) -> None:
        if self._days and self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._loop(), name="sluicegate-log-retention")

    async def _loop(self) -> None:
        assert self._days
        while True:
            try:
                await self._purge(self._days)
                self.purges += 1
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._log.error("request log retention: purge failed: %r", exc)
            await asyncio.sleep(self._interval)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None
