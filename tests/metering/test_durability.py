"""Usage is never lost: the log sink against real SQLite and PostgreSQL stores.

Outages, full spills, absurd figures and records the store refuses; each test counts rows and
aggregates in the real database afterwards: every record once, none twice.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from pathlib import Path

import pytest
from sqlalchemy import text
from support.pg import fresh_postgres_database

from sluicegate.metering.bounds import MAX_COUNT, bound, is_record_fault
from sluicegate.metering.sink import LogSink
from sluicegate.metering.spill import Spill
from sluicegate.store import Store
from sluicegate.store.records import RequestRecord


def record(n: int, **fields: object) -> RequestRecord:
    values: dict[str, object] = {
        "request_id": f"req-{n}",
        "ts": time.time(),
        "key_id": "k1",
        "key_name": "team-a",
        "endpoint": "/v1/chat/completions",
        "model_requested": "gpt-4o-mini",
        "model_served": "gpt-4o-mini",
        "upstream": "openai",
        "channel": "openai/gpt-4o-mini",
        "status": 200,
        "prompt_tokens": 19,
        "completion_tokens": 9,
    }
    values.update(fields)
    return RequestRecord(**values)  # type: ignore[arg-type]


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'log.db'}"
    else:
        with fresh_postgres_database("sg_durability") as url:
            yield url


@pytest.fixture
def pg_url() -> Iterator[str]:
    with fresh_postgres_database("sg_durability") as url:
        yield url


@pytest.fixture
async def store(db_url: str) -> AsyncIterator[Store]:
    s = await Store.open(db_url)
    yield s
    await s.close()


async def counts(store: Store) -> tuple[int, int, int]:
    """(log rows, distinct record ids, requests in usage_daily)."""
    async with store.engine.connect() as conn:
        rows = (
            await conn.execute(text("SELECT count(*), count(DISTINCT record_id) FROM request_logs"))
        ).one()
        daily = (await conn.execute(text("SELECT coalesce(sum(requests), 0) FROM usage_daily"))).scalar()
    return int(rows[0]), int(rows[1]), int(daily or 0)


async def until(predicate: Callable[[], object], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"not true within {timeout} s"
        await asyncio.sleep(0.02)


async def room(sink: LogSink, queue: int = 100) -> None:
    """Hold the producer while the queue is nearly full: the spill is written in a thread, and on a
    loaded box a tight loop outruns it (in production the queue is 50,000 and half of it is headroom)."""
    if sink.queued >= queue - 10:
        await until(lambda: sink.queued < queue // 2)


class Outage:
    """Wraps the real store's writer: while `down`, every write fails as a lost connection would."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.down = False
        self.calls = 0

    async def write_batch(self, records: Sequence[RequestRecord], replay: bool = False) -> int:
        self.calls += 1
        if self.down:
            raise ConnectionRefusedError("connection refused")
        return await self.store.usage.write_batch(records, replay=replay)


async def test_one_absurd_figure_does_not_sink_its_batch(store: Store) -> None:
    sink = LogSink(store.usage.write_batch, flush_interval=60)
    for n in range(29):
        sink.put_nowait(record(n))
    sink.put_nowait(record(99, prompt_tokens=int(1e300), cost=float("inf")))
    await sink.close()
    assert await counts(store) == (30, 30, 30)
    async with store.engine.connect() as conn:
        bad = (
            await conn.execute(
                text(
                    "SELECT prompt_tokens, cost, usage_clamped FROM request_logs WHERE request_id = 'req-99'"
                )
            )
        ).one()
        flagged = (await conn.execute(text("SELECT count(*) FROM request_logs WHERE usage_clamped"))).scalar()
    assert bad[0] == MAX_COUNT and bad[2] and flagged == 1
    assert sink.clamped == 1 and sink.dropped == 0


async def test_a_record_the_store_refuses_is_isolated_and_written_repaired(pg_url: str) -> None:
    """PostgreSQL refuses NUL in text (a raw body can carry one): only that record is repaired."""
    store = await Store.open(pg_url)
    try:
        sink = LogSink(store.usage.write_batch, flush_interval=60)
        for n in range(30):
            sink.put_nowait(record(n, request_body="a\x00b" if n == 17 else "{}"))
        await sink.close()
        assert await counts(store) == (30, 30, 30)
        async with store.engine.connect() as conn:
            bodies = dict(
                (await conn.execute(text("SELECT request_id, request_body FROM request_logs"))).all()
            )
        assert bodies["req-17"] is None and bodies["req-16"] == "{}"
        assert sink.repaired == 1 and sink.dropped == 0
    finally:
        await store.close()


async def test_a_record_refused_even_repaired_is_dropped_and_counted_alone() -> None:
    written: list[RequestRecord] = []

    async def picky(records: Sequence[RequestRecord], replay: bool = False) -> None:
        if any(r.request_id == "req-7" for r in records):
            raise ValueError("cannot encode")
        written.extend(records)

    drops: list[int] = []
    sink = LogSink(picky, flush_interval=60, on_drop=drops.append)
    for n in range(30):
        sink.put_nowait(record(n))
    await sink.close()
    assert sorted(r.request_id for r in written) == sorted(f"req-{n}" for n in range(30) if n != 7)
    assert sink.dropped == 1 and drops == [1]


async def test_a_store_outage_loses_nothing_and_counts_nothing_twice(store: Store) -> None:
    outage = Outage(store)
    sink = LogSink(outage.write_batch, flush_interval=0.02, retry_backoff=0.02, max_backoff=0.1)
    sink.start()
    outage.down = True
    for n in range(200):
        sink.put_nowait(record(n))
        if n % 20 == 0:
            await asyncio.sleep(0.05)
    await until(lambda: outage.calls >= 5)
    assert not sink.store_writable
    outage.down = False
    await until(lambda: sink.depth == 0 and sink.store_writable)
    await sink.close()
    assert await counts(store) == (200, 200, 200)
    assert sink.dropped == 0


async def test_a_retried_batch_whose_commit_went_through_is_counted_once(store: Store) -> None:
    """The commit succeeded but its answer was lost: the retry must not log or count it again."""
    calls = 0

    async def lost_answer(records: Sequence[RequestRecord], replay: bool = False) -> None:
        nonlocal calls
        calls += 1
        await store.usage.write_batch(records, replay=replay)
        if calls == 1:
            raise ConnectionResetError("connection reset after commit")

    sink = LogSink(lost_answer, flush_interval=0.02, retry_backoff=0.01)
    sink.start()
    for n in range(40):
        sink.put_nowait(record(n))
    await until(lambda: calls >= 2 and sink.depth == 0)
    await sink.close()
    assert await counts(store) == (40, 40, 40)


async def test_when_memory_fills_during_an_outage_records_spill_and_come_back(
    store: Store, tmp_path: Path
) -> None:
    outage = Outage(store)
    spill = Spill(tmp_path / "spill", max_bytes=10 * 1024 * 1024)
    sink = LogSink(
        outage.write_batch,
        max_queue=100,
        batch_size=20,
        flush_interval=0.02,
        retry_backoff=0.05,
        max_backoff=0.2,
        spill=spill,
    )
    sink.start()
    outage.down = True
    for n in range(1000):  # ten times the queue
        await room(sink)
        assert sink.put_nowait(record(n)), f"record {n} dropped with a spill that has room"
    await until(lambda: sink.spilled >= 900)
    assert list((tmp_path / "spill").glob("spill-*.jsonl")), "nothing was spilled to disk"
    assert sink.depth <= 100
    outage.down = False
    await until(lambda: sink.depth == 0 and sink.spill_pending == 0 and sink.store_writable)
    await sink.close()
    assert await counts(store) == (1000, 1000, 1000)
    assert sink.dropped == 0
    assert not list((tmp_path / "spill").glob("spill-*.jsonl")), "replayed spill files are removed"


async def test_records_are_dropped_only_when_queue_and_spill_are_full(tmp_path: Path) -> None:
    async def down(records: Sequence[RequestRecord], replay: bool = False) -> None:
        raise ConnectionRefusedError("connection refused")

    drops: list[int] = []
    spill = Spill(tmp_path / "spill", max_bytes=20_000)  # ~35 records
    sink = LogSink(
        down,
        max_queue=100,
        batch_size=10,
        flush_interval=0.02,
        retry_backoff=0.05,
        spill=spill,
        on_drop=drops.append,
    )
    sink.start()
    accepted = 0
    for n in range(600):
        accepted += sink.put_nowait(record(n))
        if n % 10 == 0:
            await asyncio.sleep(0.005)
    await sink.close(timeout=2)
    assert sink.spilled > 0 and sink.dropped > 0
    assert sink.spilled + sink.dropped == 600, "every record is either spilled or counted as dropped"
    assert sum(drops) == sink.dropped
    assert spill.used_bytes() <= 20_000


async def test_close_with_the_store_down_spills_and_the_next_start_replays_it_once(
    store: Store, tmp_path: Path
) -> None:
    outage = Outage(store)
    outage.down = True
    first = LogSink(outage.write_batch, flush_interval=60, spill=Spill(tmp_path / "spill", 10**7))
    first.start()
    for n in range(120):
        first.put_nowait(record(n))
    await first.close(timeout=5)
    assert first.dropped == 0 and first.spilled == 120
    files = list((tmp_path / "spill").glob("spill-*.jsonl"))
    copies = [shutil.copy(f, tmp_path / f.name) for f in files]

    second = LogSink(store.usage.write_batch, flush_interval=60, spill=Spill(tmp_path / "spill", 10**7))
    second.start()
    assert await second.recover() == 120
    await second.close()
    assert await counts(store) == (120, 120, 120)

    for copy in copies:  # a crash after the write-back but before the file was removed
        shutil.copy(copy, tmp_path / "spill" / Path(copy).name)
    third = LogSink(store.usage.write_batch, flush_interval=60, spill=Spill(tmp_path / "spill", 10**7))
    third.start()
    await third.recover()
    await third.close()
    assert await counts(store) == (120, 120, 120), "a spill replayed twice was counted twice"


async def test_a_torn_last_line_in_a_spill_file_is_skipped_and_the_rest_replayed(
    store: Store, tmp_path: Path
) -> None:
    spill = Spill(tmp_path / "spill", 10**7)
    records = [record(n, record_id=f"id-{n}") for n in range(10)]
    assert spill.append(records) == 10
    spill.seal()
    path = next((tmp_path / "spill").glob("spill-*.jsonl"))
    with path.open("ab") as f:
        f.write(b'{"request_id": "half')  # the process died mid-append
    sink = LogSink(store.usage.write_batch, flush_interval=60, spill=Spill(tmp_path / "spill", 10**7))
    sink.start()
    assert await sink.recover() == 10
    await sink.close()
    assert await counts(store) == (10, 10, 10)


def test_bound_clamps_every_figure_and_flags_the_record() -> None:
    r = record(1, prompt_tokens=int(1e300), completion_tokens=-5, cached_tokens=1e300, cost=float("nan"))
    r.latency_ms = float("inf")
    assert bound(r)
    assert (r.prompt_tokens, r.completion_tokens, r.cached_tokens) == (MAX_COUNT, 0, MAX_COUNT)
    assert r.cost == 0.0 and r.latency_ms == 1e15 and r.usage_clamped
    fine = record(2)
    assert not bound(fine) and not fine.usage_clamped


def test_connection_failures_are_not_blamed_on_records() -> None:
    from sqlalchemy.exc import OperationalError

    assert not is_record_fault(ConnectionRefusedError())
    assert not is_record_fault(OSError(28, "No space left on device"))
    assert not is_record_fault(OperationalError("INSERT", {}, Exception("database or disk is full")))
    assert is_record_fault(OverflowError("Python int too large to convert to SQLite INTEGER"))


def test_usage_parsing_caps_absurd_figures_before_limits_and_metrics_see_them() -> None:
    from sluicegate.metering.usage import MAX_TOKENS, usage_from_mapping

    usage = usage_from_mapping({"prompt_tokens": 1e300, "completion_tokens": float("inf"), "total_tokens": 1})
    assert usage is not None
    assert (usage.prompt_tokens, usage.completion_tokens) == (MAX_TOKENS, MAX_TOKENS)
    huge = usage_from_mapping({"prompt_tokens": 10**30, "completion_tokens": 3})
    assert huge is not None and huge.prompt_tokens == MAX_TOKENS
    record_at_the_cap = record(1, prompt_tokens=MAX_TOKENS)
    assert bound(record_at_the_cap) and record_at_the_cap.usage_clamped, "a capped figure is not flagged"


def test_a_spill_file_still_being_appended_is_not_claimed_but_a_sealed_one_is(tmp_path: Path) -> None:
    writer, replayer = Spill(tmp_path / "spill", 10**7), Spill(tmp_path / "spill", 10**7)
    assert writer.append([record(n, record_id=f"id-{n}") for n in range(3)]) == 3
    assert replayer.claim() == [], "a file another process holds open was claimed"
    writer.seal()
    (claimed,) = replayer.claim()
    assert claimed.records == 3
    assert writer.claim() == [], "two replayers claimed the same file"
    replayer.close()


def test_workers_starting_together_replay_one_at_a_time(tmp_path: Path) -> None:
    first, second = Spill(tmp_path / "spill", 10**7), Spill(tmp_path / "spill", 10**7)
    held = first.recovery_lock(timeout=1)
    assert held is not None
    started = time.monotonic()
    assert second.recovery_lock(timeout=0.3) is None, "two workers replayed at once"
    assert time.monotonic() - started >= 0.3  # it waited for its turn
    os.close(held)
    again = second.recovery_lock(timeout=1)
    assert again is not None
    os.close(again)


async def test_a_hung_write_moves_the_queue_to_the_spill_even_when_a_batch_is_half_the_queue(
    store: Store, tmp_path: Path
) -> None:
    release = asyncio.Event()

    async def stuck_then_fine(records: Sequence[RequestRecord], replay: bool = False) -> int:
        await release.wait()  # a locked table: the write neither fails nor returns
        return await store.usage.write_batch(records, replay=replay)

    sink = LogSink(
        stuck_then_fine, max_queue=100, batch_size=50, flush_interval=0.02, spill=Spill(tmp_path / "s", 10**7)
    )
    sink.start()
    for n in range(300):
        await room(sink)
        assert sink.put_nowait(record(n)), f"record {n} dropped while the spill had room"
    assert sink.spilled > 0
    release.set()
    await until(lambda: sink.depth == 0 and sink.spill_pending == 0)
    await sink.close()
    assert await counts(store) == (300, 300, 300)


def test_a_spill_on_a_full_disk_refuses_cleanly_and_leaves_no_half_record(tmp_path: Path) -> None:
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(disk)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        spill = Spill(disk / "spill", max_bytes=10**9)  # the cap is not what stops it: the disk is
        stored = 0
        with pytest.raises(OSError):
            for n in range(10_000):
                stored += spill.append([record(n, record_id=f"id-{n}", request_body="x" * 500)])
        spill.seal()
        replay = Spill(disk / "spill", max_bytes=10**9)
        (claimed,) = replay.claim()
        assert claimed.records == stored > 0
        read = [r for batch, _ in replay.batches(claimed, 100) for r in batch]
        assert [r.record_id for r in read] == [f"id-{n}" for n in range(stored)]
        assert replay.torn == 0, "a half-written record was left behind"
        replay.close()
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)
