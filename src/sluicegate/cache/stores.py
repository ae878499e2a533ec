"""Where entries live: in the worker's memory (bounded, TTL), or in Redis (shared by every worker and node).

Both take and give bytes (CacheEntry.dumps), so an entry written by one gateway is read by any other.
A store that fails (Redis down) is a miss, never a failed request: the gateway then relays as usual.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any, Protocol

log = logging.getLogger("sluicegate.cache")


class EntryStore(Protocol):
    name: str

    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]: ...

    async def set(self, key: str, value: bytes, ttl_s: float) -> None: ...

    async def clear(self) -> None: ...


class MemoryStore:
    """An LRU of at most `max_entries` entries and `max_bytes` bytes of answers, each dropped `ttl_s`
    after it was written.

    One per worker process: nothing is shared, and a lookup is a dict get (no await does I/O).
    """

    name = "memory"

    def __init__(
        self, max_entries: int = 10_000, max_bytes: int = 256 << 20, clock: Any = time.monotonic
    ) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.size = 0  # bytes of the values held
        self._clock = clock
        self._items: OrderedDict[str, tuple[float, bytes]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._items)

    def get(self, key: str) -> bytes | None:
        found = self._items.get(key)
        if found is None:
            return None
        expires, value = found
        if expires <= self._clock():
            del self._items[key]
            self.size -= len(value)
            return None
        self._items.move_to_end(key)
        return value

    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        return [self.get(k) for k in keys]

    async def set(self, key: str, value: bytes, ttl_s: float) -> None:
        items = self._items
        old = items.pop(key, None)
        if old is not None:
            self.size -= len(old[1])
        items[key] = (self._clock() + ttl_s, value)
        self.size += len(value)
        while len(items) > self.max_entries or (self.size > self.max_bytes and len(items) > 1):
            _, (_, dropped) = items.popitem(last=False)
            self.size -= len(dropped)

    async def clear(self) -> None:
        self._items.clear()
        self.size = 0


class RedisStore:
    """Entries in Redis with a TTL (`SET ... PX`): one round trip per lookup, shared by all gateways."""

    name = "redis"

    def __init__(self, redis: Any) -> None:
        self.redis = redis
        self.errors = 0

    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        try:
            if len(keys) == 1:
                return [await self.redis.get(keys[0])]
            return list(await self.redis.mget(list(keys)))
        except Exception as exc:  # Redis down: a miss, not a failure
            self.errors += 1
            log.warning("response cache: Redis lookup failed (%s); treated as a miss", type(exc).__name__)
            return [None] * len(keys)

    async def set(self, key: str, value: bytes, ttl_s: float) -> None:
        try:
            await self.redis.set(key, value, px=max(1, int(ttl_s * 1000)))
        except Exception as exc:
            self.errors += 1
            log.warning("response cache: Redis store failed (%s); answer not cached", type(exc).__name__)

    async def clear(self) -> None:
        try:
            async for key in self.redis.scan_iter(match="sg:cache:*", count=500):
                await self.redis.delete(key)
        except Exception as exc:
            log.warning("response cache: Redis clear failed (%s)", type(exc).__name__)
