"""Quota names in GET /admin/quotas: a key's own limits by their field names, its user's and team's
(tenancy) prefixed, so a user's rpm never hides the key's."""

from __future__ import annotations

from sluicegate.admin.quotas import limit_name
from sluicegate.limits import BALANCE, COST, REQUESTS, Quota


def test_a_keys_own_limits_keep_their_field_names() -> None:
    assert limit_name(Quota.rate("key:k1", REQUESTS, 60, "minute")) == "rpm"
    assert limit_name(Quota.budget("key:k1", COST, 5, "month")) == "budget_usd_month"
    assert limit_name(Quota.concurrency("key:k1", 2)) == "concurrency"


def test_a_users_and_a_teams_limits_are_prefixed() -> None:
    assert limit_name(Quota.rate("user:usr_1", REQUESTS, 60, "minute")) == "user_rpm"
    assert limit_name(Quota.concurrency("team:team_1", 4)) == "team_concurrency"
    assert limit_name(Quota.budget("user:usr_1", BALANCE, 10_000_000, "total")) == "user_budget_balance_total"
