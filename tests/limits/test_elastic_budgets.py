"""Elastic demands: a budget with something left admits the request and lowers its units (max_tokens)
to what fits, in the same one call, on both backends alike."""

from __future__ import annotations

import calendar
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sluicegate.limits import (
    INSUFFICIENT_QUOTA,
    Admission,
    Limiter,
    MemoryLimiter,
    Quota,
    Refusal,
    demands_for,
)

NOON = calendar.timegm((2026, 11, 25, 12, 0, 0)) + 0.0

TOKENS_DAY = Quota.budget("key:k1", "tokens", 1000, "day")
USD_DAY = Quota.budget("key:k1", "cost", 0.01, "day")
TPM = Quota.rate("key:k1", "tokens", 100_000, "minute")
RPM = Quota.rate("key:k1", "requests", 100, "minute")


def elastic(
    quotas: list[Quota], prompt: float, max_tokens: int, usd_prompt: float = 0.0, usd_token: float = 0.0
):
    estimate = {"tokens": prompt + max_tokens, "cost": usd_prompt + usd_token * max_tokens}
    return demands_for(quotas, estimate, {"tokens": 1.0, "cost": usd_token}, max_tokens)


async def test_a_fresh_1000_token_budget_admits_a_1024_token_request_clamped_to_what_fits(
    limiter: Limiter,
) -> None:
    result = await limiter.acquire(elastic([TOKENS_DAY], 100, 1024), now=NOON)
    assert isinstance(result, Admission), result
    assert result.granted == 900
    assert [d.amount for d in result.demands] == [1000.0]


async def test_enough_budget_grants_every_unit_asked_and_reserves_the_whole_estimate(
    limiter: Limiter,
) -> None:
    result = await limiter.acquire(elastic([TOKENS_DAY, RPM], 100, 200), now=NOON)
    assert isinstance(result, Admission)
    assert result.granted == 200
    assert [d.amount for d in result.demands] == [300.0, 1.0]


async def test_the_tightest_of_a_token_and_a_money_budget_sets_the_units(limiter: Limiter) -> None:
    # $0.01 at $0.0001 a completion token beside a $0.001 prompt: 90 tokens; tokens alone would allow 900.
    demands = elastic([TOKENS_DAY, USD_DAY], 100, 1024, usd_prompt=0.001, usd_token=0.0001)
    result = await limiter.acquire(demands, now=NOON)
    assert isinstance(result, Admission)
    assert result.granted == 90
    assert result.demands[0].amount == 190.0
    assert result.demands[1].amount == pytest.approx(0.01)


async def test_a_rate_on_the_same_metric_is_charged_the_clamped_amount(limiter: Limiter) -> None:
    result = await limiter.acquire(elastic([TOKENS_DAY, TPM], 100, 1024), now=NOON)
    assert isinstance(result, Admission)
    assert result.tokens is not None
    assert result.tokens.remaining == 100_000 - 1000


async def test_clamped_requests_use_the_budget_to_its_last_unit_then_refuse_saying_what_is_left(
    limiter: Limiter,
) -> None:
    first = await limiter.acquire(elastic([TOKENS_DAY], 100, 500), now=NOON)
    assert isinstance(first, Admission) and first.granted == 500
    second = await limiter.acquire(elastic([TOKENS_DAY], 100, 500), now=NOON)
    assert isinstance(second, Admission) and second.granted == 300
    refusal = await limiter.acquire(elastic([TOKENS_DAY], 100, 500), now=NOON)
    assert isinstance(refusal, Refusal)
    assert refusal.reason == INSUFFICIENT_QUOTA
    assert refusal.left == 0.0
    assert refusal.needed == 101.0  # the prompt and one token: the least it could be given


async def test_a_prompt_larger_than_what_is_left_is_refused_with_the_figures(limiter: Limiter) -> None:
    await limiter.acquire(elastic([TOKENS_DAY], 0, 950), now=NOON)
    refusal = await limiter.acquire(elastic([TOKENS_DAY], 80, 10), now=NOON)
    assert isinstance(refusal, Refusal)
    assert (refusal.left, refusal.needed) == (50.0, 81.0)


async def test_settling_a_clamped_request_corrects_the_clamped_reservation(limiter: Limiter) -> None:
    admission = await limiter.acquire(elastic([TOKENS_DAY], 100, 1024), now=NOON)
    assert isinstance(admission, Admission)
    await limiter.settle(admission, {"tokens": 400.0}, now=NOON)
    again = await limiter.acquire(elastic([TOKENS_DAY], 100, 1024), now=NOON)
    assert isinstance(again, Admission)
    assert again.granted == 500  # 600 left after the 400 used


async def test_a_non_elastic_check_reports_no_units(limiter: Limiter) -> None:
    result = await limiter.acquire(demands_for([TOKENS_DAY], {"tokens": 10.0}), now=NOON)
    assert isinstance(result, Admission)
    assert result.granted == 0


@pytest.mark.parametrize("seed", [7, 8])
async def test_both_backends_clamp_a_random_elastic_workload_alike(seed: int, redis_limiter_factory) -> None:
    memory, redis = MemoryLimiter(), redis_limiter_factory()
    results = []
    for limiter in (memory, redis):
        rng = random.Random(seed)
        log = []
        for _ in range(60):
            demands = elastic(
                [TOKENS_DAY, USD_DAY, TPM],
                rng.randint(0, 60),
                rng.randint(1, 200),
                usd_prompt=rng.random() / 10_000,
                usd_token=rng.random() / 100_000,
            )
            result = await limiter.acquire(demands, now=NOON)
            if isinstance(result, Admission):
                log.append(("admitted", result.granted, [round(d.amount, 9) for d in result.demands]))
                if rng.random() < 0.5:
                    await limiter.settle(result, {"tokens": rng.randint(0, 100)}, now=NOON)
            else:
                log.append(
                    ("refused", result.quota, round(result.left or 0, 9), round(result.needed or 0, 9))
                )
        results.append(log)
    assert results[0] == results[1]
    assert any(entry[0] == "refused" for entry in results[0])


@settings(max_examples=300, deadline=None)
@given(
    spent=st.floats(min_value=0, max_value=2000),
    base=st.floats(min_value=0, max_value=500),
    unit=st.floats(min_value=0.01, max_value=10),
    units=st.integers(min_value=1, max_value=5000),
)
def test_an_admitted_elastic_request_never_reserves_past_the_budget(
    spent: float, base: float, unit: float, units: int
) -> None:
    limiter = MemoryLimiter()
    if spent:
        limiter.acquire_nowait(demands_for([TOKENS_DAY], {"tokens": min(spent, 1000.0)}), now=NOON)
    before = min(spent, 1000.0) if spent else 0.0
    demand = demands_for([TOKENS_DAY], {"tokens": base + unit * units}, {"tokens": unit}, units)
    result = limiter.acquire_nowait(demand, now=NOON)
    if isinstance(result, Admission):
        assert 1 <= result.granted <= units
        assert before + result.demands[0].amount <= 1000.0 + 1e-6
        if result.granted < units:  # lowered: one more unit would not have fitted
            assert before + base + unit * (result.granted + 1) > 1000.0 - 1e-6
    else:
        assert before + base + unit > 1000.0 - 1e-6
