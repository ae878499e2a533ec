"""The request log's write path: records queued on the request path, written in batches off it.

A request never waits for the database. `put_nowait` appends to a bounded deque (tens of
nanoseconds) and returns; one background task drains it in batches through an injected writer (the
store's `UsageRepository.write_batch`). When the database is slow or down the queue fills, and then
records are dropped — counted and logged, never blocking the gateway — because refusing or slowing
traffic to protect a log would be the wrong way round. A failed batch is retried with backoff
before it is dropped. `close()` drains everything first: a gateway stopped with SIGTERM loses
nothing it had queued.

The same task runs retention: it calls the injected `purge(days)` once at start and then every
`purge_interval` seconds when `retention_days` is set.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence

from sluicegate.store.records import RequestRecord

Writer = Callable[[Sequence[RequestRecord]], Awaitable[object]]
Purge = Callable[[int], Awaitable[object]]

_log = logging.getLogger("sluicegate.metering.sink")


class LogSink:
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
        retries: int = 3,
        retry_backoff: float = 0.2,
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
        self._writer = writer
        self._max_queue = max_queue
        self._batch_size = batch_size
        self._flush_interval = flush_interval
        self._retries = retries
        self._retry_backoff = retry_backoff
        self._purge = purge
        self._retention_days = retention_days
        self._purge_interval = purge_interval
        self._warn_interval = warn_interval
        self._on_drop = on_drop
        self._on_depth = on_depth
        self._log = logger or _log
        self._queue: deque[RequestRecord] = deque()
        self._wake: asyncio.Event | None = None
        self._lock: asyncio.Lock | None = None
        self._task: asyncio.Task[None] | None = None
        self._purge_task: asyncio.Task[None] | None = None
        self._closing = False
        self._closed = False
        self._inflight = 0
        self._last_warn = float("-inf")
        self._unwarned_drops = 0
        self.dropped = 0  # records lost: queue full, or a batch that failed every retry
        self.dropped_queue_full = 0
        self.dropped_write_failed = 0
        self.written = 0
        self.failed_writes = 0  # writer calls that raised (each retry counts)
        self.purges = 0

    # -- the request path -------------------------------------------------------------------

    def put_nowait(self, record: RequestRecord) -> bool:
        """Queue a record; False if it was dropped because the queue is full or the sink closed.

        Records still arrive while `close()` drains (requests finishing during shutdown) and are
        written; only after `close()` returns are they dropped.
        """
        queue = self._queue
        if len(queue) >= self._max_queue or self._closed:
            self._drop_full(1)
            return False
        queue.append(record)
        if len(queue) == self._batch_size and self._wake is not None:
            self._wake.set()  # a full batch is ready: don't wait for the interval
        return True

    @property
    def depth(self) -> int:
        return len(self._queue)

    def _drop_full(self, count: int) -> None:
        self.dropped += count
        self.dropped_queue_full += count
        self._unwarned_drops += count
        if self._on_drop is not None:
            self._on_drop(count)
        now = time.monotonic()
        if now - self._last_warn >= self._warn_interval:
            self._last_warn = now
            self._log.warning(
                "request log queue full (%d records): dropped %d records since the last warning, %d in all",
                self._max_queue,
                self._unwarned_drops,
                self.dropped,
            )
            self._unwarned_drops = 0

    # -- the background task ----------------------------------------------------------------

    def start(self) -> None:
        """Start the writer (and retention) task on the running loop; call once at app startup."""
        if self._task is not None:
            return
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()
        self._task = asyncio.get_running_loop().create_task(self._run(), name="sluicegate-log-sink")
        if self._purge is not None and self._retention_days:
            self._purge_task = asyncio.get_running_loop().create_task(
                self._purge_loop(), name="sluicegate-log-retention"
            )

    async def _run(self) -> None:
        assert self._wake is not None
        while not self._closing:
            try:
                await asyncio.wait_for(self._wake.wait(), self._flush_interval)
            except TimeoutError:
                pass
            self._wake.clear()
            await self.flush()
            if self._on_depth is not None:
                self._on_depth(len(self._queue))
        while self._queue:  # close(): drain, including records that arrive meanwhile
            await self.flush()

    async def flush(self) -> None:
        """Write everything queued now, in batches; returns when it is written or dropped."""
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            queue = self._queue
            while queue:
                count = min(len(queue), self._batch_size)
                batch = [queue.popleft() for _ in range(count)]
                self._inflight = count
                try:
                    await self._write(batch)
                finally:
                    self._inflight = 0

    async def _write(self, batch: list[RequestRecord]) -> None:
        delay = self._retry_backoff
        for attempt in range(self._retries + 1):
            try:
                await self._writer(batch)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the writer's failure must not kill the sink
                self.failed_writes += 1
                if attempt == self._retries:
                    self.dropped += len(batch)
                    self.dropped_write_failed += len(batch)
                    if self._on_drop is not None:
                        self._on_drop(len(batch))
                    self._log.error(
                        "request log: dropped a batch of %d records after %d attempts: %r",
                        len(batch),
                        attempt + 1,
                        exc,
                    )
                    return
                self._log.warning("request log: write failed (attempt %d), retrying: %r", attempt + 1, exc)
                await asyncio.sleep(delay)
                delay *= 2
            else:
                self.written += len(batch)
                return

    async def _purge_loop(self) -> None:
        assert self._purge is not None and self._retention_days
        while True:
            try:
                await self._purge(self._retention_days)
                self.purges += 1
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._log.error("request log retention: purge failed: %r", exc)
            await asyncio.sleep(self._purge_interval)

    async def close(self, timeout: float = 10.0) -> None:  # noqa: ASYNC109 (a bound on shutdown, not a call timeout)
        """Stop taking records, write all queued ones, stop the tasks (SIGTERM path).

        Records still unwritten after `timeout` seconds (a database that never answers) are
        counted as dropped and logged: shutdown must end.
        """
        self._closing = True
        task = self._task
        try:
            if task is not None:
                assert self._wake is not None
                self._wake.set()
                await asyncio.wait_for(asyncio.shield(task), timeout)
            else:
                await asyncio.wait_for(self.flush(), timeout)
        except TimeoutError:
            if task is not None:
                task.cancel()
            lost = len(self._queue) + self._inflight
            self._queue.clear()
            self._inflight = 0
            if lost:
                self.dropped += lost
                self.dropped_write_failed += lost
                if self._on_drop is not None:
                    self._on_drop(lost)
            self._log.error("request log: close timed out after %.1fs; %d queued records lost", timeout, lost)
        finally:
            self._closed = True
            if self._purge_task is not None:
                self._purge_task.cancel()
                try:
                    await self._purge_task
                except (asyncio.CancelledError, Exception):
                    pass
                self._purge_task = None
            if self._on_depth is not None:
                self._on_depth(len(self._queue))
