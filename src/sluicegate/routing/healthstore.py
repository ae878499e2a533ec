"""Where processes share channel health, so one worker's discovery spares the others.

The router never touches a store on the request path: its own in-memory health decides every
pick in microseconds. Sharing is a slow loop in the I/O shell (say once a second):

    await sync_health(router, store)   # = publish router.take_changes(), then router.merge(fetch())

Records are the plain dicts `Router.take_changes()` makes: `kind` "channel" (keyed by `name`) or
"key" (keyed by `upstream` and `index`), each with a `changed_at`; a store keeps the latest record
per identity. A Redis implementation would keep one hash per identity and compare `changed_at`
in a small Lua script; only the in-memory one exists today, for one process and for tests.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Protocol


def record_identity(record: Mapping[str, Any]) -> tuple[Any, ...]:
    """What a record describes: one channel, or one key position of one upstream."""
    if record.get("kind") == "key":
        return ("key", record.get("upstream"), record.get("index"))
    return ("channel", record.get("name"))


class HealthStore(Protocol):
    """Shared health records; async because a real one (Redis) is across a network."""

    async def publish(self, records: Iterable[Mapping[str, Any]]) -> None:
        """Store records, keeping per identity the one with the latest `changed_at`."""

    async def fetch(self) -> list[dict[str, Any]]:
        """Every current record, for `Router.merge`."""


class InMemoryHealthStore:
    """A HealthStore in one process: for a single worker, and to test sharing between routers."""

    def __init__(self) -> None:
        self._records: dict[tuple[Any, ...], dict[str, Any]] = {}

    async def publish(self, records: Iterable[Mapping[str, Any]]) -> None:
        """Keep the latest record per identity; an older or equal `changed_at` loses."""
        for record in records:
            identity = record_identity(record)
            held = self._records.get(identity)
            if held is None:
                self._records[identity] = dict(record)
                continue
            # A Retry-After hold is a maximum, not last-writer-wins: keep the longest one heard of.
            hold = max(record.get("retry_after_until") or 0.0, held.get("retry_after_until") or 0.0) or None
            if float(record.get("changed_at") or 0.0) > float(held.get("changed_at") or 0.0):
                held = dict(record)
                self._records[identity] = held
            if identity[0] == "channel":
                held["retry_after_until"] = hold

    async def fetch(self) -> list[dict[str, Any]]:
        """Copies of every record, so a caller cannot change the store by accident."""
        return [dict(r) for r in self._records.values()]


class _Shares(Protocol):
    def take_changes(self) -> list[dict[str, Any]]: ...

    def merge(self, records: Iterable[Mapping[str, Any]]) -> int: ...


async def sync_health(router: _Shares, store: HealthStore) -> int:
    """One round of sharing, for the shell's periodic task: publish our changes, adopt everyone's.

    Returns how many records changed this router. Errors from the store propagate: the shell
    decides whether to log and carry on (health stays local meanwhile, which is safe).
    """
    changes = router.take_changes()
    if changes:
        await store.publish(changes)
    return router.merge(await store.fetch())
