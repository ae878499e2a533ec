"""GCRA (the generic cell rate algorithm) over plain numbers: the rate-limit arithmetic.

State per counter is one float, the *theoretical arrival time* (TAT): the moment the counter is
back to full. Each unit costs an emission interval ``T = period / limit`` seconds; a demand of
`amount` units is admitted at `now` when ``max(tat, now) + amount * T - now <= period``, i.e. when
the counter would not be pushed more than one full period into the future. Burst is the limit.

What "N per period" guarantees under it:
- at most N units at once from a full counter (100 simultaneous requests at 30/min: exactly 30);
- a sustained rate of N per period: after a burst, one unit every ``period / N`` seconds;
- any window of one period admits at most 2N - 1 units (a full burst at its start, then the refill);
  the average over k periods never exceeds (k + 1) N.
It is exact, O(1) in memory (one float), supports variable cost (tokens) and refunds (settle moves
the TAT back, never below `now`). A sliding-window log would be exact per window but O(limit) per
counter; fixed windows allow 2N at a boundary and reset abruptly.

`lua/acquire.lua` and `lua/settle.lua` mirror these functions line for line; change both together.
"""

from __future__ import annotations

import math

# Slack for float rounding: times are epoch seconds (~1.7e9, ulp ~2.4e-7 s), so sums of costs can
# land a few ulps past an exact boundary. 10 microseconds is far below one unit of any sane limit.
EPSILON = 1e-5


def gcra_admit(tat: float, now: float, amount: float, limit: float, period: float) -> float:
    """The new TAT when `amount` fits at `now`, else minus the seconds to wait (-inf: never fits).

    One call on the hot path does the decision and the arithmetic; times are epoch seconds, never
    negative, so the sign of the answer tells admitted from refused.
    """
    base = max(now, tat)
    if amount <= 0.0:
        return base
    if amount > limit:
        return -math.inf
    new = base + amount * period / limit
    wait = new - period - now
    return new if wait <= EPSILON else -wait


def gcra_wait(tat: float, now: float, amount: float, limit: float, period: float) -> float:
    """Seconds until `amount` fits (0.0: it fits now; inf: never, since amount > limit)."""
    answer = gcra_admit(tat, now, amount, limit, period)
    return 0.0 if answer >= 0.0 else -answer


def gcra_adjust(tat: float, now: float, delta: float, limit: float, period: float) -> float:
    """The new TAT after a settle: charge `delta` > 0 extra, refund `delta` < 0.

    A charge may push the TAT beyond one period ahead (the overshoot is paid by waiting); a refund
    never moves it before `now`, since a counter cannot hold more than a full burst.
    """
    if limit <= 0.0:
        return tat
    moved = (max(now, tat)) + delta * period / limit
    return max(now, moved)


def gcra_remaining(tat: float, now: float, limit: float, period: float) -> float:
    """Units that could be taken at `now` (may be fractional; below zero after an overcharge)."""
    if limit <= 0.0:
        return 0.0
    base = max(now, tat)
    return (now + period - base) * limit / period


def gcra_reset(tat: float, now: float) -> float:
    """Seconds until the counter is full again (OpenAI's x-ratelimit-reset-*)."""
    return tat - now if tat > now else 0.0
