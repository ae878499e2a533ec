"""The refresh loop shared by the key cache and the catalog: a revision poll plus a Redis wake-up.

Both follow a counter the store bumps in the transaction of every change: every `interval` seconds
`refresh()` runs one cheap query and reloads only when the number moved; with Redis, a publish on a
change wakes every node at once, and polling stays the safety net (Redis down costs latency, not
correctness). Failures are logged now and then, never raised: the process serves what it has.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any


class RevisionPoller:
    """Subclasses implement `refresh()`; `start()` runs it now, then in the background."""

    what = "state"  # for log lines: "keys", "catalog"

    def __init__(self, *, interval: float, redis: Any, channel: str, log: logging.Logger) -> None:
        self._interval = interval
        self._redis = redis
        self._channel = channel
        self._log = log
        self._task: asyncio.Task[None] | None = None
        self._listener: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self.failures = 0

    async def refresh(self, force: bool = False) -> bool:
        raise NotImplementedError

    async def start(self) -> None:
        await self.refresh(force=True)
        self.start_loop()

    def start_loop(self) -> None:
        """The background poll (and Redis listener) alone, for a first load that may fail."""
        self._task = asyncio.create_task(self._run(), name=f"sluicegate-{self.what}-sync")
        if self._redis is not None:
            self._listener = asyncio.create_task(self._listen(), name=f"sluicegate-{self.what}-pubsub")

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._interval)
            self._wake.clear()
            try:
                await self.refresh()
                self.failures = 0
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.failures += 1
                if self.failures in (1, 10) or self.failures % 100 == 0:
                    self._log.warning(
                        "%s refresh failed (%d in a row), serving what is loaded: %s",
                        self.what,
                        self.failures,
                        type(exc).__name__,
                    )

    async def _listen(self) -> None:
        while True:
            try:
                pubsub = self._redis.pubsub()
                await pubsub.subscribe(self._channel)
                async for message in pubsub.listen():
                    if message.get("type") == "message":
                        self._wake.set()
            except asyncio.CancelledError:
                raise
            except Exception:
                await asyncio.sleep(1.0)

    async def stop(self) -> None:
        for task in (self._task, self._listener):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task


async def publish(redis: Any, channel: str) -> None:
    """Wake every node's poller on `channel` (best effort: polling catches up within its interval)."""
    with contextlib.suppress(Exception):
        await redis.publish(channel, b"1")
