"""What every limiter backend promises, checked against memory and the real Redis alike.

Times are injected (`now=`) so periods and refills are explicit; the Redis backend then uses the
given time instead of its server clock.
"""

from __future__ import annotations

import asyncio
import calendar

import pytest

from sluicegate.limits import (
    INSUFFICIENT_QUOTA,
    RATE_LIMITED,
    TOO_LARGE,
    Admission,
    Limiter,
    Quota,
    Refusal,
    demands_for,
)

NOON = calendar.timegm((2026, 11, 25, 12, 0, 0)) + 0.0
MIDNIGHT = calendar.timegm((2026, 11, 26, 0, 0, 0)) + 0.0

KEY_RPM = Quota.rate("key:k1", "requests", 30, "minute")
KEY_TPM = Quota.rate("key:k1", "tokens", 1000, "minute")
KEY_DAY_USD = Quota.budget("key:k1", "cost", 1.0, "day")
KEY_SLOTS = Quota.concurrency("key:k1", 2)
MODEL_RPM = Quota.rate("model:m1", "requests", 5, "minute")


async def admit(limiter: Limiter, quotas: list[Quota], now: float = NOON, **estimate: float) -> Admission:
    result = await limiter.acquire(demands_for(quotas, estimate), now=now)
    assert isinstance(result, Admission), result
    return result


async def refuse(limiter: Limiter, quotas: list[Quota], now: float = NOON, **estimate: float) -> Refusal:
    result = await limiter.acquire(demands_for(quotas, estimate), now=now)
    assert isinstance(result, Refusal), result
    return result


async def test_a_hundred_simultaneous_requests_at_30_per_minute_admit_exactly_30(limiter: Limiter) -> None:
    demands = demands_for([KEY_RPM], {})
    results = await asyncio.gather(*(limiter.acquire(demands, now=NOON) for _ in range(100)))
    assert sum(r.admitted for r in results) == 30


async def test_a_refusal_by_the_model_quota_consumes_nothing_of_the_key_quota(limiter: Limiter) -> None:
    for _ in range(5):
        await admit(limiter, [KEY_RPM, MODEL_RPM])
    refusal = await refuse(limiter, [KEY_RPM, MODEL_RPM])
    assert refusal.quota == MODEL_RPM
    for _ in range(25):  # the key still has its 25 requests
        await admit(limiter, [KEY_RPM])
    await refuse(limiter, [KEY_RPM])


async def test_a_rate_refusal_names_the_quota_and_when_to_retry(limiter: Limiter) -> None:
    for _ in range(30):
        await admit(limiter, [KEY_RPM])
    refusal = await refuse(limiter, [KEY_RPM])
    assert (refusal.quota, refusal.reason) == (KEY_RPM, RATE_LIMITED)
    assert refusal.retry_after == pytest.approx(2.0, abs=1e-4)
    await admit(limiter, [KEY_RPM], now=NOON + 2.0)


async def test_the_refusal_reports_the_longest_wait_among_refusing_quotas(limiter: Limiter) -> None:
    slow = Quota.rate("model:m1", "requests", 1, "hour")
    await admit(limiter, [KEY_RPM, slow])
    for _ in range(29):
        await admit(limiter, [KEY_RPM])
    refusal = await refuse(limiter, [KEY_RPM, slow])
    assert refusal.quota == slow
    assert refusal.retry_after == pytest.approx(3600.0, abs=1e-3)


async def test_a_request_larger_than_the_token_rate_is_too_large_for_ever(limiter: Limiter) -> None:
    refusal = await refuse(limiter, [KEY_TPM], tokens=1001)
    assert (refusal.reason, refusal.retry_after) == (TOO_LARGE, None)


async def test_a_zero_rate_limit_refuses_every_request_as_rate_limited_for_ever(limiter: Limiter) -> None:
    shut = Quota.rate("key:k1", "requests", 0, "minute")
    refusal = await refuse(limiter, [shut])
    assert (refusal.reason, refusal.retry_after) == (RATE_LIMITED, None)


async def test_admissions_carry_the_tightest_request_and_token_rates_for_headers(limiter: Limiter) -> None:
    admission = await admit(limiter, [KEY_RPM, MODEL_RPM, KEY_TPM], tokens=250)
    assert admission.requests is not None and admission.tokens is not None
    assert (admission.requests.limit, admission.requests.remaining) == (5, 4)
    assert admission.requests.reset == pytest.approx(12.0, abs=1e-4)
    assert (admission.tokens.limit, admission.tokens.remaining) == (1000, 750)
    assert admission.tokens.reset == pytest.approx(15.0, abs=1e-4)


async def test_refusals_carry_the_rate_state_for_headers_too(limiter: Limiter) -> None:
    for _ in range(5):
        await admit(limiter, [MODEL_RPM])
    refusal = await refuse(limiter, [MODEL_RPM, KEY_TPM], tokens=100)
    assert refusal.requests is not None and refusal.requests.remaining == 0
    assert refusal.tokens is not None and refusal.tokens.remaining == 1000


async def test_settling_below_the_estimate_refunds_the_token_rate(limiter: Limiter) -> None:
    first = await admit(limiter, [KEY_TPM], tokens=800)
    await refuse(limiter, [KEY_TPM], tokens=800)
    await limiter.settle(first, {"tokens": 100}, now=NOON)
    await admit(limiter, [KEY_TPM], tokens=900)


async def test_settling_above_the_estimate_charges_the_difference(limiter: Limiter) -> None:
    first = await admit(limiter, [KEY_TPM], tokens=100)
    await limiter.settle(first, {"tokens": 1500}, now=NOON)
    refusal = await refuse(limiter, [KEY_TPM], tokens=1)
    assert refusal.retry_after == pytest.approx(30.06, abs=1e-3)  # 501 tokens at 1000/min


async def test_a_reservation_beyond_the_remaining_budget_is_insufficient_quota_until_midnight(
    limiter: Limiter,
) -> None:
    await admit(limiter, [KEY_DAY_USD], cost=0.7)
    refusal = await refuse(limiter, [KEY_DAY_USD], cost=0.4)
    assert (refusal.quota, refusal.reason) == (KEY_DAY_USD, INSUFFICIENT_QUOTA)
    assert refusal.retry_after == pytest.approx(12 * 3600.0)
    await admit(limiter, [KEY_DAY_USD], cost=0.3)


async def test_an_overshoot_is_charged_and_refuses_later_requests(limiter: Limiter) -> None:
    admission = await admit(limiter, [KEY_DAY_USD], cost=0.9)
    await limiter.settle(admission, {"cost": 1.25}, now=NOON)
    refusal = await refuse(limiter, [KEY_DAY_USD], cost=0.0)
    assert refusal.reason == INSUFFICIENT_QUOTA


async def test_a_total_budget_spent_is_refused_with_no_retry(limiter: Limiter) -> None:
    total = Quota.budget("key:k1", "tokens", 1000, "total")
    await admit(limiter, [total], tokens=1000)
    refusal = await refuse(limiter, [total], tokens=1)
    assert (refusal.reason, refusal.retry_after) == (INSUFFICIENT_QUOTA, None)


async def test_a_day_budget_starts_again_at_utc_midnight(limiter: Limiter) -> None:
    await admit(limiter, [KEY_DAY_USD], cost=1.0)
    await refuse(limiter, [KEY_DAY_USD], cost=0.1, now=MIDNIGHT - 0.001)
    await admit(limiter, [KEY_DAY_USD], cost=1.0, now=MIDNIGHT)


async def test_a_month_budget_starts_again_on_the_first(limiter: Limiter) -> None:
    month = Quota.budget("key:k1", "tokens", 100, "month")
    await admit(limiter, [month], tokens=100)
    await refuse(limiter, [month], tokens=1, now=NOON + 4 * 86400)  # 29 November
    await admit(limiter, [month], tokens=100, now=calendar.timegm((2026, 12, 1, 0, 0, 0)))


async def test_a_settle_after_midnight_does_not_touch_the_new_day(limiter: Limiter) -> None:
    late = await admit(limiter, [KEY_DAY_USD], cost=0.5, now=MIDNIGHT - 1)
    await limiter.settle(late, {"cost": 0.9}, now=MIDNIGHT + 1)
    await admit(limiter, [KEY_DAY_USD], cost=1.0, now=MIDNIGHT + 2)


async def test_release_refunds_tokens_and_money_but_counts_the_request(limiter: Limiter) -> None:
    one_rpm = Quota.rate("key:k1", "requests", 1, "minute")
    admission = await admit(limiter, [one_rpm, KEY_TPM, KEY_DAY_USD], tokens=1000, cost=1.0)
    await limiter.release(admission, now=NOON)
    await admit(limiter, [KEY_TPM, KEY_DAY_USD], tokens=1000, cost=1.0)
    await refuse(limiter, [one_rpm])


async def test_a_metric_missing_from_the_settle_keeps_its_reservation(limiter: Limiter) -> None:
    admission = await admit(limiter, [KEY_TPM, KEY_DAY_USD], tokens=600, cost=0.6)
    await limiter.settle(admission, {"tokens": 600}, now=NOON)
    await refuse(limiter, [KEY_DAY_USD], cost=0.5)


async def test_a_second_settle_of_the_same_admission_does_nothing(limiter: Limiter) -> None:
    admission = await admit(limiter, [KEY_TPM, KEY_SLOTS], tokens=600)
    await limiter.settle(admission, {"tokens": 0}, now=NOON)
    await limiter.settle(admission, {"tokens": 0}, now=NOON)
    await limiter.release(admission, now=NOON)
    await admit(limiter, [KEY_SLOTS])
    await admit(limiter, [KEY_SLOTS])
    await refuse(limiter, [KEY_SLOTS])


async def test_a_concurrency_slot_is_held_until_settle(limiter: Limiter) -> None:
    first = await admit(limiter, [KEY_SLOTS])
    await admit(limiter, [KEY_SLOTS])
    refusal = await refuse(limiter, [KEY_SLOTS])
    assert (refusal.quota, refusal.reason) == (KEY_SLOTS, RATE_LIMITED)
    await limiter.settle(first, {}, now=NOON)
    await admit(limiter, [KEY_SLOTS])


async def test_a_refused_request_takes_no_concurrency_slot(limiter: Limiter) -> None:
    await refuse(limiter, [KEY_SLOTS, KEY_TPM], tokens=5000)
    await admit(limiter, [KEY_SLOTS])
    await admit(limiter, [KEY_SLOTS])


async def test_seed_sets_what_was_spent_before_a_restart(limiter: Limiter) -> None:
    await limiter.seed(KEY_DAY_USD, 0.8, now=NOON)
    await refuse(limiter, [KEY_DAY_USD], cost=0.3)
    await admit(limiter, [KEY_DAY_USD], cost=0.2)


async def test_seed_does_not_overwrite_a_budget_already_counting(limiter: Limiter) -> None:
    await admit(limiter, [KEY_DAY_USD], cost=0.9)
    await limiter.seed(KEY_DAY_USD, 0.0, now=NOON)
    await refuse(limiter, [KEY_DAY_USD], cost=0.2)


async def test_a_seed_applies_to_its_period_only(limiter: Limiter) -> None:
    await limiter.seed(KEY_DAY_USD, 1.0, now=NOON)
    await admit(limiter, [KEY_DAY_USD], cost=1.0, now=MIDNIGHT)


async def test_seeding_a_rate_is_an_error(limiter: Limiter) -> None:
    with pytest.raises(ValueError):
        await limiter.seed(KEY_RPM, 3, now=NOON)
