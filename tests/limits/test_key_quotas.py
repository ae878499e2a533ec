"""A key record's limits become exactly the quotas it sets."""

from __future__ import annotations

from sluicegate.limits import Quota
from sluicegate.limits.key_quotas import quotas_for_key
from sluicegate.store.records import KeyLimits


def test_a_key_without_limits_has_no_quotas() -> None:
    assert quotas_for_key("k1", KeyLimits()) == ()


def test_each_set_limit_becomes_one_quota_of_the_right_kind_metric_and_period() -> None:
    limits = KeyLimits(
        rpm=60,
        rpd=1000,
        tpm=90_000,
        concurrency=4,
        budget_tokens_month=5_000_000,
        budget_usd_day=2.5,
        budget_usd_total=100.0,
    )
    assert quotas_for_key("k1", limits) == (
        Quota.rate("key:k1", "requests", 60, "minute"),
        Quota.rate("key:k1", "requests", 1000, "day"),
        Quota.rate("key:k1", "tokens", 90_000, "minute"),
        Quota.concurrency("key:k1", 4),
        Quota.budget("key:k1", "tokens", 5_000_000, "month"),
        Quota.budget("key:k1", "cost", 2.5, "day"),
        Quota.budget("key:k1", "cost", 100.0, "total"),
    )


def test_a_zero_limit_is_a_quota_that_refuses_not_an_absent_one() -> None:
    assert quotas_for_key("k1", KeyLimits(rpm=0)) == (Quota.rate("key:k1", "requests", 0, "minute"),)
