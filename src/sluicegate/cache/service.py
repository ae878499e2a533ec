"""The response cache as the gateway holds it (`gw.cache`): policy, store, and the second stage.

The request path asks `request()` whether and how a request is cached (no I/O), then `lookup()` (the
exact store, then the second stage after an exact miss) and, after a miss whose answer arrived whole,
`put()` (the exact store, then the second stage). A cache failure is a miss, never a failed request.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from sluicegate.cache.entry import CacheEntry, CacheRequest, SecondStage
from sluicegate.cache.key import exact_key
from sluicegate.cache.policy import CachePolicy, Decision, scope_of
from sluicegate.cache.stores import EntryStore, MemoryStore, RedisStore
from sluicegate.config.model import CacheConfig

log = logging.getLogger("sluicegate.cache")


class ResponseCache:
    def __init__(self, cfg: CacheConfig, redis_url: str | None = None) -> None:
        self.cfg = cfg
        self.policy = CachePolicy(cfg)
        self.backend = cfg.backend or ("redis" if redis_url else "memory")
        # Memory until start-up hands over the worker's Redis client (attach_redis).
        self.store: EntryStore = MemoryStore(cfg.max_entries, int(cfg.max_memory_mb * (1 << 20)))
        self.max_entry_bytes = cfg.max_entry_bytes
        # A semantic (or any other) cache consulted after an exact miss and fed on every store.
        self.second_stage: SecondStage | None = None
        self.metrics: Any = None

    def attach_redis(self, redis: Any) -> None:
        if self.backend == "redis" and redis is not None:
            self.store = RedisStore(redis)

    def wanted(self, key: Any) -> bool:
        """Whether the cache could have anything to do with this key's requests (one cheap check)."""
        return (
            self.policy.any_enabled
            or self.second_stage is not None
            or (key is not None and key.record.cache == "on")
        )

    def request(
        self, path: str, model: str, payload: dict[str, Any], key: Any, headers: Any, stream: bool
    ) -> tuple[CacheRequest, Decision] | None:
        """The cache request and what to do with it; None when the cache stays out of this request."""
        decision = self.policy.decide(
            path, model, payload, key.record.cache if key is not None else None, headers
        )
        if decision is None:
            return None
        scope = scope_of(decision.policy.scope, key)
        req = CacheRequest(
            path=path,
            model=model,
            payload=payload,
            scope=scope,
            key=exact_key(scope, path, model, payload),
            stream=stream,
            ttl_s=decision.policy.ttl_s,
        )
        return req, decision

    async def lookup(self, req: CacheRequest) -> CacheEntry | None:
        """The exact entry, else the second stage's (see lookup_exact and lookup_second)."""
        entry = await self.lookup_exact(req)
        if entry is None and self.second_applies(req):
            entry = await self.lookup_second(req)
        return entry

    async def lookup_exact(self, req: CacheRequest) -> CacheEntry | None:
        found = (await self.store.get_many([req.key]))[0]
        entry = CacheEntry.loads(found) if found is not None else None
        if entry is not None and entry.path == req.path:
            return entry
        return None

    def second_applies(self, req: CacheRequest) -> bool:
        """Whether the second stage would look for this request (no I/O)."""
        return self.second_stage is not None and bool(self.second_stage.applies(req))

    async def lookup_second(self, req: CacheRequest) -> CacheEntry | None:
        if self.second_stage is None:
            return None
        try:
            return await self.second_stage.lookup(req)
        except Exception as exc:
            log.warning("response cache: second stage lookup failed (%s)", type(exc).__name__)
            return None

    async def put(self, req: CacheRequest, entry: CacheEntry) -> None:
        if len(entry.body) > self.max_entry_bytes:
            return
        await self.store.set(req.key, entry.dumps(), req.ttl_s)
        if self.second_stage is not None:
            try:
                await self.second_stage.store(req, entry)
            except Exception as exc:
                log.warning("response cache: second stage store failed (%s)", type(exc).__name__)

    async def get_many(self, keys: Sequence[str]) -> list[CacheEntry | None]:
        """Entries by key (embeddings: one per input), in order; None where there is none."""
        found = await self.store.get_many(keys)
        return [CacheEntry.loads(v) if v is not None else None for v in found]

    async def put_many(self, items: Sequence[tuple[str, CacheEntry]], ttl_s: float) -> None:
        for key, entry in items:
            if len(entry.body) <= self.max_entry_bytes:
                await self.store.set(key, entry.dumps(), ttl_s)

    def count(self, model: str | None, result: str, entry: CacheEntry | None = None) -> None:
        if self.metrics is not None:
            if entry is None:
                self.metrics.cache_result(model, result)
            else:
                self.metrics.cache_result(model, result, entry.tokens, entry.cost, entry.currency)
                if entry.similarity is not None:
                    self.metrics.cache_semantic_hit(model)
