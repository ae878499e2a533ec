"""The request log's way around a store that cannot write: records move to the local spill and are
written back, oldest first, when the store takes them again, and at the next start.

Why apart from the sink's write loop (metering/sink.py, `LogSink` builds on this class): this is the
path that runs only in an outage, and the one that makes "usage is never lost" true; the spill's own
file format is metering/spill.py.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections import deque

from sluicegate.metering.spill import Spill, write_back
from sluicegate.store.records import RequestRecord


class Spilling:
    """Moving records to the spill and back. The state is the sink's (set in `LogSink.__init__`)."""

    _queue: deque[RequestRecord]
    _held: list[RequestRecord]  # a batch the store could not take, retried first
    _spill: Spill | None
    _spill_lock: asyncio.Lock  # one append or seal of the spill's own file at a time
    _spiller: asyncio.Task[None] | None
    _lock: asyncio.Lock | None
    _inflight: int
    _spill_at: int
    _batch_size: int
    _replay_due: bool
    _log: logging.Logger
    spilled: int
    replayed: int

    def _take(self, count: int) -> list[RequestRecord]:
        raise NotImplementedError

    async def _write(self, batch: list[RequestRecord], replay: bool) -> bool:
        raise NotImplementedError

    def _warn(self, kind: str) -> bool:
        raise NotImplementedError

    async def recover(self, timeout: float = 30.0) -> int:  # noqa: ASYNC109 (a bound on start-up)
        """Write every spill file left by earlier runs into the store; returns records written.

        Called at start, before budgets are seeded from the store, so they include that usage.
        Workers starting together take turns (a lock file), so each sees the others' replay done.
        """
        spill = self._spill
        if spill is None or not spill.directory.is_dir():
            return 0  # never spilled: no directory to create, nothing to replay
        before = self.replayed
        fd = await asyncio.to_thread(spill.recovery_lock, timeout)
        try:
            await asyncio.wait_for(self._replay(limit=None), timeout)
        except TimeoutError:
            self._log.warning("request log: spill replay at start took over %.0fs; continuing later", timeout)
        finally:
            if fd is not None:
                os.close(fd)
        return self.replayed - before

    async def _spill_out(self) -> bool:
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            return await self._spill_out_locked()

    async def _spill_out_locked(self) -> bool:
        """Move everything in memory to the spill; True if it all went. What does not fit stays."""
        spill = self._spill
        if spill is None or not (self._held or self._queue):
            return False
        records = self._held + self._take(len(self._queue))
        self._held = []
        stored = await self._append(spill, records)
        self._held = records[stored:]
        return stored == len(records)

    async def _spill_queue(self) -> None:
        """Move the queue (not the batch being written) to the spill while a write hangs; again if
        it filled past half meanwhile (no later record may come to trigger it)."""
        try:
            spill = self._spill
            first = True
            while spill is not None and self._queue and (first or len(self._queue) >= self._spill_at):
                first = False
                if not self._inflight:
                    return  # the write returned: the writer takes the queue from here
                records = self._take(len(self._queue))
                stored = await self._append(spill, records)
                if stored < len(records):  # back to the front of the queue, oldest first
                    self._queue.extendleft(reversed(records[stored:]))
                    return
        finally:
            self._spiller = None

    async def _append(self, spill: Spill, records: list[RequestRecord]) -> int:
        async with self._spill_lock:
            try:
                stored = await asyncio.to_thread(spill.append, records)
            except OSError as exc:
                stored = 0
                if self._warn("fail"):
                    self._log.error("request log: the spill %s cannot write: %r", spill.directory, exc)
        self.spilled += stored
        if stored:
            self._replay_due = True
        return stored

    async def _replay(self, limit: int | None) -> bool:
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            return await self._replay_locked(limit)

    async def _replay_locked(self, limit: int | None) -> bool:
        """Write spilled records back, up to `limit` batches (None: all); False if the store failed."""
        spill = self._spill
        if spill is None:
            return True
        if spill.open_records:
            async with self._spill_lock:
                await asyncio.to_thread(spill.seal)
        ok, count, finished = await write_back(spill, lambda b: self._write(b, True), self._batch_size, limit)
        self.replayed += count
        if finished:
            self._replay_due = False
        return ok
