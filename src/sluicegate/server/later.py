"""Calls put off by a short while, on one beat per worker instead of one timer each.

Why: most requests end within milliseconds, yet some of their safeguards need a timer or a future
from the first moment (the upstream deadlines, Granian's disconnect future), and setting up and
tearing down one costs 3-30 µs a request. `Later` defers such a set-up by `after` seconds: an entry
costs an append to a deque, a request that ends sooner cancels its entry (two stores) and never pays
for the set-up. One timer per worker beats every `after` seconds while entries wait, so an entry's
call runs between `after` and 2 × `after` after it was added; the call then sets up the precise
safeguard, so what is deferred must not need to act within 2 × `after` (the callers check).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from typing import Any

AFTER = 0.05

log = logging.getLogger("sluicegate")

# An entry: [when it was added, the call (None once cancelled), its argument]
Entry = list[Any]


class Later:
    """Deferred calls of one event loop (rebound when used from another: tests run many loops)."""

    __slots__ = ("_after", "_handle", "_loop", "_pending")

    def __init__(self, after: float = AFTER) -> None:
        self._after = after
        self._pending: deque[Entry] = deque()  # in the order added
        self._handle: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def after(self) -> float:
        return self._after

    def add(self, call: Callable[[Any], None], arg: Any) -> Entry:
        """Call `call(arg)` in `after` to 2 × `after` seconds, unless `cancel`led before."""
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # entries of another (closed) loop can never run
            self._loop = loop
            self._pending.clear()
            self._handle = None
        now = loop.time()
        entry = [now, call, arg]
        self._pending.append(entry)
        if self._handle is None:
            self._handle = loop.call_at(now + self._after, self._tick)
        return entry

    @staticmethod
    def cancel(entry: Entry) -> None:
        """The call is no longer wanted (nothing of its argument is kept alive here after this)."""
        entry[1] = entry[2] = None

    def _tick(self) -> None:
        loop = self._loop
        assert loop is not None
        now = loop.time()
        cutoff = now - self._after
        pending = self._pending
        try:
            while pending and pending[0][0] <= cutoff:
                entry = pending.popleft()
                call = entry[1]
                if call is not None:
                    entry[1] = None
                    try:
                        call(entry[2])
                    except Exception:  # one failing call must not stop the beat for every other
                        log.exception("a deferred set-up failed")
        finally:
            # A fixed beat, not one timer per entry: an entry runs between `after` and twice that.
            self._handle = loop.call_at(now + self._after, self._tick) if pending else None

    def close(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        self._pending.clear()
