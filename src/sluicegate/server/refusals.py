"""What a refused request is told: the error, its status and code, its rate-limit headers and words.

Why apart from the gate (server/limiting.py): the gate decides, this says; the wording is long and
careful (whose limit it was without naming other keys or upstreams, when to retry, a balance in
money without its internals) and is tested on its own.
"""

from __future__ import annotations

import math

from sluicegate.limits import (
    BALANCE,
    COST,
    INSUFFICIENT_QUOTA,
    TOO_LARGE,
    Quota,
    RateStatus,
    Refusal,
)
from sluicegate.protocol.errors import QuotaExceeded, RateLimited
from sluicegate.server.reservation import budget_refusal_message


def refusal_label(quota: Quota) -> str:
    """The metric label of a refusal: which kind of limit said no (rpm, tpm, budget_usd, ...)."""
    if quota.kind == "concurrency":
        return "concurrency"
    if quota.kind == "budget":
        return "budget_usd" if quota.metric == COST else f"budget_{quota.metric}"
    short = {("requests", "minute"): "rpm", ("requests", "day"): "rpd", ("tokens", "minute"): "tpm"}
    return short.get((quota.metric, quota.period), f"{quota.metric}_per_{quota.period}")


def scope_words(scope: str) -> str:
    """Refusals say whose limit it was without naming other keys or upstreams."""
    kind, _, name = scope.partition(":")
    if kind == "key":
        return "this API key"
    if kind == "model":
        return f"the model '{name}' (all keys together)"
    if kind == "client":
        return "your provider key"
    if kind == "user":
        return "your account"
    if kind == "team":
        return "your team"
    return "the upstream serving this model"


def format_reset(seconds: float) -> str:
    """OpenAI's style: '20ms', '1.5s', '6m0s'."""
    if seconds < 1:
        return f"{max(0, int(seconds * 1000))}ms"
    if seconds < 60:
        return f"{seconds:.3g}s"
    minutes, secs = divmod(math.ceil(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes}m{secs}s"


def rate_headers(requests: RateStatus | None, tokens: RateStatus | None) -> list[tuple[str, str]]:
    h: list[tuple[str, str]] = []
    if requests is not None:
        h += [
            ("x-ratelimit-limit-requests", str(int(requests.limit))),
            ("x-ratelimit-remaining-requests", str(max(0, int(requests.remaining)))),
            ("x-ratelimit-reset-requests", format_reset(requests.reset)),
        ]
    if tokens is not None:
        h += [
            ("x-ratelimit-limit-tokens", str(int(tokens.limit))),
            ("x-ratelimit-remaining-tokens", str(max(0, int(tokens.remaining)))),
            ("x-ratelimit-reset-tokens", format_reset(tokens.reset)),
        ]
    return h


def refusal_error(r: Refusal, currency: str) -> Exception:
    """The error a refusal raises: 429 for a rate or a request too large, 429 insufficient_quota for
    a budget or a balance (OpenAI's shape for both), with the rate-limit and retry-after headers."""
    headers = dict(rate_headers(r.requests, r.tokens))
    if r.retry_after is not None:
        headers["retry-after"] = str(max(1, math.ceil(r.retry_after)))
    what = f"{r.quota.describe().rsplit(' for ', 1)[0]} for {scope_words(r.quota.scope)}"
    if r.reason == INSUFFICIENT_QUOTA and r.quota.metric == BALANCE:
        return QuotaExceeded(balance_words(r, currency), headers=headers)
    if r.reason == INSUFFICIENT_QUOTA:
        return QuotaExceeded(budget_refusal_message(r, scope_words(r.quota.scope)), headers=headers)
    if r.reason == TOO_LARGE:
        return RateLimited(
            f"Request too large: it needs more than the {what} limit of {r.quota.limit:g}. "
            "Lower max_tokens or the prompt size.",
            code="request_too_large",
            headers=headers,
        )
    wait = f" Try again in {r.retry_after:.3g}s." if r.retry_after is not None else ""
    return RateLimited(f"Rate limit reached: {what} is limited to {r.quota.limit:g}.{wait}", headers=headers)


def balance_words(r: Refusal, currency: str) -> str:
    """A balance refusal in money, without the balance's internals (its credited total)."""
    left = max(0.0, r.left or 0.0) / 1e6
    whose = scope_words(r.quota.scope) + "'s balance"
    needed = f" and this request needs at least {r.needed / 1e6:.6f} {currency}" if r.needed else ""
    return (
        f"You exceeded your current quota: {whose} has {left:.6f} {currency} left{needed}. "
        "Top up the balance or redeem a code."
    )
