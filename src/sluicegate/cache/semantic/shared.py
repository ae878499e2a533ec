"""Prompt vectors shared by every gateway through Redis: one Redis stream per partition.

Plain Redis has no vector search (and pgvector is not installable here), so Redis is the replicated
log and each worker's usearch index is a view of it: a stored answer's vector is appended to its
partition's stream (`XADD ... MAXLEN max_entries`, the key expiring with the newest entry), and a
lookup first reads what was appended since the worker last looked (`XRANGE (cursor +`, usually
nothing: one round trip) into its local index, then searches locally. Nothing but the vectors and
exact keys go through the stream: the answers stay in the exact store.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

log = logging.getLogger("sluicegate.cache")

LOG_SUFFIX = ":log"
PAGE = 256  # entries read per XRANGE: a partition's first read is split, never one huge reply


def stream_id(text: str) -> tuple[int, int]:
    """A stream entry id ("<ms>-<seq>") as something that orders."""
    ms, _, seq = text.partition("-")
    try:
        return int(ms), int(seq or 0)
    except ValueError:
        return (0, 0)


@dataclass(slots=True)
class Logged:
    id: str
    key: str  # the exact cache key of the answer
    vector: bytes  # float32, little-endian, unit length
    expires: float  # wall clock


class SharedLog:
    def __init__(self, redis: Any) -> None:
        self.redis = redis
        self.errors = 0

    async def append(
        self, partition: str, key: str, vector: bytes, expires: float, ttl_s: float, max_entries: int
    ) -> None:
        name = partition + LOG_SUFFIX
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.xadd(name, {"k": key, "v": vector, "e": repr(expires)}, maxlen=max_entries)
                pipe.pexpire(name, max(1, int(ttl_s * 1000)))
                await pipe.execute()
        except Exception as exc:  # Redis down: this gateway still serves what it holds
            self.errors += 1
            log.warning("semantic cache: Redis append failed (%s)", type(exc).__name__)

    async def since(self, partition: str, cursor: str, limit: int) -> Sequence[Logged] | None:
        """Entries appended after `cursor` (at most `limit`, the newest); None if Redis failed."""
        name = partition + LOG_SUFFIX
        out: list[Logged] = []
        start = "(" + cursor
        try:
            while True:
                page = await self.redis.xrange(name, min=start, max="+", count=PAGE)
                for raw_id, fields in page:
                    entry_id = raw_id.decode() if isinstance(raw_id, bytes) else str(raw_id)
                    try:
                        out.append(
                            Logged(entry_id, fields[b"k"].decode(), bytes(fields[b"v"]), float(fields[b"e"]))
                        )
                    except (KeyError, ValueError, UnicodeDecodeError):
                        continue
                    start = "(" + entry_id
                if len(page) < PAGE:
                    break
        except Exception as exc:
            self.errors += 1
            log.warning(
                "semantic cache: Redis read failed (%s); searching this worker's copy", type(exc).__name__
            )
            return None
        return out[-limit:]
