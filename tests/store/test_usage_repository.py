"""UsageRepository on SQLite and PostgreSQL: log batches, daily aggregates, reports, retention."""

from __future__ import annotations

import asyncio
import dataclasses
from collections import defaultdict
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

import pytest
from sqlalchemy import select

from sluicegate.store import Store
from sluicegate.store.records import RequestRecord
from sluicegate.store.schema import usage_daily

if TYPE_CHECKING:
    from conftest import Clock

DAY = 86400
NOV_1 = datetime(2026, 11, 1, 12, tzinfo=UTC).timestamp()


def record(n: int, **fields: Any) -> RequestRecord:
    """A logged request with distinct, easily summed numbers."""
    values: dict[str, Any] = dict(
        request_id=f"req-{n}", ts=NOV_1, key_id="key_a", key_name="alpha", endpoint="/v1/chat/completions",
        model_requested="gpt-4o", model_served="gpt-4o-2024-08-06", upstream="openai", channel="main",
        status=200, prompt_tokens=100 + n, completion_tokens=10 + n, cached_tokens=n, reasoning_tokens=2 * n,
        cost=0.0013 * n, latency_ms=12.5, client_ip="10.0.0.1",
    )  # fmt: skip
    values.update(fields)
    return RequestRecord(**values)


def varied_records() -> list[RequestRecord]:
    """Sixty requests over three keys (one anonymous), three models, three days, two currencies."""
    keys = [("key_a", "alpha"), ("key_b", "beta"), (None, None)]
    models = ["gpt-4o", "qwen-max", "deepseek-chat"]
    return [
        record(
            n, key_id=keys[n % 3][0], key_name=keys[n % 3][1], model_requested=models[n % 5 % 3],
            ts=NOV_1 + (n % 4) * DAY * 0.9, status=200 if n % 7 else 502, currency="CNY" if n % 6 == 0 else "USD",
        )
        for n in range(60)
    ]  # fmt: skip


def expected_totals(records: list[RequestRecord]) -> dict[tuple[Any, ...], dict[str, Any]]:
    """What usage_daily should hold, summed here in plain Python."""
    totals: dict[tuple[Any, ...], dict[str, Any]] = defaultdict(lambda: defaultdict(int))
    for r in records:
        day = datetime.fromtimestamp(r.ts, UTC).date().isoformat()
        row = totals[(day, r.key_id, r.model_requested, r.currency)]
        row["requests"] += 1
        row["errors"] += r.status >= 400
        for name in ("prompt_tokens", "completion_tokens", "cached_tokens", "reasoning_tokens", "cost"):
            row[name] += getattr(r, name)
    return totals


async def test_a_batch_is_logged_record_for_record(store: Store) -> None:
    batch = [
        record(1),
        record(2, key_id=None, key_name=None, stream=True, ttft_ms=80.0, usage_estimated=True),
    ]
    await store.usage.write_batch(batch)
    assert [entry.record for entry in await store.usage.tail(10)] == batch


async def test_aggregates_equal_the_sum_of_the_records_to_the_token_and_cent(store: Store) -> None:
    records = varied_records()
    for start in range(0, len(records), 7):  # several batches adding into the same rows
        await store.usage.write_batch(records[start : start + 7])
    expected = expected_totals(records)
    async with store.engine.connect() as conn:
        rows = (await conn.execute(select(usage_daily))).mappings().all()
    assert len(rows) == len(expected)
    for row in rows:
        want = expected[(row["day"].isoformat() if isinstance(row["day"], date) else row["day"],
                         row["key_id"] or None, row["model"], row["currency"])]  # fmt: skip
        for name in (
            "requests",
            "errors",
            "prompt_tokens",
            "completion_tokens",
            "cached_tokens",
            "reasoning_tokens",
        ):
            assert row[name] == want[name], name
        assert row["cost"] == pytest.approx(want["cost"], abs=1e-9)


async def test_usage_by_key_sums_every_model_and_day(store: Store) -> None:
    records = varied_records()
    await store.usage.write_batch(records)
    rows = {(r["key_id"], r["currency"]): r for r in await store.usage.query(by="key")}
    alpha_usd = [r for r in records if r.key_id == "key_a" and r.currency == "USD"]
    row = rows[("key_a", "USD")]
    assert row["key_name"] == "alpha"
    assert row["model"] is None
    assert row["requests"] == len(alpha_usd)
    assert row["prompt_tokens"] == sum(r.prompt_tokens for r in alpha_usd)
    assert row["completion_tokens"] == sum(r.completion_tokens for r in alpha_usd)
    assert round(row["cost"], 2) == round(sum(r.cost for r in alpha_usd), 2)
    assert (None, "USD") in rows  # requests without a key are reported, not dropped


async def test_usage_by_model_folds_keys_away(store: Store) -> None:
    records = varied_records()
    await store.usage.write_batch(records)
    rows = await store.usage.query(by="model")
    assert {(r["model"], r["currency"]) for r in rows} == {(r.model_requested, r.currency) for r in records}
    assert all(r["key_id"] is None and r["key_name"] is None for r in rows)
    assert sum(r["requests"] for r in rows) == len(records)


async def test_usage_by_day_is_in_day_order(store: Store) -> None:
    await store.usage.write_batch(varied_records())
    rows = await store.usage.query(by="day")
    assert [r["day"] for r in rows if r["currency"] == "USD"] == [
        "2026-11-01",
        "2026-11-02",
        "2026-11-03",
        "2026-11-04",
    ]


async def test_usage_without_grouping_is_per_key_and_model(store: Store) -> None:
    records = varied_records()
    await store.usage.write_batch(records)
    rows = await store.usage.query()
    assert {(r["key_id"], r["model"], r["currency"]) for r in rows} == {
        (r.key_id, r.model_requested, r.currency) for r in records
    }


async def test_usage_filters_by_day_range_key_and_model(store: Store) -> None:
    records = varied_records()
    await store.usage.write_batch(records)
    rows = await store.usage.query(
        since=date(2026, 11, 2), until=date(2026, 11, 3), key_id="key_b", model="qwen-max"
    )
    chosen = [
        r for r in records
        if r.key_id == "key_b" and r.model_requested == "qwen-max"
        and "2026-11-02" <= datetime.fromtimestamp(r.ts, UTC).date().isoformat() <= "2026-11-03"
    ]  # fmt: skip
    assert sum(r["requests"] for r in rows) == len(chosen) > 0
    assert sum(r["prompt_tokens"] for r in rows) == sum(r.prompt_tokens for r in chosen)


async def test_errors_count_responses_of_400_and_above(store: Store) -> None:
    await store.usage.write_batch([record(1, status=200), record(2, status=429), record(3, status=502)])
    (row,) = await store.usage.query()
    assert (row["requests"], row["errors"]) == (3, 2)


async def test_a_refused_request_is_counted_in_its_groups_priced_row_not_a_row_of_its_own(
    store: Store,
) -> None:
    """A 429 has no price (currency ""): it used to make a second, unlabelled row for the same key/model/day."""
    await store.usage.write_batch(
        [
            record(1, cost=0.25),
            record(2, cost=0.5),
            record(3, status=429, cost=0.0, currency="", prompt_tokens=0),
        ]
    )
    (row,) = await store.usage.query()
    assert (row["currency"], row["requests"], row["errors"]) == ("USD", 3, 1)
    assert row["cost"] == pytest.approx(0.75)
    assert row["prompt_tokens"] == 101 + 102


async def test_a_group_with_no_priced_request_keeps_its_row_unlabelled(store: Store) -> None:
    await store.usage.write_batch([record(1), record(2, model_requested="local", currency="", cost=0.0)])
    rows = {r["model"]: r for r in await store.usage.query()}
    assert rows["local"]["currency"] == "" and rows["local"]["requests"] == 1
    assert rows["gpt-4o"]["currency"] == "USD" and rows["gpt-4o"]["requests"] == 1


async def test_unpriced_requests_fold_per_day_when_grouped_by_day(store: Store) -> None:
    await store.usage.write_batch(
        [
            record(1),
            record(2, currency="", cost=0.0, status=502),
            record(3, ts=NOV_1 + DAY, currency="", cost=0.0),
        ]
    )
    rows = await store.usage.query(by="day")
    assert [(r["day"], r["currency"], r["requests"]) for r in rows] == [
        ("2026-11-01", "USD", 2),
        ("2026-11-02", "", 1),
    ]


async def test_usage_in_two_currencies_stays_two_rows(store: Store) -> None:
    await store.usage.write_batch(
        [record(1, currency="USD"), record(2, currency="CNY"), record(3, currency="", cost=0.0)]
    )
    rows = await store.usage.query()
    assert sorted(r["currency"] for r in rows) == ["CNY", "USD"]
    assert sum(r["requests"] for r in rows) == 3


async def test_usage_is_counted_under_the_served_model_when_none_was_requested(store: Store) -> None:
    await store.usage.write_batch([record(1, model_requested=None, model_served="gpt-4o-mini")])
    assert [r["model"] for r in await store.usage.query()] == ["gpt-4o-mini"]


async def test_spent_seeds_day_month_and_total_budgets(store: Store) -> None:
    oct_31 = NOV_1 - DAY
    await store.usage.write_batch([
        record(1, ts=oct_31), record(2, ts=NOV_1), record(3, ts=NOV_1 + DAY), record(4, ts=NOV_1 + DAY, currency="CNY"),
        record(5, key_id="key_b"),
    ])  # fmt: skip
    total = await store.usage.spent("key_a")
    month = await store.usage.spent("key_a", since=date(2026, 11, 1))
    day = await store.usage.spent("key_a", since=date(2026, 11, 2))
    tokens = {n: (100 + n) + (10 + n) for n in range(1, 5)}
    assert total.tokens == sum(tokens.values())
    assert month.tokens == tokens[2] + tokens[3] + tokens[4]
    assert day.tokens == tokens[3] + tokens[4]
    assert total.cost["USD"] == pytest.approx(0.0013 * (1 + 2 + 3))
    assert day.cost == pytest.approx({"USD": 0.0013 * 3, "CNY": 0.0013 * 4})


async def test_spent_of_an_unused_key_is_zero(store: Store) -> None:
    spent = await store.usage.spent("key_unused")
    assert (spent.tokens, spent.cost) == (0, {})


async def test_tail_gives_the_last_requests_oldest_first(store: Store) -> None:
    await store.usage.write_batch([record(n) for n in range(5)])
    assert [e.record.request_id for e in await store.usage.tail(3)] == ["req-2", "req-3", "req-4"]


async def test_after_continues_from_the_last_seen_row(store: Store) -> None:
    await store.usage.write_batch([record(n) for n in range(3)])
    last = (await store.usage.tail(1))[0].id
    assert await store.usage.after(last) == []
    await store.usage.write_batch([record(n) for n in range(3, 6)])
    assert [e.record.request_id for e in await store.usage.after(last)] == ["req-3", "req-4", "req-5"]
    assert [e.record.request_id for e in await store.usage.after(last, limit=2)] == ["req-3", "req-4"]


async def test_purge_deletes_old_log_rows_and_keeps_the_aggregates(store: Store, clock: Clock) -> None:
    clock.now = NOV_1 + 40 * DAY
    old = [record(n, ts=NOV_1) for n in range(3)]
    recent = [record(n, ts=clock.now - DAY) for n in range(3, 5)]
    await store.usage.write_batch(old + recent)
    before = await store.usage.query(by="key")
    assert await store.usage.purge_older_than(30) == 3
    assert [e.record for e in await store.usage.tail(10)] == recent
    assert await store.usage.query(by="key") == before


async def test_purge_with_nothing_old_deletes_nothing(store: Store, clock: Clock) -> None:
    clock.now = NOV_1
    await store.usage.write_batch([record(1)])
    assert await store.usage.purge_older_than(30) == 0


async def test_an_empty_batch_writes_nothing(store: Store) -> None:
    await store.usage.write_batch([])
    assert await store.usage.tail(5) == []


async def test_bodies_are_kept_verbatim(store: Store) -> None:
    body = '{"messages":[{"role":"user","content":"héllo ' + "x" * 5000 + '"}]}'
    await store.usage.write_batch([dataclasses.replace(record(1), request_body=body, response_body="{}")])
    (entry,) = await store.usage.tail(1)
    assert (entry.record.request_body, entry.record.response_body) == (body, "{}")


async def test_workers_writing_at_once_lose_nothing(store: Store, db_url: str) -> None:
    async with await Store.open(db_url) as second, await Store.open(db_url) as third:
        writers = [store, second, third]
        await asyncio.gather(*(
            writers[w].usage.write_batch([record(100 * w + b * 10 + i) for i in range(10)])
            for w in range(3) for b in range(5)
        ))  # fmt: skip
    (row,) = await store.usage.query(by="key")
    assert row["requests"] == 150
    assert len(await store.usage.tail(1000)) == 150


async def test_a_batch_the_store_refuses_leaves_nothing_behind_and_reads_as_the_records_fault(
    store: Store,
) -> None:
    """All or nothing: a record the store refuses (a record id already there) fails the whole batch, logs
    and aggregates alike, with the error the log sink bisects on."""
    from sluicegate.metering.bounds import is_record_fault

    await store.usage.write_batch([record(1, record_id="r-1")])
    with pytest.raises(Exception) as refused:
        await store.usage.write_batch([record(2, record_id="r-2"), record(3, record_id="r-1")])
    assert is_record_fault(refused.value)
    assert [e.record.request_id for e in await store.usage.tail(10)] == ["req-1"]
    (row,) = await store.usage.query(by="key")
    assert row["requests"] == 1
