"""The request log across the gateway's life: a SIGTERM under load loses no record (only the
shutdown flush can write them: the flush interval is longer than the test), and retention purges
old rows once the gateway starts.
"""

from __future__ import annotations

import asyncio
import json
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from metering_kit import LogTable, auth, chat, fresh_postgres_database, key_id, metering_config, wait_until
from prometheus_client.parser import text_string_to_metric_families
from support.gateway import http_get, start_gateway
from support.upstream import Upstream

from sluicegate.store.migrate import upgrade

LOAD = 300
REDIS = "redis://127.0.0.1:6379/0"
FLUSH_NEVER = 3600.0  # longer than any test: only the shutdown flush can write the records


@pytest.fixture(scope="module")
def stand_in() -> Iterator[Upstream]:
    with Upstream() as upstream:
        yield upstream


@pytest.fixture(scope="module")
def postgres_module_database() -> Iterator[str]:
    """One migrated PostgreSQL database for the module (creating one costs seconds on a busy box)."""
    with fresh_postgres_database() as url:
        asyncio.run(upgrade(url))
        yield url


@pytest.fixture
def postgres_database(postgres_module_database: str) -> str:
    """The module's PostgreSQL database with an empty request log."""
    LogTable(postgres_module_database).execute("TRUNCATE request_logs, usage_daily RESTART IDENTITY")
    return postgres_module_database


async def _fire(
    url: str, bodies: list[dict[str, Any]], headers: dict[str, str], concurrency: int = 100
) -> list[httpx.Response | BaseException]:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(timeout=30, limits=limits) as client:
        return await asyncio.gather(
            *(client.post(url, json=b, headers=headers) for b in bodies), return_exceptions=True
        )


def _load(n: int) -> list[dict[str, Any]]:
    return [chat(f"load request {i}", stream=i % 3 == 0) for i in range(n)]


@pytest.mark.parametrize("workers", [1, 2])
def test_sigterm_after_a_burst_writes_every_record_before_exit(
    stand_in: Upstream, tmp_path: Path, workers: int
) -> None:
    """Granian's main process passes SIGTERM to its workers; each worker's `__rsgi_del__` closes its
    own log sink, which writes what it queued."""
    database = f"sqlite:///{tmp_path / 'gate.db'}"
    table = LogTable(database)
    # Several workers need Redis for the limited key's counters (the gateway refuses otherwise).
    shared = {"server": {"workers": workers}, "redis": REDIS} if workers > 1 else {}
    gateway = start_gateway(metering_config(stand_in.url, database, flush_interval_s=FLUSH_NEVER, **shared))
    try:
        results = asyncio.run(_fire(f"{gateway.base_url}/chat/completions", _load(LOAD), auth("metrics")))
        completed = [r for r in results if isinstance(r, httpx.Response) and r.status_code == 200]
        assert len(completed) == LOAD, [r for r in results if not isinstance(r, httpx.Response)][:3]
        assert table.count() == 0, "records were written before the flush interval: the test proves nothing"
        code = gateway.stop(signal.SIGTERM, timeout=40)
    finally:
        gateway.stop(signal.SIGKILL)
    logged = {r["request_id"] for r in table.rows("key_id = ?", key_id("metrics"))}
    missing = {r.headers["x-request-id"] for r in completed} - logged
    assert not missing, (
        f"{len(missing)} of {LOAD} completed requests were never logged after SIGTERM (exit code {code})\n"
        f"--- gateway stderr ---\n{gateway.stderr_text()[-3000:]}"
    )
    assert len(logged) == LOAD
    assert code == 0, f"the gateway exited with {code} on SIGTERM\n{gateway.stderr_text()[-2000:]}"


def test_sigterm_during_streams_lets_them_finish_and_logs_them(stand_in: Upstream, tmp_path: Path) -> None:
    database = f"sqlite:///{tmp_path / 'gate.db'}"
    table = LogTable(database)
    gateway = start_gateway(
        metering_config(stand_in.url, database, flush_interval_s=FLUSH_NEVER, server={"shutdown_grace_s": 15})
    )
    stand_in.reset()
    stand_in.behaviour = "slow_stream delay=0.2 chunks=8"
    try:

        async def scenario() -> list[httpx.Response | BaseException]:
            task = asyncio.ensure_future(
                _fire(
                    f"{gateway.base_url}/chat/completions",
                    [chat(f"slow {i}", stream=True) for i in range(40)],
                    auth("metrics"),
                )
            )
            await stand_in.wait_for_async(lambda: len(stand_in.requests) == 40, timeout=15)
            gateway.process.send_signal(signal.SIGTERM)
            return await task

        results = asyncio.run(scenario())
        assert wait_until(lambda: not gateway.running(), timeout=30), "the gateway did not exit after SIGTERM"
    finally:
        stand_in.behaviour = "ok"
        gateway.stop(signal.SIGKILL)
    completed = [
        r
        for r in results
        if isinstance(r, httpx.Response)
        and r.status_code == 200
        and r.text.rstrip().endswith("data: [DONE]")
        and '"finish_reason":"stop"' in r.text
    ]
    assert len(completed) == 40, (
        f"only {len(completed)} of 40 streams in flight at SIGTERM finished within the grace period: "
        f"{[type(r).__name__ for r in results if not isinstance(r, httpx.Response)][:5]}\n"
        f"--- stderr ---\n{gateway.stderr_text()[-2000:]}"
    )
    logged = {r["request_id"] for r in table.rows()}
    missing = {r.headers["x-request-id"] for r in completed} - logged
    assert not missing, f"{len(missing)} streams that finished after SIGTERM were never logged"


def test_a_stream_outliving_the_grace_period_costs_no_other_record(
    stand_in: Upstream, tmp_path: Path
) -> None:
    database = f"sqlite:///{tmp_path / 'gate.db'}"
    table = LogTable(database)
    gateway = start_gateway(
        metering_config(stand_in.url, database, flush_interval_s=FLUSH_NEVER, server={"shutdown_grace_s": 2})
    )
    stand_in.reset()
    try:

        async def scenario() -> list[httpx.Response | BaseException]:
            finished = await _fire(f"{gateway.base_url}/chat/completions", _load(30), auth("metrics"))
            stand_in.behaviour = "slow_stream delay=1 chunks=10"  # 10 s: longer than the grace
            straggler = asyncio.ensure_future(
                _fire(f"{gateway.base_url}/chat/completions", [chat("slow", stream=True)], auth("metrics"))
            )
            await stand_in.wait_for_async(lambda: len(stand_in.requests) == 31, timeout=15)
            gateway.process.send_signal(signal.SIGTERM)
            await straggler
            return finished

        finished = asyncio.run(scenario())
        assert wait_until(lambda: not gateway.running(), timeout=30), "the gateway did not exit after SIGTERM"
    finally:
        stand_in.behaviour = "ok"
        gateway.stop(signal.SIGKILL)
    completed = {
        r.headers["x-request-id"] for r in finished if isinstance(r, httpx.Response) and r.status_code == 200
    }
    assert len(completed) == 30
    missing = completed - {r["request_id"] for r in table.rows()}
    assert not missing, (
        f"{len(missing)} of 30 requests that had finished before SIGTERM were never logged "
        f"because one stream outlived the grace period\n{gateway.stdout_text()[-600:]}"
    )


# -- retention --------------------------------------------------------------------------------------

OLD_ROW = (
    "INSERT INTO request_logs (request_id, ts, key_id, endpoint, status, prompt_tokens, completion_tokens,"
    " usage_estimated, cost, currency, latency_ms, stream) VALUES (?, ?, 'cfg-old', '/v1/chat/completions',"
    " 200, 10, 4, ?, 0.0, 'USD', 1.0, ?)"
)


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_retention_purges_old_rows_when_the_gateway_starts(
    stand_in: Upstream, tmp_path: Path, backend: str, request: pytest.FixtureRequest
) -> None:
    if backend == "postgresql":
        database: str = request.getfixturevalue("postgres_database")
    else:
        database = f"sqlite:///{tmp_path / 'gate.db'}"
        asyncio.run(upgrade(database))
    # Rows 100 and 10 days old, planted before the gateway starts.
    table = LogTable(database)
    now = time.time()
    for i in range(5):
        table.execute(OLD_ROW, f"req_old_{i}", now - 100 * 86400, False, False)
    table.execute(OLD_ROW, "req_recent", now - 10 * 86400, False, False)
    assert table.count("key_id = 'cfg-old'") == 6

    gateway = start_gateway(metering_config(stand_in.url, database, metering={"log_retention_days": 30}))
    try:
        purged = wait_until(lambda: table.count("key_id = 'cfg-old'") == 1, timeout=10)
    finally:
        gateway.stop()
    left = [r["request_id"] for r in table.rows("key_id = 'cfg-old'")]
    assert purged, f"rows 100 days old survived a gateway start with log_retention_days 30: {left}"
    assert left == ["req_recent"]


# -- off the hot path -----------------------------------------------------------------------------------


def _queue_depths(gateway: Any) -> tuple[float, int]:
    """(the /metrics gauge, /readyz's figure) of the log queue."""
    status, body = http_get(gateway.host, gateway.port, "/metrics", timeout=5)
    assert status == 200
    gauge = [
        s.value
        for f in text_string_to_metric_families(body.decode())
        for s in f.samples
        if s.name == "sluicegate_log_queue_depth"
    ]
    _, ready = http_get(gateway.host, gateway.port, "/readyz", timeout=5)
    return gauge[0], json.loads(ready)["log_queue_depth"]


def test_a_locked_log_table_neither_slows_nor_loses_requests(
    stand_in: Upstream, postgres_database: str
) -> None:
    database = postgres_database  # the writer blocks on a PostgreSQL table lock until it is released
    table = LogTable(database)
    gateway = start_gateway(metering_config(stand_in.url, database))
    stand_in.reset()
    try:

        async def scenario() -> tuple[list[float], tuple[float, int]]:
            locker = await asyncpg.connect(database)
            lock = locker.transaction()
            await lock.start()
            await locker.execute("LOCK TABLE request_logs IN ACCESS EXCLUSIVE MODE")
            latencies = []
            # Every request is answered while the table is still locked (a request that waited for
            # the log would wait for the rollback below and time out).
            async with httpx.AsyncClient(timeout=10) as client:
                for i in range(20):
                    if i == 5:
                        await asyncio.sleep(1.0)  # the writer is now stuck on the first batch
                    t0 = time.perf_counter()
                    response = await client.post(
                        f"{gateway.base_url}/chat/completions", json=chat(f"q {i}"), headers=auth("metrics")
                    )
                    latencies.append(time.perf_counter() - t0)
                    assert response.status_code == 200
            await asyncio.sleep(1.0)
            depths = await asyncio.to_thread(_queue_depths, gateway)
            await lock.rollback()
            await locker.close()
            return latencies, depths

        latencies, (gauge, ready) = asyncio.run(scenario())
        logged = wait_until(lambda: table.count() == 20, timeout=10)
    finally:
        gateway.stop()
    assert max(latencies) < 5.0, f"requests waited for the locked log table: {max(latencies):.2f} s"
    assert logged, f"only {table.count()} of 20 records were written once the table was unlocked"
    assert ready >= 10, f"/readyz shows {ready} records waiting while the writer was stuck"
    assert gauge == ready, (
        f"sluicegate_log_queue_depth read {gauge} while /readyz showed {ready} records "
        "waiting: the gauge is only updated after a flush completes"
    )


async def _burst_while_the_log_is_locked(
    gateway: Any, database: str, n: int
) -> list[httpx.Response | BaseException]:
    """`n` requests (20 at a time) while `request_logs` is locked, so every log write hangs."""
    locker = await asyncpg.connect(database)
    lock = locker.transaction()
    await lock.start()
    await locker.execute("LOCK TABLE request_logs IN ACCESS EXCLUSIVE MODE")
    results = await _fire(f"{gateway.base_url}/chat/completions", _load(n), auth("metrics"), concurrency=20)
    await lock.rollback()
    await locker.close()
    return results


def test_a_full_log_queue_drops_records_and_counts_every_one(
    stand_in: Upstream, postgres_database: str
) -> None:
    """With the table locked and the spill off the queue fills (queue_size 100); what does not fit is
    dropped, never blocking a request, and counted: rows written + records dropped = requests answered."""
    database = postgres_database
    table = LogTable(database)
    gateway = start_gateway(
        metering_config(
            stand_in.url, database, metering={"flush_interval_s": 0.2, "queue_size": 100, "spill_max_mb": 0}
        )
    )
    stand_in.reset()
    try:
        results = asyncio.run(_burst_while_the_log_is_locked(gateway, database, 250))
        answered = sum(1 for r in results if isinstance(r, httpx.Response) and r.status_code == 200)
        assert answered == 250, "requests failed while the log table was locked"
        assert wait_until(lambda: _queue_depths(gateway)[1] == 0, timeout=10), "the log queue never emptied"
        _status, body = http_get(gateway.host, gateway.port, "/metrics", timeout=5)
        dropped = next(
            s.value
            for f in text_string_to_metric_families(body.decode())
            for s in f.samples
            if s.name == "sluicegate_log_dropped_total"
        )
        written = table.count()
    finally:
        gateway.stop()
    # One batch (at most the queue) is stuck in the locked write, 100 more fit the queue: 50+ dropped.
    assert dropped > 0, f"250 records fit a queue of 100 while the table was locked? ({written} written)"
    assert written + dropped == 250, f"{written} written + {dropped} counted as dropped != 250 answered"
    assert "request log queue full" in gateway.logs(), "the drops were not logged"


def test_a_hung_log_write_moves_the_queue_to_the_spill_and_loses_nothing(
    stand_in: Upstream, postgres_database: str
) -> None:
    """The same locked table with the spill on (the default): the queue goes to the spill instead of
    overflowing, and once the table is free every answered request is logged exactly once."""
    database = postgres_database
    table = LogTable(database)
    gateway = start_gateway(
        metering_config(stand_in.url, database, metering={"flush_interval_s": 0.2, "queue_size": 100})
    )
    stand_in.reset()
    try:
        results = asyncio.run(_burst_while_the_log_is_locked(gateway, database, 150))
        answered = sum(1 for r in results if isinstance(r, httpx.Response) and r.status_code == 200)
        assert answered == 150, "requests failed while the log table was locked"
        wait_until(lambda: table.count() >= 150, timeout=30)
        written = table.count()
        distinct = len({row["request_id"] for row in table.rows()})
    finally:
        gateway.stop()
    assert "dropped" not in gateway.logs(), "records were dropped with a spill that had room"
    assert written == 150 and distinct == 150, f"{written} rows ({distinct} distinct) for 150 answered"
