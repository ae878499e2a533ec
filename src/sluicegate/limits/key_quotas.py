"""Configured limits as the quotas the limiter enforces: a key's (`KeyLimits`), a model's, an upstream's.

Why here: the mapping from a key record's fields to (kind, metric, period) is the limiter's
vocabulary; keeping it next to `Quota` means the policy and server code never spell quota names.
Build once per key (when the key is loaded or changed) and reuse for every request.
"""

from __future__ import annotations

from sluicegate.limits.quota import BALANCE, COST, REQUESTS, TOKENS, Quota
from sluicegate.store.records import KeyLimits


def quotas_for_key(key_id: str, limits: KeyLimits) -> tuple[Quota, ...]:
    """Every limit the key sets, scoped ``key:<id>``; unset (None) limits are absent.

    rpm and tpm are rates per minute, rpd a rate per day (GCRA, refilled continuously), budgets
    are calendar UTC periods, and `budget_usd_*` are `cost` budgets in the accounting currency.
    """
    scope = f"key:{key_id}"
    quotas: list[Quota] = []
    if limits.rpm is not None:
        quotas.append(Quota.rate(scope, REQUESTS, limits.rpm, "minute"))
    if limits.rpd is not None:
        quotas.append(Quota.rate(scope, REQUESTS, limits.rpd, "day"))
    if limits.tpm is not None:
        quotas.append(Quota.rate(scope, TOKENS, limits.tpm, "minute"))
    if limits.concurrency is not None:
        quotas.append(Quota.concurrency(scope, limits.concurrency))
    for metric, period, limit in (
        (TOKENS, "day", limits.budget_tokens_day),
        (TOKENS, "month", limits.budget_tokens_month),
        (TOKENS, "total", limits.budget_tokens_total),
        (COST, "day", limits.budget_usd_day),
        (COST, "month", limits.budget_usd_month),
        (COST, "total", limits.budget_usd_total),
    ):
        if limit is not None:
            quotas.append(Quota.budget(scope, metric, limit, period))
    return tuple(quotas)


def rate_quotas(
    scope: str,
    *,
    rpm: int | None = None,
    rpd: int | None = None,
    tpm: int | None = None,
    concurrency: int | None = None,
) -> list[Quota]:
    """The request, token and concurrency quotas of one scope (key, model, upstream)."""
    q: list[Quota] = []
    if rpm:
        q.append(Quota.rate(scope, REQUESTS, rpm, "minute"))
    if rpd:
        q.append(Quota.rate(scope, REQUESTS, rpd, "day"))
    if tpm:
        q.append(Quota.rate(scope, TOKENS, tpm, "minute"))
    if concurrency:
        q.append(Quota.concurrency(scope, concurrency))
    return q


def quota_flags(quotas: tuple[Quota, ...]) -> tuple[bool, bool, bool, bool]:
    """What a request's reservation depends on in its quotas, worked out once per set of quotas:
    (any counts tokens, money or a balance; any is a budget; any counts money; any is a balance)."""
    return (
        any(q.metric in (TOKENS, COST, BALANCE) for q in quotas),
        any(q.kind == "budget" for q in quotas),
        any(q.metric == COST for q in quotas),
        any(q.metric == BALANCE for q in quotas),
    )
