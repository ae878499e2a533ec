"""Retry-After in both of its forms, and a channel resting until the time it names."""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import format_datetime

import pytest
from routing_helpers import Clock, ch

from sluicegate.routing import NoChannel, RetryPolicy, classify, parse_retry_after

NOW = 1_800_000_000.0


def http_date(epoch: float) -> str:
    return format_datetime(datetime.fromtimestamp(epoch, UTC), usegmt=True)


def test_delta_seconds() -> None:
    assert parse_retry_after("120", NOW) == 120.0


def test_fractional_seconds_are_accepted() -> None:
    assert parse_retry_after(" 1.5 ", NOW) == 1.5


def test_http_date_becomes_seconds_from_now() -> None:
    assert parse_retry_after(http_date(NOW + 30), NOW) == pytest.approx(30.0)


def test_http_date_in_the_past_means_now() -> None:
    assert parse_retry_after(http_date(NOW - 30), NOW) == 0.0


@pytest.mark.parametrize("value", ["", "soon", "-5", "nan", "Wed, 99 Foo 2026 99:99:99 GMT"])
def test_unreadable_values_are_ignored(value: str) -> None:
    assert parse_retry_after(value, NOW) is None


def test_a_channel_is_not_used_again_before_its_retry_after(make_router, clock: Clock) -> None:
    router = make_router({"m": [ch("a"), ch("b", priority=1)]})
    attempts = router.plan("m")
    assert attempts.next().name == "a"
    attempts.record_failure(classify(429, None, {"Retry-After": "20"}))
    clock.advance(19)
    assert router.plan("m").next().name == "b"


def test_a_channel_is_used_again_once_its_retry_after_has_passed(make_router, clock: Clock) -> None:
    router = make_router({"m": [ch("a"), ch("b", priority=1)]})
    attempts = router.plan("m")
    attempts.next()
    attempts.record_failure(classify(429, None, {"Retry-After": "20"}))
    clock.advance(20)
    assert router.plan("m").next().name == "a"


def test_every_channel_resting_answers_429_with_the_soonest_retry_after(make_router, clock: Clock) -> None:
    router = make_router({"m": [ch("a"), ch("b")]})
    for wait in ("30", http_date(clock() + 12)):
        attempts = router.plan("m")
        attempts.next()
        attempts.record_failure(classify(429, None, {"Retry-After": wait}, clock()))
    answer = router.plan("m").next()
    assert isinstance(answer, NoChannel)
    assert (answer.status, answer.reason) == (429, "rate_limited")
    assert answer.retry_after == pytest.approx(12.0)


def test_a_429_without_retry_after_rests_the_channel_briefly(make_router, clock: Clock) -> None:
    router = make_router({"m": [ch("a")]}, policy=RetryPolicy(rate_limit_hold_s=2.0))
    attempts = router.plan("m")
    attempts.next()
    attempts.record_failure(classify(429))
    assert router.plan("m").next().retry_after == pytest.approx(2.0)
    clock.advance(2.0)
    assert router.plan("m").next().name == "a"


def test_an_upstream_cannot_park_a_channel_beyond_the_cap(make_router) -> None:
    router = make_router({"m": [ch("a")]}, policy=RetryPolicy(max_retry_after_s=60))
    attempts = router.plan("m")
    attempts.next()
    attempts.record_failure(classify(503, None, {"Retry-After": "86400"}))
    assert router.plan("m").next().retry_after == pytest.approx(60.0)


def test_the_obsolete_rfc850_and_asctime_date_forms_are_read() -> None:
    now = 784_111_777.0 - 10  # ten seconds before 06 Nov 1994 08:49:37 GMT
    assert parse_retry_after("Sunday, 06-Nov-94 08:49:37 GMT", now) == pytest.approx(10.0)
    assert parse_retry_after("Sun Nov  6 08:49:37 1994", now) == pytest.approx(10.0)
