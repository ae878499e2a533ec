"""The log sink: never blocks the request path, writes in batches, loses nothing on close."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence

import pytest

from sluicegate.metering.sink import LogSink
from sluicegate.store.records import RequestRecord


def record(n: int) -> RequestRecord:
    return RequestRecord(
        request_id=f"req-{n}",
        ts=1_732_500_000.0 + n,
        key_id="k1",
        key_name="team-a",
        endpoint="/v1/chat/completions",
        model_requested="gpt-4o-mini",
        model_served="gpt-4o-mini",
        upstream="openai",
        channel="openai/gpt-4o-mini",
        status=200,
        prompt_tokens=19,
        completion_tokens=9,
    )


async def until(predicate: Callable[[], object], timeout: float = 10.0) -> None:
    """Poll `predicate` on the loop until true; fail with a message at the deadline."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"not true within {timeout} s"
        await asyncio.sleep(0.01)


class MemoryStore:
    """A real async writer keeping what it was given; it can be told to fail or to be slow."""

    def __init__(self, failures: int = 0, delay: float = 0.0, down_for: float = 0.0) -> None:
        self.batches: list[list[RequestRecord]] = []
        self.failures = failures
        self.delay = delay
        self.down_until = time.monotonic() + down_for
        self.calls = 0
        self.attempts: list[float] = []
        self.purged: list[int] = []

    async def write_batch(self, records: Sequence[RequestRecord], replay: bool = False) -> None:
        self.calls += 1
        self.attempts.append(time.monotonic())
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.failures or time.monotonic() < self.down_until:
            self.failures = max(0, self.failures - 1)
            raise ConnectionError("database is down")
        self.batches.append(list(records))

    async def purge(self, days: int) -> int:
        self.purged.append(days)
        return 0

    @property
    def records(self) -> list[RequestRecord]:
        return [r for batch in self.batches for r in batch]


async def test_close_writes_every_queued_record() -> None:
    store = MemoryStore()
    sink = LogSink(store.write_batch, max_queue=20_000, batch_size=500, flush_interval=60)
    sink.start()
    for n in range(10_000):
        assert sink.put_nowait(record(n))
    await sink.close(timeout=10)
    assert len(store.records) == 10_000
    assert [r.request_id for r in store.records] == [f"req-{n}" for n in range(10_000)]
    assert sink.written == 10_000 and sink.dropped == 0 and sink.depth == 0


async def test_batches_are_at_most_batch_size() -> None:
    store = MemoryStore()
    sink = LogSink(store.write_batch, batch_size=100, flush_interval=60)
    sink.start()
    for n in range(250):
        sink.put_nowait(record(n))
    await sink.close()
    assert [len(b) for b in store.batches] == [100, 100, 50]


async def test_a_full_batch_is_written_without_waiting_for_the_interval() -> None:
    store = MemoryStore()
    sink = LogSink(store.write_batch, batch_size=10, flush_interval=60)
    sink.start()
    for n in range(10):
        sink.put_nowait(record(n))
    await until(lambda: len(store.records) == 10, timeout=5)  # far less than the 60 s interval
    await sink.close()


async def test_a_partial_batch_is_written_after_the_flush_interval() -> None:
    store = MemoryStore()
    sink = LogSink(store.write_batch, batch_size=500, flush_interval=0.05)
    sink.start()
    sink.put_nowait(record(1))
    await until(lambda: len(store.records) == 1, timeout=5)
    await sink.close()


async def test_put_nowait_never_awaits_and_drops_when_full(caplog: pytest.LogCaptureFixture) -> None:
    store = MemoryStore()
    dropped: list[int] = []
    sink = LogSink(
        store.write_batch,
        max_queue=100,
        batch_size=50,
        flush_interval=60,
        on_drop=dropped.append,
        warn_interval=3600,
    )
    # not started: nothing drains, so the queue fills
    with caplog.at_level(logging.WARNING, logger="sluicegate.metering.sink"):
        accepted = [sink.put_nowait(record(n)) for n in range(150)]
    assert accepted.count(True) == 100 and accepted.count(False) == 50
    assert sink.dropped == 50 and sink.dropped_queue_full == 50 and sum(dropped) == 50
    assert sink.depth == 100
    warnings = [r for r in caplog.records if "queue full" in r.getMessage()]
    assert len(warnings) == 1  # at most one per warn_interval, not one per record


async def test_a_failed_write_is_retried_then_succeeds() -> None:
    store = MemoryStore(failures=2)
    sink = LogSink(store.write_batch, retry_backoff=0.001, flush_interval=0.01)
    sink.start()
    for n in range(5):
        sink.put_nowait(record(n))
    await until(lambda: len(store.records) == 5)
    await sink.close()
    assert sink.failed_writes == 2 and sink.dropped == 0


async def test_a_store_down_longer_than_the_old_retries_loses_nothing() -> None:
    """The old sink dropped a batch after 3 retries (~1.4 s): a 12.7 s outage lost 14% of usage."""
    store = MemoryStore(down_for=2.0)
    sink = LogSink(store.write_batch, retry_backoff=0.05, max_backoff=0.2, flush_interval=0.02)
    sink.start()
    for n in range(50):
        sink.put_nowait(record(n))
        await asyncio.sleep(0.01)
    await until(lambda: len(store.records) == 50, timeout=20)
    await sink.close()
    assert sink.dropped == 0
    assert sorted(r.request_id for r in store.records) == sorted(f"req-{n}" for n in range(50))
    assert store.calls > 5  # it kept trying through the outage


async def test_retries_back_off_up_to_the_cap() -> None:
    store = MemoryStore(down_for=1.5)
    sink = LogSink(store.write_batch, retry_backoff=0.05, max_backoff=0.2, flush_interval=0.02)
    sink.start()
    sink.put_nowait(record(1))
    await until(lambda: len(store.records) == 1, timeout=20)
    await sink.close()
    gaps = [b - a for a, b in zip(store.attempts, store.attempts[1:], strict=False)]
    assert gaps and max(gaps) < 0.2 + 1.0, gaps  # capped (1 s of slack for a loaded machine)
    assert len(store.attempts) <= 1.5 / 0.05 + 2, "no backoff: it hammered the store"


async def test_records_arriving_while_closing_are_still_written() -> None:
    store = MemoryStore(delay=0.02)
    sink = LogSink(store.write_batch, batch_size=10, flush_interval=60)
    sink.start()
    for n in range(10):
        sink.put_nowait(record(n))
    closing = asyncio.create_task(sink.close(timeout=5))
    await asyncio.sleep(0.005)
    sink.put_nowait(record(99))  # a request that finished during shutdown
    await closing
    assert len(store.records) == 11


async def test_after_close_records_are_dropped_not_queued_forever() -> None:
    store = MemoryStore()
    sink = LogSink(store.write_batch)
    sink.start()
    await sink.close()
    assert sink.put_nowait(record(1)) is False
    assert sink.dropped == 1


async def test_close_gives_up_after_the_timeout_and_counts_the_loss_when_there_is_no_spill() -> None:
    store = MemoryStore(delay=10)
    sink = LogSink(store.write_batch, batch_size=10, flush_interval=60)
    sink.start()
    for n in range(25):
        sink.put_nowait(record(n))
    await asyncio.sleep(0)  # let the writer take the first batch
    await sink.close(timeout=0.1)
    assert sink.dropped == 25 and sink.written == 0


async def test_retention_purge_runs_at_start_and_then_every_interval() -> None:
    store = MemoryStore()
    sink = LogSink(store.write_batch, purge=store.purge, retention_days=30, purge_interval=0.05)
    sink.start()
    await until(lambda: len(store.purged) >= 2)
    await sink.close()
    assert set(store.purged) == {30}
    assert sink.purges == len(store.purged)


async def test_no_retention_means_no_purge() -> None:
    store = MemoryStore()
    sink = LogSink(store.write_batch, purge=store.purge, retention_days=None, purge_interval=0.01)
    sink.start()
    await asyncio.sleep(0.05)
    await sink.close()
    assert store.purged == []


async def test_a_failing_purge_does_not_stop_the_sink() -> None:
    store = MemoryStore()

    async def broken_purge(days: int) -> None:
        raise RuntimeError("no such table")

    sink = LogSink(
        store.write_batch, purge=broken_purge, retention_days=7, purge_interval=0.01, flush_interval=0.01
    )
    sink.start()
    await asyncio.sleep(0.05)  # a few failed purges
    sink.put_nowait(record(1))
    await sink.close()
    assert len(store.records) == 1


async def test_queue_depth_is_reported_each_turn() -> None:
    store = MemoryStore()
    depths: list[int] = []
    sink = LogSink(store.write_batch, flush_interval=0.01, on_depth=depths.append)
    sink.start()
    await until(lambda: len(depths) >= 2)
    await sink.close()
    assert depths and depths[-1] == 0
