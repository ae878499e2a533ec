"""Calendar budgets: which UTC period a moment belongs to, and whether a reservation fits.

A budget counts what was spent in the current UTC day, UTC month, or in total, and starts again
at zero when the period turns. Periods are named by an id ("d20261125", "m202611", "total") that
the backends put in the storage key, so the old period's counter is simply left to expire.

The overspend rule: a demand is admitted only if ``spent + amount <= limit``; the amount is
reserved at once, so concurrent requests cannot together pass the limit at admission. When the
real usage exceeds the reservation, the settle charges it anyway (the work was done): the budget
may then exceed its limit by the overshoot of the requests in flight, and every later request is
refused with ``insufficient_quota`` until the period turns. With reservations that are upper
bounds (prompt estimate + max_tokens) the overshoot is only the prompt estimate's error.
"""

from __future__ import annotations

import calendar
import math
from datetime import UTC, datetime

# Slack for float rounding of money amounts (0.1 + 0.2 must fit a limit of 0.3).
BUDGET_EPSILON = 1e-9


def budget_admits(spent: float, amount: float, limit: float) -> bool:
    """True when reserving `amount` on top of `spent` keeps within `limit`."""
    return spent + amount <= limit + BUDGET_EPSILON


def units_that_fit(spent: float, limit: float, base: float, unit: float) -> int:
    """How many whole units of `unit` fit in the budget beside a fixed `base` (may be <= 0).

    Why: an elastic demand (prompt + max_tokens × price) is clamped to what is left rather than
    refused while something is left. The Lua script computes the same (acquire.lua).
    """
    return math.floor((limit + BUDGET_EPSILON - spent - base) / unit)


def period_window(period: str, now: float) -> tuple[str, float, float]:
    """(id, start, end) of the UTC calendar period holding `now`; "total" spans all time."""
    if period == "total":
        return "total", -float("inf"), float("inf")
    t = datetime.fromtimestamp(now, tz=UTC)
    if period == "day":
        start = calendar.timegm((t.year, t.month, t.day, 0, 0, 0))
        return f"d{t.year:04d}{t.month:02d}{t.day:02d}", float(start), float(start + 86400)
    if period == "month":
        start = calendar.timegm((t.year, t.month, 1, 0, 0, 0))
        year, month = (t.year + 1, 1) if t.month == 12 else (t.year, t.month + 1)
        end = calendar.timegm((year, month, 1, 0, 0, 0))
        return f"m{t.year:04d}{t.month:02d}", float(start), float(end)
    raise ValueError(f"a budget period must be day, month or total, not {period!r}")


class PeriodClock:
    """Caches the current window of each period so the hot path rarely touches `datetime`.

    Why: converting a timestamp to a calendar date costs a microsecond or two; the window only
    changes once a day, so one comparison answers almost every call.
    """

    __slots__ = ("_windows",)

    def __init__(self) -> None:
        self._windows: dict[str, tuple[str, float, float]] = {}

    def window(self, period: str, now: float) -> tuple[str, float, float]:
        """(id, start, end) of the period holding `now`."""
        w = self._windows.get(period)
        if w is None or not (w[1] <= now < w[2]):
            w = period_window(period, now)
            self._windows[period] = w
        return w
