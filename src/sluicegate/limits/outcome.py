"""What a check answers: an `Admission` to settle later, or a `Refusal` saying which quota and when.

Both carry the state of the tightest request-rate and token-rate quotas (`RateStatus`) so the HTTP
layer can send OpenAI's ``x-ratelimit-{limit,remaining,reset}-{requests,tokens}`` headers on
success and on refusal alike, without asking the limiter again.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

from sluicegate.limits.quota import BUDGET, CONCURRENCY, REQUESTS, TOKENS, Demand, Quota

# Refusal reasons, named after OpenAI's error codes so the HTTP layer can pass them through.
RATE_LIMITED = "rate_limit_exceeded"  # wait `retry_after` (rates) or for a slot (concurrency)
INSUFFICIENT_QUOTA = "insufficient_quota"  # a budget cannot cover the reservation this period
TOO_LARGE = "request_too_large"  # the demand exceeds the rate limit itself: it never fits


class RateStatus(NamedTuple):
    """One rate quota's state for headers: its limit, what remains, seconds until it is full.

    A NamedTuple (two a request): immutable, and cheaper to make than a frozen dataclass."""

    limit: float
    remaining: float
    reset: float


@dataclass(slots=True)
class Admission:
    """A granted check: hold it and pass it to `settle` or `release` exactly once.

    `periods` holds, per demand, the budget period id it was reserved in ("" for other kinds), so
    a settle after midnight corrects the day that was charged. `lease` names this request's
    concurrency slots. `done` turns True at the first settle/release; later calls do nothing.
    `granted` is how many units the elastic demands were reserved for (0 when none is elastic):
    fewer than asked when a budget had less left, and the caller must then clamp the request to it.
    """

    demands: tuple[Demand, ...]
    periods: tuple[str, ...]
    lease: str
    at: float
    requests: RateStatus | None
    tokens: RateStatus | None
    done: bool = False
    granted: int = 0

    admitted = True


@dataclass(frozen=True, slots=True)
class Refusal:
    """A refused check; nothing was consumed.

    `quota` is the quota that refused (the one needing the longest wait when several did);
    `retry_after` is seconds until a retry could pass, or None when waiting will not help
    (a request larger than the limit, a total budget spent). For a budget refusal, `left` is what the
    budget had left (limit − spent, may be negative after an overshoot) and `needed` the least this
    request asked of it (its fixed part plus one unit when elastic); None for other kinds.
    """

    quota: Quota
    reason: str
    retry_after: float | None
    requests: RateStatus | None
    tokens: RateStatus | None
    left: float | None = None
    needed: float | None = None

    admitted = False


def refusal_terms(
    quota: Quota, rate_wait: float, period_end: float, now: float, concurrency_retry: float
) -> tuple[str, float]:
    """(reason, wait in seconds, inf = never) for a demand that did not fit.

    `rate_wait` is GCRA's wait for rates, `period_end` the end of the budget's period.
    """
    if quota.kind == BUDGET:
        return INSUFFICIENT_QUOTA, period_end - now
    if quota.kind == CONCURRENCY:
        return RATE_LIMITED, concurrency_retry
    if rate_wait == math.inf:
        # a zero limit shuts the scope off: that is a rate limit, not an oversized request
        return (RATE_LIMITED if quota.limit == 0.0 else TOO_LARGE), math.inf
    return RATE_LIMITED, rate_wait


def tighter(current: RateStatus | None, candidate: RateStatus) -> RateStatus:
    """The status with less remaining (the one a client should pace itself by)."""
    if current is None or candidate.remaining < current.remaining:
        return candidate
    return current


def header_metric(metric: str) -> int:
    """0 for requests, 1 for tokens, -1 for metrics without OpenAI headers."""
    return 0 if metric == REQUESTS else 1 if metric == TOKENS else -1
