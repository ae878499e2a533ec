"""Failover before the first byte: which channel comes next, and when a request stops trying."""

from __future__ import annotations

import pytest
from routing_helpers import Clock, ch

from sluicegate.routing import (
    CONNECT_FAILED,
    FIRST_BYTE_TIMED_OUT,
    STREAM_CUT,
    NoChannel,
    RetryPolicy,
    classify,
    over_limit,
)

SERVER_ERROR = classify(503)


def test_no_channel_is_tried_twice_while_untried_ones_remain(make_router) -> None:
    router = make_router({"m": [ch("a"), ch("b"), ch("c")]}, policy=RetryPolicy(max_attempts=3))
    for seed_round in range(20):
        attempts = router.plan("m")
        names = []
        for _ in range(3):
            names.append(attempts.next().name)
            attempts.record_failure(SERVER_ERROR)
        assert sorted(names) == ["a", "b", "c"], seed_round
        for name in ("a", "b", "c"):
            router.reset_channel(name)


def test_an_untried_lower_priority_comes_before_retrying_a_preferred_channel(make_router) -> None:
    router = make_router({"m": [ch("a"), ch("backup", priority=1)]})
    attempts = router.plan("m")
    assert attempts.next().name == "a"
    attempts.record_failure(FIRST_BYTE_TIMED_OUT)
    assert attempts.next().name == "backup"


def test_with_every_channel_tried_the_budget_is_spent_on_tried_ones(make_router) -> None:
    router = make_router({"m": [ch("a"), ch("b")]}, policy=RetryPolicy(max_attempts=3))
    attempts = router.plan("m")
    for _ in range(2):
        attempts.next()
        attempts.record_failure(CONNECT_FAILED)
    assert attempts.next().name in {"a", "b"}


def test_a_single_channel_is_retried_up_to_max_attempts_then_502(make_router) -> None:
    router = make_router({"m": [ch("a")]}, policy=RetryPolicy(max_attempts=2))
    attempts = router.plan("m")
    assert attempts.next().name == "a"
    assert attempts.record_failure(SERVER_ERROR) is True
    assert attempts.next().name == "a"
    assert attempts.record_failure(SERVER_ERROR) is False
    answer = attempts.next()
    assert isinstance(answer, NoChannel)
    assert (answer.reason, answer.status, answer.last) == ("attempts_exhausted", 502, SERVER_ERROR)


@pytest.mark.parametrize("status", [400, 404, 413, 422])
def test_a_client_fault_is_never_retried_and_is_relayed_as_is(make_router, status: int) -> None:
    router = make_router({"m": [ch("a"), ch("b")]})
    attempts = router.plan("m")
    attempts.next()
    assert attempts.record_failure(classify(status)) is False
    answer = attempts.next()
    assert (answer.reason, answer.status) == ("not_retryable", status)


def test_a_client_fault_says_nothing_about_the_channels_health(make_router) -> None:
    router = make_router({"m": [ch("a")]})
    for _ in range(20):
        attempts = router.plan("m")
        attempts.next()
        attempts.record_failure(classify(400))
    channel = router.snapshot()["channels"][0]
    assert (channel["state"], channel["failures"], channel["requests"]) == ("closed", 0, 20)


def test_nothing_is_retried_once_bytes_reached_the_client(make_router) -> None:
    router = make_router({"m": [ch("a"), ch("b")]})
    attempts = router.plan("m")
    attempts.next()
    attempts.record_first_byte(0.2)
    assert attempts.record_failure(STREAM_CUT) is False
    assert attempts.next().reason == "committed"


def test_even_a_retryable_status_is_not_retried_after_the_first_byte(make_router) -> None:
    router = make_router({"m": [ch("a"), ch("b")]})
    attempts = router.plan("m")
    attempts.next()
    attempts.record_first_byte(0.2)
    assert attempts.record_failure(SERVER_ERROR) is False


def test_the_deadline_stops_retries(make_router, clock: Clock) -> None:
    router = make_router({"m": [ch("a"), ch("b")]}, policy=RetryPolicy(max_attempts=5, deadline_s=10))
    attempts = router.plan("m")
    attempts.next()
    clock.advance(10.5)
    assert attempts.record_failure(FIRST_BYTE_TIMED_OUT) is False
    answer = attempts.next()
    assert (answer.reason, answer.status, answer.last) == ("deadline", 504, FIRST_BYTE_TIMED_OUT)


def test_within_the_deadline_retries_go_on(make_router, clock: Clock) -> None:
    router = make_router({"m": [ch("a"), ch("b")]}, policy=RetryPolicy(max_attempts=5, deadline_s=10))
    attempts = router.plan("m")
    attempts.next()
    clock.advance(9.5)
    assert attempts.record_failure(FIRST_BYTE_TIMED_OUT) is True
    assert attempts.next()


def test_in_flight_returns_to_zero_however_attempts_end(make_router) -> None:
    router = make_router({"m": [ch("a"), ch("b")]}, policy=RetryPolicy(max_attempts=3))
    attempts = router.plan("m")
    attempts.next()
    attempts.record_failure(CONNECT_FAILED)
    attempts.next()
    attempts.record_cancelled()
    other = router.plan("m")
    other.next()
    other.record_success(0.1)
    assert [c["in_flight"] for c in router.snapshot()["channels"]] == [0, 0]


def test_a_cancelled_request_is_over_and_not_held_against_the_channel(make_router) -> None:
    router = make_router({"m": [ch("a")]})
    attempts = router.plan("m")
    attempts.next()
    attempts.record_cancelled()
    assert attempts.next().reason == "committed"
    channel = router.snapshot()["channels"][0]
    assert (channel["failures"], channel["consecutive_failures"]) == (0, 0)


def test_asking_for_a_channel_before_reporting_the_current_attempt_is_a_bug(make_router) -> None:
    attempts = make_router({"m": [ch("a")]}).plan("m")
    attempts.next()
    with pytest.raises(RuntimeError):
        attempts.next()


def test_reporting_an_attempt_twice_is_a_bug(make_router) -> None:
    attempts = make_router({"m": [ch("a")]}).plan("m")
    attempts.next()
    attempts.record_success(0.1)
    with pytest.raises(RuntimeError):
        attempts.record_failure(SERVER_ERROR)


def test_a_channel_our_limiter_declines_is_skipped_without_blame(make_router, clock: Clock) -> None:
    router = make_router({"m": [ch("a"), ch("b")]})
    attempts = router.plan("m")
    declined = attempts.next().name
    assert attempts.record_failure(over_limit(retry_after=5)) is True
    assert attempts.next().name != declined
    attempts.record_success(0.1)
    status = {c["name"]: c for c in router.snapshot()["channels"]}[declined]
    assert (status["failures"], status["requests"], status["last_error"]) == (0, 0, None)


def test_a_declined_channel_rests_until_the_limiter_frees_up(make_router, clock: Clock) -> None:
    router = make_router({"m": [ch("a")]})
    attempts = router.plan("m")
    attempts.next()
    attempts.record_failure(over_limit(retry_after=5))
    answer = router.plan("m").next()
    assert (answer.status, answer.retry_after) == (429, 5.0)
    clock.advance(5)
    assert router.plan("m").next().name == "a"
