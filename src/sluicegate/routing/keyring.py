"""The provider keys of one upstream, used in turn, minus those the upstream refused.

Spreading requests over several keys of one account multiplies per-key rate limits; a key the
upstream answers 401/403/402 (or "insufficient balance") for is disabled until a person resets it
or an active probe with it succeeds. Key ids are opaque to the router and may be the secrets
themselves, so nothing here ever puts an id into a snapshot, a label or an error message: keys
are reported by their position in the configured list.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any


class KeyRing:
    """Round-robin over an upstream's keys, skipping disabled ones."""

    __slots__ = (
        "_changed_at",
        "_dirty",
        "_enabled",
        "_ids",
        "_index",
        "_last_probe",
        "_live",
        "_next",
        "_reasons",
    )

    def __init__(self, key_ids: Sequence[str]) -> None:
        if not key_ids:
            raise ValueError("a key ring needs at least one key")
        self._ids: tuple[str, ...] = tuple(key_ids)
        self._index = {key: i for i, key in enumerate(self._ids)}
        if len(self._index) != len(self._ids):
            raise ValueError("a key ring's keys must be distinct")
        n = len(self._ids)
        self._enabled = [True] * n
        self._reasons: list[str | None] = [None] * n
        self._changed_at = [0.0] * n
        self._last_probe = [0.0] * n
        self._next = 0
        self._live = n
        self._dirty = False

    def __len__(self) -> int:
        return len(self._ids)

    @property
    def available(self) -> bool:
        """Whether at least one key is usable."""
        return self._live > 0

    def next(self) -> str | None:
        """The next usable key in turn, or None when every key is disabled."""
        ids = self._ids
        n = len(ids)
        if n == 1:
            return ids[0] if self._live else None
        enabled = self._enabled
        i = self._next
        for _ in range(n):
            if enabled[i]:
                self._next = (i + 1) % n
                return ids[i]
            i = (i + 1) % n
        return None

    def disable(self, key_id: str, reason: str, now: float) -> bool:
        """Stop using a key the upstream refused; True if it was enabled until now."""
        i = self._index.get(key_id)
        if i is None or not self._enabled[i]:
            return False
        self._set(i, False, reason, now)
        return True

    def restore(self, key_id: str, now: float) -> bool:
        """Use a key again (after a successful probe); True if it was disabled."""
        i = self._index.get(key_id)
        if i is None or self._enabled[i]:
            return False
        self._set(i, True, None, now)
        return True

    def restore_index(self, index: int, now: float) -> bool:
        """Restore by position, for a person who can see positions but never key ids."""
        if not 0 <= index < len(self._ids) or self._enabled[index]:
            return False
        self._set(index, True, None, now)
        return True

    def restore_all(self, now: float) -> bool:
        """Restore every key; True if any was disabled."""
        changed = False
        for i, on in enumerate(self._enabled):
            if not on:
                self._set(i, True, None, now)
                changed = True
        return changed

    def is_enabled(self, key_id: str) -> bool:
        """Whether a key is in use (False for a key this ring does not hold)."""
        i = self._index.get(key_id)
        return i is not None and self._enabled[i]

    def due_probes(self, now: float, interval_s: float) -> list[str]:
        """Disabled keys not probed for `interval_s`; claims them, so each is handed out once per interval."""
        due = []
        for i, on in enumerate(self._enabled):
            if not on and now - max(self._last_probe[i], self._changed_at[i]) >= interval_s:
                self._last_probe[i] = now
                due.append(self._ids[i])
        return due

    def snapshot(self) -> list[dict[str, Any]]:
        """Per key, by position: enabled, why not, since when. Never the key id."""
        return [
            {
                "index": i,
                "enabled": self._enabled[i],
                "reason": self._reasons[i],
                "changed_at": self._changed_at[i],
            }
            for i in range(len(self._ids))
        ]

    def take_dirty(self) -> bool:
        """Whether a key changed since the last call (for publishing to a shared store)."""
        dirty, self._dirty = self._dirty, False
        return dirty

    def adopt(self, records: Iterable[Mapping[str, Any]]) -> bool:
        """Merge key states from another process: per key, the later change wins."""
        changed = False
        for record in records:
            i = record.get("index")
            if not isinstance(i, int) or not 0 <= i < len(self._ids):
                continue
            at = float(record.get("changed_at", 0.0))
            if at <= self._changed_at[i]:
                continue
            enabled = bool(record.get("enabled", True))
            if enabled != self._enabled[i]:
                self._live += 1 if enabled else -1
                changed = True
            self._enabled[i] = enabled
            self._reasons[i] = None if enabled else record.get("reason")
            self._changed_at[i] = at
        return changed

    def _set(self, i: int, enabled: bool, reason: str | None, now: float) -> None:
        self._live += 1 if enabled else -1
        self._enabled[i] = enabled
        self._reasons[i] = reason
        self._changed_at[i] = now
        self._dirty = True
