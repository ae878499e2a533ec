"""Calendar budget periods in UTC and the admission rule for reservations."""

from __future__ import annotations

import calendar
import math

from sluicegate.limits.budget import PeriodClock, budget_admits, period_window


def utc(y: int, mo: int, d: int, h: int = 0, mi: int = 0, s: float = 0.0) -> float:
    return calendar.timegm((y, mo, d, h, mi, 0)) + s


def test_a_day_runs_from_utc_midnight_to_the_next() -> None:
    pid, start, end = period_window("day", utc(2026, 11, 25, 23, 59, 59.5))
    assert (pid, start, end) == ("d20261125", utc(2026, 11, 25), utc(2026, 11, 26))


def test_the_first_instant_of_a_day_belongs_to_the_new_day() -> None:
    assert period_window("day", utc(2026, 11, 26))[0] == "d20261126"


def test_a_month_ends_at_the_first_of_the_next_month_across_a_year_end() -> None:
    pid, start, end = period_window("month", utc(2026, 12, 31, 12))
    assert (pid, start, end) == ("m202612", utc(2026, 12, 1), utc(2027, 1, 1))


def test_february_of_a_leap_year_has_29_days() -> None:
    _, start, end = period_window("month", utc(2028, 2, 10))
    assert end - start == 29 * 86400


def test_total_never_ends() -> None:
    assert period_window("total", utc(2026, 1, 1)) == ("total", -math.inf, math.inf)


def test_the_period_clock_moves_to_the_new_day_at_midnight() -> None:
    clock = PeriodClock()
    assert clock.window("day", utc(2026, 11, 25, 23, 59, 59.999))[0] == "d20261125"
    assert clock.window("day", utc(2026, 11, 26))[0] == "d20261126"
    assert clock.window("day", utc(2026, 11, 25, 12))[0] == "d20261125"  # and back, if time does


def test_a_reservation_that_exactly_exhausts_the_budget_is_admitted_despite_float_rounding() -> None:
    assert budget_admits(0.1 + 0.2, 0.7, 1.0)
    assert budget_admits(0.1, 0.2, 0.3)


def test_a_reservation_beyond_the_remaining_budget_is_refused() -> None:
    assert not budget_admits(0.8, 0.3, 1.0)


def test_an_overspent_budget_refuses_even_a_free_request() -> None:
    assert not budget_admits(1.2, 0.0, 1.0)
