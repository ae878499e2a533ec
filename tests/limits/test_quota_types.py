"""Quota construction: invalid quotas fail at configuration time, not on the request path."""

from __future__ import annotations

import pytest

from sluicegate.limits import Demand, Quota, demands_for


def test_a_rate_needs_a_rate_period() -> None:
    with pytest.raises(ValueError, match="rate period"):
        Quota.rate("key:a", "requests", 10, "month")


def test_a_budget_needs_a_calendar_period() -> None:
    with pytest.raises(ValueError, match="budget period"):
        Quota.budget("key:a", "cost", 10, "minute")


@pytest.mark.parametrize("limit", [-1, float("nan"), float("inf")])
def test_a_limit_must_be_finite_and_not_negative(limit: float) -> None:
    with pytest.raises(ValueError, match="limit"):
        Quota.rate("key:a", "requests", limit)


def test_quotas_differing_in_kind_metric_or_period_have_distinct_storage_keys() -> None:
    quotas = [
        Quota.rate("key:a", "requests", 10, "minute"),
        Quota.rate("key:a", "requests", 1000, "day"),
        Quota.rate("key:a", "tokens", 10, "minute"),
        Quota.budget("key:a", "tokens", 10, "day"),
        Quota.concurrency("key:a", 2),
        Quota.rate("model:a", "requests", 10, "minute"),
    ]
    assert len({q.key for q in quotas}) == len(quotas)


def test_equal_quotas_are_interchangeable() -> None:
    assert Quota.rate("key:a", "tokens", 5) == Quota.rate("key:a", "tokens", 5.0)
    assert hash(Quota.rate("key:a", "tokens", 5)) == hash(Quota.rate("key:a", "tokens", 5.0))


def test_demands_take_each_quotas_metric_from_the_estimate() -> None:
    rpm, tpm = Quota.rate("key:a", "requests", 10), Quota.rate("key:a", "tokens", 1000)
    usd, slots = Quota.budget("key:a", "cost", 5, "month"), Quota.concurrency("key:a", 2)
    assert demands_for([rpm, tpm, usd, slots], {"tokens": 300, "cost": 0.02}) == (
        Demand(rpm, 1.0),
        Demand(tpm, 300.0),
        Demand(usd, 0.02),
        Demand(slots, 1.0),
    )


def test_a_quota_describes_itself_for_error_messages() -> None:
    assert Quota.rate("key:k1", "requests", 10).describe() == "requests per minute for key:k1"
    assert Quota.budget("key:k1", "cost", 10, "month").describe() == "cost budget per UTC month for key:k1"
    assert Quota.concurrency("key:k1", 3).describe() == "concurrent requests for key:k1"
