"""`Limiter.peek`: what each quota holds now, read without changing it, the same on memory and Redis.

It feeds the admin API's per-key report (rate use, budgets spent, requests in flight); a peek that
consumed or refunded anything would change the limits it reports on.
"""

from __future__ import annotations

import calendar

import pytest

from sluicegate.limits import Admission, Limiter, Quota, demands_for

NOON = calendar.timegm((2026, 11, 25, 12, 0, 0)) + 0.0
NEXT_DAY = calendar.timegm((2026, 11, 26, 0, 0, 1)) + 0.0

RPM = Quota.rate("key:p1", "requests", 30, "minute")
TPM = Quota.rate("key:p1", "tokens", 1000, "minute")
DAY_USD = Quota.budget("key:p1", "cost", 1.0, "day")
SLOTS = Quota.concurrency("key:p1", 3)
ALL = [RPM, TPM, DAY_USD, SLOTS]


async def admit(limiter: Limiter, now: float = NOON, **estimate: float) -> Admission:
    result = await limiter.acquire(demands_for(ALL, estimate), now=now)
    assert isinstance(result, Admission), result
    return result


async def test_an_unused_key_holds_nothing(limiter: Limiter) -> None:
    assert await limiter.peek(ALL, now=NOON) == [0.0, 0.0, 0.0, 0.0]


async def test_peek_reports_rate_use_budget_spent_and_requests_in_flight(limiter: Limiter) -> None:
    await admit(limiter, tokens=200, cost=0.25)
    await admit(limiter, tokens=100, cost=0.5)
    requests, tokens, spent, in_flight = await limiter.peek(ALL, now=NOON)
    assert requests == pytest.approx(2)
    assert tokens == pytest.approx(300)
    assert spent == pytest.approx(0.75)
    assert in_flight == 2


async def test_a_settled_request_leaves_its_real_usage_and_frees_its_slot(limiter: Limiter) -> None:
    adm = await admit(limiter, tokens=500, cost=0.5)
    await limiter.settle(adm, {"tokens": 120, "cost": 0.1}, now=NOON)
    _, tokens, spent, in_flight = await limiter.peek(ALL, now=NOON)
    assert tokens == pytest.approx(120)
    assert spent == pytest.approx(0.1)
    assert in_flight == 0


async def test_rates_refill_and_a_new_day_starts_its_budget_at_zero(limiter: Limiter) -> None:
    await admit(limiter, tokens=600, cost=0.5)
    # 30 a minute refill one request every 2 s; 1000 tokens a minute refill 500 in 30 s.
    assert (await limiter.peek([RPM], now=NOON + 1))[0] == pytest.approx(0.5, abs=1e-6)
    assert (await limiter.peek([TPM], now=NOON + 30))[0] == pytest.approx(100, abs=1e-3)
    assert (await limiter.peek([DAY_USD], now=NEXT_DAY)) == [0.0]


async def test_peeking_changes_nothing(limiter: Limiter) -> None:
    await admit(limiter, tokens=10, cost=0.01)
    first = await limiter.peek(ALL, now=NOON)
    for _ in range(3):
        assert await limiter.peek(ALL, now=NOON) == first
    # 29 more requests fit in the minute: the peeks took none of them.
    for _ in range(29):
        assert isinstance(await limiter.acquire(demands_for([RPM], {}), now=NOON), Admission)
