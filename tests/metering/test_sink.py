"""The log sink: never blocks the request path, writes in batches, loses nothing on close."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

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


class MemoryStore:
    """A real async writer keeping what it was given; it can be told to fail or to be slow."""

    def __init__(self, failures: int = 0, delay: float = 0.0) -> None:
        self.batches: list[list[RequestRecord]] = []
        self.failures = failures
        self.delay = delay
        self.calls = 0
        self.purged: list[int] = []

    async def write_batch(self, records: Sequence[RequestRecord]) -> None:
        self.calls += 1
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.failures:
            self.failures -= 1
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
    await asyncio.sleep(0.05)
    assert len(store.records) == 10
    await sink.close()


async def test_a_partial_batch_is_written_after_the_flush_interval() -> None:
    store = MemoryStore()
    sink = LogSink(store.write_batch, batch_size=500, flush_interval=0.05)
    sink.start()
    sink.put_nowait(record(1))
    await asyncio.sleep(0.2)
    assert len(store.records) == 1
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
    sink = LogSink(store.write_batch, retries=3, retry_backoff=0.001, flush_interval=60)
    for n in range(5):
        sink.put_nowait(record(n))
    await sink.flush()
    assert len(store.records) == 5
    assert sink.failed_writes == 2 and sink.dropped == 0


async def test_a_batch_failing_every_retry_is_dropped_and_counted() -> None:
    store = MemoryStore(failures=100)
    dropped: list[int] = []
    sink = LogSink(store.write_batch, retries=2, retry_backoff=0.001, on_drop=dropped.append)
    for n in range(5):
        sink.put_nowait(record(n))
    await sink.flush()
    assert store.calls == 3
    assert sink.dropped == 5 and sink.dropped_write_failed == 5 and dropped == [5]
    assert sink.depth == 0


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


async def test_close_gives_up_after_the_timeout_and_counts_the_loss() -> None:
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
    await asyncio.sleep(0.12)
    await sink.close()
    assert len(store.purged) >= 2 and set(store.purged) == {30}
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
    await asyncio.sleep(0.05)
    sink.put_nowait(record(1))
    await sink.close()
    assert len(store.records) == 1


async def test_queue_depth_is_reported_each_turn() -> None:
    store = MemoryStore()
    depths: list[int] = []
    sink = LogSink(store.write_batch, flush_interval=0.01, on_depth=depths.append)
    sink.start()
    await asyncio.sleep(0.05)
    await sink.close()
    assert depths and depths[-1] == 0
