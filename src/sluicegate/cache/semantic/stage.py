"""The semantic stage of the response cache (`gw.cache.second_stage`): after an exact miss, a stored
answer to a prompt close enough in meaning.

`lookup` embeds the request's prompt (cache/semantic/prompt.py) through the gateway's own embedding
route (the `embed` callable the server hands over: one upstream round trip, metered), brings the
partition's index up to date from Redis when the cache is shared, and searches it; a match at least
`threshold` similar points at an exact key, whose entry the exact store still holds (or the match is
dropped). `store` adds the prompt of every answer stored. Failures are misses, never failed requests.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from sluicegate.cache.entry import CacheEntry, CacheRequest
from sluicegate.cache.policy import CachePolicy, SemanticPolicy
from sluicegate.cache.semantic.index import PartitionIndex, Partitions, normalised
from sluicegate.cache.semantic.prompt import SEMANTIC_PATHS, partition_key, split_prompt
from sluicegate.cache.semantic.shared import Logged, SharedLog, stream_id

log = logging.getLogger("sluicegate.cache")

# (the request, the embedding route's public name, the text) -> the vector, or None on failure
Embed = Callable[[CacheRequest, str, str], Awaitable[list[float] | None]]
# Vectors each worker remembers by (embedding model, text): the store after a lookup's miss, and a
# prompt asked again with other parameters, are not embedded twice.
VECTOR_MEMORY = 2048
# Index work off the event loop: every add (an HNSW insertion costs a few hundred microseconds at
# 1,536 dimensions; usearch releases the GIL), and the searches of partitions larger than this.
ON_LOOP_SEARCH = 1024
# The worker's vectors are added up against `max_memory_mb` once per this many stores (it may run
# over by that many prompts in between).
TRIM_EVERY = 32


class SemanticStage:
    def __init__(
        self,
        policy: CachePolicy,
        embed: Embed,
        entries: Callable[[], Any],
        shared: SharedLog | None = None,
        max_partitions: int = 1000,
        max_bytes: int = 256 << 20,
        timeout_s: float = 2.0,
    ) -> None:
        self.policy = policy
        self.embed = embed
        self._entries = entries  # the exact store now (it becomes Redis at start-up)
        self.shared = shared
        self.partitions = Partitions(max_partitions, max_bytes)
        self.timeout_s = timeout_s
        self._vectors: OrderedDict[tuple[str, bytes], Any] = OrderedDict()
        self._locks: dict[str, asyncio.Lock] = {}

    def applies(self, req: CacheRequest) -> SemanticPolicy | None:
        """The route's semantic settings when the stage has anything to do with this request."""
        if req.path not in SEMANTIC_PATHS:
            return None
        return self.policy.route(req.model).semantic

    async def _vector(self, req: CacheRequest, model: str, text: str) -> Any:
        memo = (model, hashlib.sha256(text.encode()).digest())
        found = self._vectors.get(memo)
        if found is not None:
            self._vectors.move_to_end(memo)
            return found
        try:
            raw = await asyncio.wait_for(self.embed(req, model, text), self.timeout_s)
        except TimeoutError:
            log.warning("semantic cache: no embedding within %.1f s; treated as a miss", self.timeout_s)
            return None
        vector = normalised(raw) if raw else None
        if vector is not None:
            self._vectors[memo] = vector
            while len(self._vectors) > VECTOR_MEMORY:
                self._vectors.popitem(last=False)
        return vector

    def _where(self, req: CacheRequest, pol: SemanticPolicy) -> tuple[str, str] | None:
        split = split_prompt(req.path, req.payload)
        if split is None:
            return None
        text, rest = split
        return partition_key(req.scope, req.path, req.model, pol.embedding_model, rest), text

    def _lock(self, name: str) -> asyncio.Lock:
        lock = self._locks.get(name)
        if lock is None:
            if len(self._locks) > 4 * self.partitions.max_partitions:
                self._locks = {n: lk for n, lk in self._locks.items() if lk.locked()}
            lock = self._locks[name] = asyncio.Lock()
        return lock

    async def _catch_up(self, index: PartitionIndex, fresh: Sequence[Logged] | None) -> None:
        """Add what other gateways appended to the partition's stream since this worker's cursor
        (`fresh` was read without the partition's lock; entries two reads both got are added once)."""
        if not fresh:
            return
        import numpy as np

        after = stream_id(index.cursor)
        now = time.time()
        items = [
            (e.key, np.frombuffer(e.vector, dtype="<f4"), e.expires)
            for e in fresh
            if stream_id(e.id) > after and e.key not in index and e.expires > now
        ]
        if items:
            await asyncio.to_thread(index.add_many, items)
        if stream_id(fresh[-1].id) > stream_id(index.cursor):
            index.cursor = fresh[-1].id
        self.partitions.trim(TRIM_EVERY)

    async def lookup(self, req: CacheRequest) -> CacheEntry | None:
        pol = self.applies(req)
        if pol is None:
            return None
        where = self._where(req, pol)
        if where is None:
            return None
        name, text = where
        vector = await self._vector(req, pol.embedding_model, text)
        if vector is None:
            return None
        fresh: Sequence[Logged] | None = None
        if self.shared is None:
            index = self.partitions.get(name)
            if index is None:
                return None
        else:
            index = self.partitions.make(name, vector.shape[0], pol.max_entries)
            fresh = await self.shared.since(name, index.cursor, pol.max_entries)
        # Adds (in a thread), searches and removals of one partition take turns: the event loop never
        # waits on index work, and no search ever runs against a half-made insertion.
        async with self._lock(name):
            await self._catch_up(index, fresh)
            if len(index) > ON_LOOP_SEARCH:
                match = await asyncio.to_thread(index.nearest, vector, pol.threshold)
            else:
                match = index.nearest(vector, pol.threshold)
        if match is None:
            return None
        found = (await self._entries().get_many([match.key]))[0]
        entry = CacheEntry.loads(found) if found is not None else None
        if entry is None or entry.path != req.path:  # gone from the exact store (TTL, evicted)
            async with self._lock(name):
                index.remove(match.key)
            return None
        entry.similarity = match.similarity
        return entry

    async def store(self, req: CacheRequest, entry: CacheEntry) -> None:
        pol = self.applies(req)
        if pol is None:
            return
        where = self._where(req, pol)
        if where is None:
            return
        name, text = where
        vector = await self._vector(req, pol.embedding_model, text)
        if vector is None:
            return
        expires = time.time() + req.ttl_s
        if self.shared is not None:  # first: the other gateways see it as soon as possible
            await self.shared.append(
                name, req.key, vector.astype("<f4").tobytes(), expires, req.ttl_s, pol.max_entries
            )
        async with self._lock(name):
            index = self.partitions.make(name, vector.shape[0], pol.max_entries)
            await asyncio.to_thread(index.add_many, [(req.key, vector, expires)])
        self.partitions.trim(TRIM_EVERY)
