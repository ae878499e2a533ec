"""Keeping a running gateway's routes in step with the store's catalog, off the request path.

The same scheme as the key cache (keysync.py): every `interval` seconds one query reads the catalog's
revision (row 2 of `revision`, bumped in the transaction of every change); only when it moved is the
catalog read whole, merged with the file (catalog/effective.py) and the routing objects rebuilt and
swapped in (server/routing_state.py). With Redis, a publish on change wakes every node at once and
polling stays the safety net. Every worker of every node runs its own, so all of them follow.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from sluicegate.catalog.effective import merge
from sluicegate.server.revisionpoll import RevisionPoller, publish
from sluicegate.server.routing_state import apply_settings
from sluicegate.store.crypto import SecretBox

if TYPE_CHECKING:
    from sluicegate.server.app import Gateway

log = logging.getLogger("sluicegate.config")

CHANNEL = "sluicegate:config"


class ConfigSync(RevisionPoller):
    what = "catalog"

    def __init__(self, gw: Gateway, *, interval: float = 0.5) -> None:
        super().__init__(interval=interval, redis=gw.redis, channel=CHANNEL, log=log)
        self._gw = gw
        self.box = SecretBox(gw.file_settings.master_key)
        self.revision = -1
        self.problems: tuple[str, ...] = ()

    async def refresh(self, force: bool = False) -> bool:
        """Rebuild the routes if the catalog's revision moved; True when they were replaced."""
        gw = self._gw
        repo = gw.store.catalog
        if not force and await repo.revision() == self.revision:
            return False
        rows = await repo.load()
        if rows.revision < self.revision:
            # A refresh that read earlier (the poll) finished after one that read later (an admin
            # change on this worker): applying it would serve stale routes until the next poll.
            return False
        effective = merge(gw.file_settings, rows, self.box)
        for problem in effective.problems:
            if problem not in self.problems:
                log.warning("catalog: %s", problem)
        self.problems = effective.problems
        try:
            apply_settings(gw, effective.settings, effective.disabled_channels, rebuild=True)
        except ValueError as exc:
            log.error(
                "catalog revision %d cannot be routed, keeping the previous routes: %s", rows.revision, exc
            )
        self.revision = rows.revision
        return True

    async def start(self) -> None:
        try:
            await self.refresh(force=True)
        except Exception as exc:  # the file's routes still serve; the poll retries
            log.warning("could not read the catalog from the store: %s", type(exc).__name__)
        self.start_loop()


async def notify(redis: Any) -> None:
    """Tell every node that the catalog changed (best effort: polling catches up within `interval`)."""
    await publish(redis, CHANNEL)
