"""Keeping the in-memory key cache fresh from the store, off the request path.

Every `interval` seconds one cheap query reads the store's revision counter (bumped in the same
transaction as any key change); only when it moved are the active keys reloaded and swapped in whole.
At 0.5 s a new key works within about half a second and a revoked one is refused as fast, on every
worker and node that shares the database, with no message bus needed. With Redis configured, a
publish on change wakes every node at once (see `notify`), and polling remains the safety net.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from sluicegate.policy.keys import KeyCache
from sluicegate.server.revisionpoll import RevisionPoller, publish

log = logging.getLogger("sluicegate.keys")

CHANNEL = "sluicegate:keys"


class KeySync(RevisionPoller):
    what = "key"

    def __init__(self, store: Any, cache: KeyCache, *, interval: float = 0.5, redis: Any = None) -> None:
        super().__init__(interval=interval, redis=redis, channel=CHANNEL, log=log)
        self._store = store
        self._cache = cache
        self._versions: dict[str, float] = {}  # key id -> updated_at, to tell which keys changed
        # Awaited with the keys that are new or changed, BEFORE they are swapped in: the gateway seeds
        # their budget counters from the store there, so a budget given to a key that was already used
        # counts what it spent before any request is held to it.
        self.on_change: Callable[[list[Any]], Awaitable[None]] | None = None
        # Awaited at every reload, BEFORE the keys are swapped in: tenancy changes (top-ups, groups, users)
        # bump the same revision, and a new key of a new user must not be served before its balance is known.
        self.before_swap: Callable[[], Awaitable[None]] | None = None

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
        if self.before_swap is not None:
            await self.before_swap()
        self._versions = {r.id: r.updated_at for r in records}
        self._cache.replace_managed(records, revision)
        log.info("key cache loaded: %d managed key(s), revision %d", len(records), revision)
        return True


async def notify(redis: Any) -> None:
    """Tell every node that keys changed (best effort: polling catches up within `interval`)."""
    await publish(redis, CHANNEL)
