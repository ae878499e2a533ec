"""Keeping the in-memory key cache fresh from the store, off the request path.

Every `interval` seconds one cheap query reads the store's revision counter (bumped in the same
transaction as any key change); only when it moved are the active keys reloaded and swapped in whole.
At 0.5 s a new key works within about half a second and a revoked one is refused as fast, on every
worker and node that shares the database, with no message bus needed. With Redis configured, a
publish on change wakes every node at once (see `notify`), and polling remains the safety net.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from sluicegate.policy.keys import KeyCache

log = logging.getLogger("sluicegate.keys")

CHANNEL = "sluicegate:keys"


class KeySync:
    def __init__(self, store: Any, cache: KeyCache, *, interval: float = 0.5, redis: Any = None) -> None:
        self._store = store
        self._cache = cache
        self._interval = interval
        self._redis = redis
        self._task: asyncio.Task[None] | None = None
        self._listener: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._versions: dict[str, float] = {}  # key id -> updated_at, to tell which keys changed
        self.failures = 0
        # Awaited with the keys that are new or changed, BEFORE they are swapped in: the gateway seeds
        # their budget counters from the store there, so a budget given to a key that was already used
        # counts what it spent before any request is held to it.
        self.on_change: Callable[[list[Any]], Awaitable[None]] | None = None

    async def refresh(self, force: bool = False) -> bool:
        """Reload keys if the store's revision changed; True when the cache was replaced."""
        revision = await self._store.keys.revision()
        if not force and revision == self._cache.revision:
            return False
        # Every unrevoked key, disabled and expired ones included: the request path checks both on
        # each request, and only a key it still knows can be refused as key_expired / key_disabled
        # rather than as an unknown key (which would depend on whether anything changed since).
        records = await self._store.keys.list()
        if self.on_change is not None:
            changed = [r for r in records if self._versions.get(r.id) != r.updated_at]
            if changed:
                await self.on_change(changed)
        self._versions = {r.id: r.updated_at for r in records}
        self._cache.replace_managed(records, revision)
        log.info("key cache loaded: %d managed key(s), revision %d", len(records), revision)
        return True

    async def start(self) -> None:
        await self.refresh(force=True)
        self._task = asyncio.create_task(self._run(), name="sluicegate-keysync")
        if self._redis is not None:
            self._listener = asyncio.create_task(self._listen(), name="sluicegate-keysync-pubsub")

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
                    log.warning(
                        "key refresh failed (%d in a row), serving cached keys: %s",
                        self.failures,
                        type(exc).__name__,
                    )

    async def _listen(self) -> None:
        while True:
            try:
                pubsub = self._redis.pubsub()
                await pubsub.subscribe(CHANNEL)
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


async def notify(redis: Any) -> None:
    """Tell every node that keys changed (best effort: polling catches up within `interval`)."""
    with contextlib.suppress(Exception):
        await redis.publish(CHANNEL, b"1")
