"""Peaks the planner sizes for, from the request log in time order (store/traffic.py)."""

from __future__ import annotations

from sluicegate.store.traffic import _Peaks


def test_back_to_back_requests_are_never_two_in_flight() -> None:
    p = _Peaks()
    for start in (0.0, 1.0, 2.0):  # each lasts exactly 1 s and ends as the next arrives
        p.add("m", start, 1000.0)
    assert p.result()["m"] == (3 / 60, 1)


def test_overlapping_requests_count_together_and_per_model() -> None:
    p = _Peaks()
    p.add("a", 0.0, 5000.0)
    p.add("a", 1.0, 5000.0)
    p.add("b", 1.5, 100.0)
    p.add("a", 2.0, 100.0)  # three of model a in flight at t = 2 s
    p.add("a", 70.0, 100.0)  # the next minute: one request
    assert p.result() == {"a": (3 / 60, 3), "b": (1 / 60, 1)}


def test_a_request_with_no_latency_recorded_still_counts_once() -> None:
    p = _Peaks()
    p.add("m", 10.0, None)
    assert p.result()["m"] == (1 / 60, 1)
