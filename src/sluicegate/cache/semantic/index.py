"""The vectors of one partition in a usearch index, and the partitions a worker holds.

A label in the index stands for one stored answer: its exact cache key (the entry itself stays in the
exact store, with its TTL) and when it expires. A partition holds at most `max_entries` prompts; the
least recently stored or served go first. usearch and numpy are imported lazily (the `semantic` extra): a gateway without
semantic caching never loads them.
"""

from __future__ import annotations

import importlib.util
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

EXTRA_MODULES = ("usearch", "numpy")


def missing_extra() -> list[str]:
    """The modules of the `semantic` extra that cannot be imported here."""
    return [name for name in EXTRA_MODULES if importlib.util.find_spec(name) is None]


def normalised(vector: Sequence[float]) -> Any:
    """The vector as float32 of unit length (numpy), or None for an empty or zero vector."""
    import numpy as np

    array = np.asarray(vector, dtype=np.float32).reshape(-1)
    norm = float(np.linalg.norm(array)) if array.size else 0.0
    if norm == 0.0 or not np.isfinite(norm):
        return None
    return array / norm


@dataclass(slots=True)
class Match:
    key: str  # the exact cache key of the stored answer
    similarity: float


class PartitionIndex:
    """One partition's prompts: a usearch HNSW index over unit vectors (cosine), LRU-bounded."""

    def __init__(self, ndim: int, max_entries: int) -> None:
        from usearch.index import Index

        self.ndim = ndim
        self.max_entries = max_entries
        # A small graph (8 links, 32 candidates): partitions hold thousands of prompts at most, where
        # it finds the nearest as surely as the defaults at about half the cost of an insertion.
        self._index = Index(
            ndim=ndim, metric="cos", dtype="f32", connectivity=8, expansion_add=32, expansion_search=32
        )
        self._next = 0
        # label -> (exact key, expires at, wall clock), least recently stored or served first
        self._labels: OrderedDict[int, tuple[str, float]] = OrderedDict()
        self._by_key: dict[str, int] = {}
        self.cursor = "0-0"  # the last shared-log entry applied (cache/semantic/shared.py)

    def __len__(self) -> int:
        return len(self._labels)

    @property
    def nbytes(self) -> int:
        """What the vectors take (float32); the graph adds a little."""
        return len(self._labels) * self.ndim * 4

    def __contains__(self, key: str) -> bool:
        return key in self._by_key

    def add_many(self, items: Sequence[tuple[str, Any, float]]) -> None:
        """(exact key, unit vector, expires at) each; a key already held is replaced."""
        import numpy as np

        fresh: list[tuple[str, Any, float]] = []
        for key, vector, expires in items:
            if vector is None or vector.shape != (self.ndim,):
                continue
            self.remove(key)
            fresh.append((key, vector, expires))
        if not fresh:
            return
        labels = np.arange(self._next, self._next + len(fresh), dtype=np.uint64)
        self._next += len(fresh)
        self._index.add(labels, np.stack([v for _, v, _ in fresh]), threads=1)
        for label, (key, _, expires) in zip(labels.tolist(), fresh, strict=True):
            self._labels[label] = (key, expires)
            self._by_key[key] = label
        while len(self._labels) > self.max_entries:
            label, (key, _) = self._labels.popitem(last=False)
            self._by_key.pop(key, None)
            self._index.remove(label)

    def remove(self, key: str) -> None:
        label = self._by_key.pop(key, None)
        if label is not None:
            self._labels.pop(label, None)
            self._index.remove(label)

    def nearest(self, vector: Any, threshold: float, now: float | None = None) -> Match | None:
        """The closest unexpired prompt at least `threshold` similar (cosine), or None."""
        if not self._labels or vector.shape != (self.ndim,):
            return None
        now = time.time() if now is None else now
        found = self._index.search(vector, min(4, len(self._labels)), threads=1)
        for label, distance in zip(found.keys.tolist(), found.distances.tolist(), strict=True):
            held = self._labels.get(label)
            if held is None:
                continue
            key, expires = held
            if expires <= now:
                self.remove(key)
                continue
            similarity = 1.0 - float(distance)
            if similarity < threshold:
                return None
            self._labels.move_to_end(label)  # served: the last to be dropped
            return Match(key, similarity)
        return None


class Partitions:
    """The partition indexes one worker holds: at most `max_partitions`, and vectors of at most
    `max_bytes` in all; the least recently used partitions are dropped first (never the last one)."""

    def __init__(self, max_partitions: int, max_bytes: int = 256 << 20) -> None:
        self.max_partitions = max_partitions
        self.max_bytes = max_bytes
        self._items: OrderedDict[str, PartitionIndex] = OrderedDict()
        self._unchecked = 0

    @property
    def nbytes(self) -> int:
        return sum(index.nbytes for index in self._items.values())

    def trim(self, every: int = 1) -> None:
        """Drop the least recently used partitions while the vectors held exceed `max_bytes`; with
        `every`, only on one call in that many (adding up every partition is not free)."""
        self._unchecked += 1
        if self._unchecked < every:
            return
        self._unchecked = 0
        total = self.nbytes
        while total > self.max_bytes and len(self._items) > 1:
            _, dropped = self._items.popitem(last=False)
            total -= dropped.nbytes

    def __len__(self) -> int:
        return len(self._items)

    def get(self, name: str) -> PartitionIndex | None:
        found = self._items.get(name)
        if found is not None:
            self._items.move_to_end(name)
        return found

    def make(self, name: str, ndim: int, max_entries: int) -> PartitionIndex:
        found = self.get(name)
        if found is not None and found.ndim == ndim:
            found.max_entries = max_entries
            return found
        index = PartitionIndex(ndim, max_entries)
        self._items[name] = index
        while len(self._items) > self.max_partitions:
            self._items.popitem(last=False)
        return index

    def drop(self, name: str) -> None:
        self._items.pop(name, None)
