"""GCRA arithmetic, with explicit times: what "N per period" admits and when."""

from __future__ import annotations

import math

from sluicegate.limits.gcra import gcra_adjust, gcra_admit, gcra_remaining, gcra_reset, gcra_wait


def gcra_take(tat: float, now: float, amount: float, limit: float, period: float) -> float:
    new = gcra_admit(tat, now, amount, limit, period)
    assert new >= 0.0, "the test expected this demand to fit"
    return new


T0 = 1_764_000_000.0  # an epoch-sized time, where float rounding is at its worst


def burst(tat: float, now: float, n: int, limit: float, period: float) -> tuple[int, float]:
    """Try `n` single units at one instant; return how many were admitted and the final TAT."""
    admitted = 0
    for _ in range(n):
        if gcra_wait(tat, now, 1, limit, period) == 0.0:
            tat = gcra_take(tat, now, 1, limit, period)
            admitted += 1
    return admitted, tat


def test_a_full_counter_admits_exactly_limit_units_at_one_instant() -> None:
    assert burst(T0, T0, 100, 30, 60)[0] == 30


def test_limits_whose_interval_is_not_a_binary_fraction_are_exact_at_epoch_times() -> None:
    for limit in (3, 7, 11, 13, 29, 30, 97, 1000):
        assert burst(T0, T0 + 0.123456, 3 * limit, limit, 60)[0] == limit


def test_after_a_burst_the_next_unit_waits_one_emission_interval() -> None:
    _, tat = burst(T0, T0, 30, 30, 60)
    assert math.isclose(gcra_wait(tat, T0, 1, 30, 60), 2.0)
    assert gcra_wait(tat, T0 + 2.0, 1, 30, 60) == 0.0


def test_the_sustained_rate_is_one_unit_per_emission_interval() -> None:
    _, tat = burst(T0, T0, 30, 30, 60)
    now, admitted = T0, 0
    for _ in range(60):  # one minute in half-interval steps
        now += 1.0
        if gcra_wait(tat, now, 1, 30, 60) == 0.0:
            tat = gcra_take(tat, now, 1, 30, 60)
            admitted += 1
    assert admitted == 30


def test_a_window_of_one_period_admits_at_most_twice_the_limit_minus_one() -> None:
    tat, now, admitted = T0, T0, 0
    while now < T0 + 60:
        n, tat = burst(tat, now, 100, 30, 60)
        admitted += n
        now += 0.25
    assert admitted == 2 * 30 - 1


def test_a_variable_cost_is_admitted_while_it_fits_in_the_period() -> None:
    tat = gcra_take(T0, T0, 600, 1000, 60)
    assert gcra_wait(tat, T0, 400, 1000, 60) == 0.0
    assert math.isclose(gcra_wait(tat, T0, 500, 1000, 60), 6.0)  # 100 tokens short at 1000/min


def test_a_demand_larger_than_the_limit_never_fits() -> None:
    assert gcra_wait(T0, T0, 1001, 1000, 60) == math.inf


def test_admit_answers_the_new_tat_or_minus_the_wait() -> None:
    assert gcra_admit(T0, T0, 10, 30, 60) == T0 + 20.0
    assert math.isclose(gcra_admit(T0 + 60, T0, 1, 30, 60), -2.0, abs_tol=1e-6)
    assert gcra_admit(T0, T0, 31, 30, 60) == -math.inf


def test_a_zero_demand_always_fits() -> None:
    tat = gcra_take(T0, T0, 1000, 1000, 60) + 100
    assert gcra_wait(tat, T0, 0, 1000, 60) == 0.0


def test_a_refund_moves_the_counter_back_but_never_before_now() -> None:
    tat = gcra_take(T0, T0, 600, 1000, 60)  # 36 s of the minute used
    assert math.isclose(gcra_adjust(tat, T0, -100, 1000, 60), T0 + 30.0)
    assert gcra_adjust(tat, T0, -5000, 1000, 60) == T0


def test_an_extra_charge_may_push_the_counter_beyond_one_period() -> None:
    tat = gcra_take(T0, T0, 1000, 1000, 60)
    tat = gcra_adjust(tat, T0, 500, 1000, 60)
    assert math.isclose(tat, T0 + 90.0)
    assert math.isclose(gcra_wait(tat, T0, 1, 1000, 60), 30.06, abs_tol=1e-6)


def test_remaining_and_reset_describe_the_counter_for_headers() -> None:
    tat = gcra_take(T0, T0, 10, 30, 60)
    assert math.isclose(gcra_remaining(tat, T0, 30, 60), 20)
    assert math.isclose(gcra_reset(tat, T0), 20.0)
    assert math.isclose(gcra_remaining(tat, T0 + 20, 30, 60), 30)
    assert gcra_reset(tat, T0 + 25) == 0.0
