"""The request log's write path: records queued on the request path, written in batches off it.

A request never waits for the database. `put_nowait` appends to a bounded deque (tens of
nanoseconds) and returns; one background task drains it in batches through an injected writer (the
store's `UsageRepository.write_batch`). Usage is not lost on the way:

- A batch the store cannot take (connection lost, disk full) is held and retried with backoff
  (`retry_backoff` doubling up to `max_backoff`) for as long as it takes, while new records queue.
- When what waits in memory reaches half the queue, it moves to the local spill (`spill.py`:
  fsync'd JSON lines), which is written back when the store is back and at the next start
  (`recover`). Only when both the queue and the spill are full is a record dropped: counted
  (`on_drop`) and logged.
- A batch the store refuses for what is in it (a data error) is split in halves until the record
  at fault is found; it is written repaired, or dropped and counted as a last resort
  (`batchwrite.py`, `bounds.py`).
- Every record is given a unique `record_id` and its figures are bounded before the first write,
  so a retried or replayed batch is counted once and an absurd figure cannot fail a batch.
- `close()` writes everything queued (SIGTERM loses nothing); what the store cannot take by then
  goes to the spill.

What a hard kill (`kill -9`) loses is only what is in memory: at most about one flush interval of
records while the store is healthy (docs/metering.md, "Durability").

Retention (`retention.py`) runs beside it: the injected `purge(days)` once at start and then every
`purge_interval` seconds when `retention_days` is set.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
import uuid
from collections import deque
from collections.abc import Callable

from sluicegate.metering.batchwrite import BatchWriter, StoreUnwritable, Writer
from sluicegate.metering.bounds import bound
from sluicegate.metering.retention import Purge, Retention
from sluicegate.metering.spill import Spill
from sluicegate.metering.spilling import Spilling
from sluicegate.store.records import RequestRecord

_log = logging.getLogger("sluicegate.metering.sink")


class LogSink(Spilling):
    """A bounded queue of `RequestRecord`s and the one task that writes them in batches.

    Not thread-safe: `put_nowait` is called from the event loop the sink runs on (each worker
    process has its own sink).
    """

    def __init__(
        self,
        writer: Writer,
        *,
        max_queue: int = 50_000,
        batch_size: int = 500,
        flush_interval: float = 1.0,
        retry_backoff: float = 0.2,
        max_backoff: float = 5.0,
        write_timeout: float = 30.0,
        spill: Spill | None = None,
        purge: Purge | None = None,
        retention_days: int | None = None,
        purge_interval: float = 3600.0,
        warn_interval: float = 10.0,
        on_drop: Callable[[int], None] | None = None,
        on_depth: Callable[[int], None] | None = None,
        logger: logging.Logger | None = None,
    ) -> None:
        """`on_drop(n)` and `on_depth(depth)` feed the metrics (`Metrics.log_dropped`,
        `Metrics.set_log_queue_depth`); `on_depth` is called once per loop turn, not per record."""
        if max_queue < 1 or batch_size < 1 or flush_interval <= 0:
            raise ValueError("max_queue and batch_size must be >= 1 and flush_interval > 0")
        self._batches = BatchWriter(
            writer, timeout=write_timeout, on_refused=self._refused, logger=logger or _log
        )
        self._max_queue = max_queue
        self._spill_at = max(1, max_queue // 2)
        self._batch_size = batch_size
        self._flush_interval = flush_interval
        self._retry_backoff = retry_backoff
        self._max_backoff = max(max_backoff, retry_backoff)
        self._spill = spill
        self._retention = Retention(purge, retention_days, purge_interval, logger or _log) if purge else None
        self._warn_interval = warn_interval
        self._on_drop = on_drop
        self._on_depth = on_depth
        self._log = logger or _log
        self._queue: deque[RequestRecord] = deque()
        self._held: list[RequestRecord] = []  # a batch the store could not take, retried first
        self._wake: asyncio.Event | None = None
        self._lock: asyncio.Lock | None = None
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._closed = False
        self._inflight = 0
        self._failing = False  # the last write failed because the store could not write
        self._delay = retry_backoff
        self._next_try = 0.0
        self._replay_due = False
        self._spiller: asyncio.Task[None] | None = None
        self._spill_lock = asyncio.Lock()  # one append or seal of the spill's own file at a time
        self._id_prefix = f"{os.getpid():x}-{uuid.uuid4().hex[:12]}-"
        self._ids = 0
        self._last_warn = {"drop": float("-inf"), "fail": float("-inf")}
        self._unwarned_drops = 0
        self.last_error: str | None = None
        self.last_drop = float("-inf")  # monotonic time of the last dropped record
        self.dropped = 0  # records lost: queue and spill full, or a record the store never took
        self.dropped_queue_full = 0
        self.dropped_write_failed = 0
        self.spilled = 0  # records moved to the spill
        self.replayed = 0  # records written back from the spill
        self.clamped = 0  # records whose figures were out of bounds

    # -- the request path -------------------------------------------------------------------

    def put_nowait(self, record: RequestRecord) -> bool:
        """Queue a record; False if it was dropped because the queue is full or the sink closed.

        Records still arrive while `close()` drains (requests finishing during shutdown) and are
        written; only after `close()` returns are they dropped.
        """
        queue = self._queue
        n = len(queue)
        if n >= self._max_queue or self._closed:
            self._drop(1, "closed" if self._closed else "queue full (and the spill cannot take more)")
            self.dropped_queue_full += 1
            return False
        queue.append(record)
        n += 1
        if n >= self._spill_at:
            self._filling(n)  # memory is half full: rare, off the common path
        elif n == self._batch_size and self._wake is not None:
            self._wake.set()  # a full batch is ready: don't wait for the interval
        return True

    def _filling(self, n: int) -> None:
        if (n == self._spill_at or n == self._batch_size) and self._wake is not None:
            self._wake.set()
        if self._inflight and self._spill is not None and self._spiller is None and self._wake is not None:
            # The writer is stuck in a write (a locked table, a silent network): move the queue
            # to the spill from another task rather than let it fill and drop.
            self._spiller = asyncio.get_running_loop().create_task(self._spill_queue())

    @property
    def depth(self) -> int:
        """Records waiting in memory (queued, or held for a retry)."""
        return len(self._queue) + len(self._held) + self._inflight

    @property
    def queued(self) -> int:
        """Records in the queue (not yet taken for a write); what `max_queue` bounds."""
        return len(self._queue)

    @property
    def store_writable(self) -> bool:
        """False while the last write failed because the store could not write."""
        return not self._failing

    @property
    def spill_pending(self) -> int:
        """Records in the local spill that are not yet in the store (this process's view)."""
        return self._spill.pending if self._spill is not None else 0

    @property
    def can_spill(self) -> bool:
        """Whether there is a spill with room (a directory listing: for /readyz, not the hot path)."""
        return self._spill is not None and self._spill.has_room

    @property
    def durable(self) -> bool:
        """Whether records are safe now: the store writes, or the spill has room, and nothing was
        dropped in the last `warn_interval` seconds."""
        if time.monotonic() - self.last_drop < self._warn_interval:
            return False
        return not self._failing or self.can_spill

    def _drop(self, count: int, why: str) -> None:
        self.dropped += count
        self._unwarned_drops += count
        self.last_drop = time.monotonic()
        if self._on_drop is not None:
            self._on_drop(count)
        if self._warn("drop"):
            self._log.error(
                "request log %s: dropped %d records since the last warning, %d in all",
                why,
                self._unwarned_drops,
                self.dropped,
            )
            self._unwarned_drops = 0

    def _warn(self, kind: str) -> bool:
        now = time.monotonic()
        if now - self._last_warn[kind] >= self._warn_interval:
            self._last_warn[kind] = now
            return True
        return False

    # -- the background task ----------------------------------------------------------------

    def start(self) -> None:
        """Start the writer (and retention) task on the running loop; call once at app startup."""
        if self._task is not None:
            return
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()
        self._replay_due = self._spill is not None
        self._task = asyncio.get_running_loop().create_task(self._run(), name="sluicegate-log-sink")
        if self._retention is not None:
            self._retention.start()

    async def _run(self) -> None:
        assert self._wake is not None
        while not self._closing:
            timeout = self._flush_interval
            if self._failing:
                timeout = max(0.0, self._next_try - time.monotonic())
            try:
                await asyncio.wait_for(self._wake.wait(), timeout)
            except TimeoutError:
                pass
            self._wake.clear()
            if self._failing and not self._closing and time.monotonic() < self._next_try:
                if self._in_memory() >= self._spill_at:  # memory fills while the store is down
                    await self._spill_out()
            else:
                await self.flush()
            if self._on_depth is not None:
                self._on_depth(self.depth)
        # close(): drain, including records that arrive meanwhile; spill what the store won't take
        while self._queue or self._held:
            if not await self._flush_once() and not await self._spill_out():
                break

    def _in_memory(self) -> int:
        return len(self._queue) + len(self._held)

    async def flush(self) -> None:
        """Write what is queued now, in batches; stops early (keeping the rest) if the store fails."""
        await self._flush_once()

    async def _flush_once(self) -> bool:
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            if self._failing and self._in_memory() >= self._spill_at:
                await self._spill_out_locked()
            while self._held:
                batch = self._held[: self._batch_size]
                self._held = self._held[self._batch_size :]
                if not await self._write_held(batch):
                    return False
            if self._replay_due and not await self._replay_locked(limit=4):
                return False
            queue = self._queue
            while queue:
                batch = self._take(min(len(queue), self._batch_size))
                if not await self._write_held(batch, replay=False):
                    return False
            return True

    def _take(self, count: int) -> list[RequestRecord]:
        """Pop `count` records, giving each its id and bounding its figures (off the request path)."""
        queue = self._queue
        batch = [queue.popleft() for _ in range(count)]
        prefix = self._id_prefix
        for r in batch:
            if r.record_id is None:
                self._ids += 1
                r.record_id = f"{prefix}{self._ids:x}"
            if bound(r):
                self.clamped += 1
        return batch

    async def _write_held(self, batch: list[RequestRecord], replay: bool = True) -> bool:
        """Write a batch; on a store failure keep it held for the next try and return False."""
        self._inflight = len(batch)
        try:
            ok = await self._write(batch, replay)
        except asyncio.CancelledError:  # close() gave up waiting: the batch goes to the spill
            self._held = batch + self._held
            raise
        finally:
            self._inflight = 0
        if not ok:
            self._held = batch + self._held
        return ok

    async def _write(self, batch: list[RequestRecord], replay: bool) -> bool:
        """True once every record is stored (or repaired, or dropped as refused); False when the
        store could not write at all (nothing is lost: the caller keeps the batch)."""
        try:
            await self._batches.write(batch, replay)
        except StoreUnwritable as failure:
            self._store_failed(failure.cause, len(batch))
            return False
        if self._failing:
            self._log.warning("request log: the store writes again")
            if self._spill is not None:
                self._replay_due = True
        self._failing = False
        self._delay = self._retry_backoff
        return True

    def _refused(self, record: RequestRecord, exc: BaseException) -> None:
        self.dropped_write_failed += 1
        self._drop(1, f"record {record.request_id}: refused by the store even repaired ({exc!r})")

    @property
    def purges(self) -> int:
        """Retention purges that ran."""
        return self._retention.purges if self._retention is not None else 0

    @property
    def written(self) -> int:
        return self._batches.written

    @property
    def failed_writes(self) -> int:
        """Writer calls that raised (each retry counts)."""
        return self._batches.failed_writes

    @property
    def repaired(self) -> int:
        """Records written repaired after the store refused them."""
        return self._batches.repaired

    def _store_failed(self, exc: BaseException, count: int) -> None:
        self.last_error = f"{type(exc).__name__}: {exc}"[:300]
        if self._failing:
            self._delay = min(self._max_backoff, self._delay * 2)
        self._failing = True
        self._next_try = time.monotonic() + self._delay
        if self._warn("fail"):
            self._log.warning(
                "request log: the store cannot write (%d records held, %d in memory, %d spilled); "
                "retrying every %.1fs at most: %r",
                count,
                self.depth,
                self.spill_pending,
                self._max_backoff,
                exc,
            )

    async def close(self, timeout: float = 10.0) -> None:  # noqa: ASYNC109 (a bound on shutdown, not a call timeout)
        """Stop taking records, write all queued ones, stop the tasks (SIGTERM path).

        What the store cannot take within `timeout` seconds goes to the spill; only records
        neither could take are counted as dropped and logged: shutdown must end.
        """
        self._closing = True
        task = self._task
        try:
            if task is not None:
                assert self._wake is not None
                self._wake.set()
                await asyncio.wait_for(asyncio.shield(task), timeout)
            elif not await asyncio.wait_for(self._flush_once(), timeout):
                await self._spill_out()
        except TimeoutError:
            if task is not None:
                task.cancel()
                try:
                    await task
                except (asyncio.CancelledError, Exception):
                    pass
            self._lock = asyncio.Lock()  # the cancelled task may have held it
            await self._spill_out()
            self._log.error("request log: close timed out after %.1fs", timeout)
        finally:
            if self._spiller is not None:
                await asyncio.gather(self._spiller, return_exceptions=True)
            self._closed = True
            lost = self._in_memory()
            if lost:
                self._queue.clear()
                self._held = []
                self.dropped_write_failed += lost
                self._drop(lost, "at shutdown: neither the store nor the spill took the records")
            if self._spill is not None:
                self._spill.close()
            if self._retention is not None:
                await self._retention.stop()
            if self._on_depth is not None:
                self._on_depth(self.depth)
