"""Read-only traffic profile per model for the planner's "should we self-host?" question.

Tokens and cost come from `usage_daily` (the aggregates the log writer keeps, so months of
traffic cost a few hundred rows); the peaks come from `request_logs`, which still holds the
recent requests: the busiest minute's request rate, and the most requests in flight at once
(each request occupies [ts, ts + latency]), streamed in time order. Both queries work on SQLite and PostgreSQL and run
off the request path (the CLI and an admin endpoint call them).
"""

from __future__ import annotations

import heapq
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from sluicegate.store.schema import request_logs, usage_daily

PEAK_WINDOW_S = 60.0  # request rate is the busiest minute's, per second


@dataclass
class ModelTraffic:
    """One model's traffic over the window (the model as the client requested it)."""

    model: str
    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: dict[str, float] = field(default_factory=dict)  # per currency
    first_day: date | None = None
    last_day: date | None = None
    peak_requests_per_s: float = 0.0
    peak_concurrency: int = 0


def _epoch(d: date) -> float:
    return datetime.combine(d, time(0), tzinfo=UTC).timestamp()


async def traffic_by_model(
    engine: AsyncEngine, since: date | None = None, until: date | None = None
) -> dict[str, ModelTraffic]:
    """Tokens, cost and peaks per model for UTC days ``since``..``until`` (inclusive)."""
    out: dict[str, ModelTraffic] = {}
    q = select(
        usage_daily.c.model,
        usage_daily.c.currency,
        func.min(usage_daily.c.day),
        func.max(usage_daily.c.day),
        func.sum(usage_daily.c.requests),
        func.sum(usage_daily.c.prompt_tokens),
        func.sum(usage_daily.c.completion_tokens),
        func.sum(usage_daily.c.cost),
    ).group_by(usage_daily.c.model, usage_daily.c.currency)
    if since is not None:
        q = q.where(usage_daily.c.day >= since)
    if until is not None:
        q = q.where(usage_daily.c.day <= until)
    logs = select(request_logs.c.model_requested, request_logs.c.model_served, request_logs.c.ts).add_columns(
        request_logs.c.latency_ms
    )
    if since is not None:
        logs = logs.where(request_logs.c.ts >= _epoch(since))
    if until is not None:
        logs = logs.where(request_logs.c.ts < _epoch(until) + 86_400)
    async with engine.connect() as conn:
        for model, currency, first, last, reqs, prompt, completion, cost in (await conn.execute(q)).all():
            t = out.setdefault(model, ModelTraffic(model=model))
            t.requests += int(reqs or 0)
            t.prompt_tokens += int(prompt or 0)
            t.completion_tokens += int(completion or 0)
            t.cost[currency] = t.cost.get(currency, 0.0) + float(cost or 0.0)
            first, last = _as_date(first), _as_date(last)
            t.first_day = first if t.first_day is None else min(t.first_day, first)
            t.last_day = last if t.last_day is None else max(t.last_day, last)
        peaks = _Peaks()
        result = await conn.stream(logs.order_by(request_logs.c.ts).execution_options(yield_per=5000))
        async for requested, served, ts, latency_ms in result:
            peaks.add(requested or served or "", ts, latency_ms)
    for model, (rate, concurrency) in peaks.result().items():
        if model in out:
            out[model].peak_requests_per_s, out[model].peak_concurrency = rate, concurrency
    return out


def _as_date(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))


class _Peaks:
    """Busiest-minute rate and most requests in flight per model, from rows in time order.

    Memory is one counter per minute with traffic and one end time per request in flight, so
    a month of log rows streams through without being held."""

    def __init__(self) -> None:
        self._minutes: dict[str, dict[int, int]] = defaultdict(lambda: defaultdict(int))
        self._in_flight: dict[str, list[float]] = defaultdict(list)
        self._peak: dict[str, int] = defaultdict(int)

    def add(self, model: str, ts: float, latency_ms: float | None) -> None:
        self._minutes[model][int(ts // PEAK_WINDOW_S)] += 1
        ends = self._in_flight[model]
        while ends and ends[0] <= ts:  # a request that ended when this one arrived is not in flight
            heapq.heappop(ends)
        heapq.heappush(ends, ts + max(latency_ms or 0.0, 0.0) / 1e3)
        self._peak[model] = max(self._peak[model], len(ends))

    def result(self) -> dict[str, tuple[float, int]]:
        return {m: (max(b.values()) / PEAK_WINDOW_S, self._peak[m]) for m, b in self._minutes.items()}
