"""Breakers judge channels, not requests: one request's retries count once against a channel.

The case that motivated it: llama.cpp answers 500 to a `json_schema` it cannot do; the client's SDK
retries the same body five times, and before this every other user of the model got 503 for the
breaker's cooldown.
"""

from __future__ import annotations

import pytest
from routing_helpers import Clock, ch

from sluicegate.routing import (
    CONNECT_FAILED,
    FIRST_BYTE_TIMED_OUT,
    STREAM_CUT,
    BreakerPolicy,
    RetryPolicy,
    Router,
    classify,
)

ONE_TRY = RetryPolicy(max_attempts=1)
SERVER_500 = classify(500)
JSON_SCHEMA_BODY = b'{"model":"m","messages":[],"response_format":{"type":"json_schema"}}'


def attempt(router: Router, body: bytes | None, outcome=SERVER_500) -> None:
    attempts = router.plan("m", body)
    assert attempts.next(), "expected a channel"
    if outcome is None:
        attempts.record_success(0.1)
    else:
        attempts.record_failure(outcome)


def state(router: Router) -> str:
    return router.snapshot()["channels"][0]["state"]


@pytest.fixture
def router(make_router) -> Router:
    return make_router({"m": [ch("llama")]}, policy=ONE_TRY, breaker=BreakerPolicy(failures=5, window_s=60))


def test_one_client_retrying_one_refused_request_five_times_leaves_the_breaker_closed(router: Router) -> None:
    for _ in range(5):
        attempt(router, JSON_SCHEMA_BODY)
    assert state(router) == "closed"
    other = router.plan("m", b'{"model":"m","messages":[{"role":"user","content":"hi"}]}')
    assert other.next(), "another user's request is still served"


def test_retries_interleaved_with_other_users_successes_leave_it_closed(router: Router) -> None:
    for i in range(20):
        attempt(router, JSON_SCHEMA_BODY)
        attempt(router, f'{{"user": {i}}}'.encode(), outcome=None)
    assert state(router) == "closed"


def test_failures_of_distinct_requests_still_open_it(router: Router) -> None:
    for i in range(5):
        attempt(router, f'{{"request": {i}}}'.encode())
    assert state(router) == "open"


def test_the_same_request_counts_again_after_the_window(router: Router, clock: Clock) -> None:
    for _ in range(4):
        attempt(router, JSON_SCHEMA_BODY)
        clock.advance(61)
    assert state(router) == "closed"
    attempt(router, b'{"another": 1}')
    assert state(router) == "open", "a window apart, the same body failing is a new failure each time"


@pytest.mark.parametrize("outcome", [CONNECT_FAILED, FIRST_BYTE_TIMED_OUT])
def test_connect_errors_and_timeouts_count_every_time(router: Router, outcome) -> None:
    for _ in range(5):
        attempt(router, JSON_SCHEMA_BODY, outcome)
    assert state(router) == "open"


def test_a_stream_cut_is_judged_per_request_too(router: Router) -> None:
    for _ in range(5):
        attempt(router, JSON_SCHEMA_BODY, STREAM_CUT)
    assert state(router) == "closed"


def test_requests_without_a_body_count_every_failure(router: Router) -> None:
    for _ in range(5):
        attempt(router, None)
    assert state(router) == "open"


def test_a_half_open_trial_that_repeats_a_known_failure_gives_no_verdict(
    router: Router, clock: Clock
) -> None:
    for i in range(5):
        attempt(router, f'{{"request": {i}}}'.encode())
    assert state(router) == "open"
    clock.advance(11)
    attempt(router, b'{"request": 0}')  # the trial is a retry of a request that already failed here
    assert state(router) == "half_open"
    attempt(router, b'{"fresh": 1}', outcome=None)
    assert state(router) == "closed"


def test_the_memory_of_failed_requests_is_bounded(make_router) -> None:
    router = make_router(
        {"m": [ch("a")]},
        policy=ONE_TRY,
        breaker=BreakerPolicy(failures=10_000, min_requests=10_000, remembered_failures=8),
    )
    for i in range(100):
        attempt(router, f'{{"request": {i}}}'.encode())
    health = router._routes["m"].candidates[0].health
    assert health.recent_failures is not None and len(health.recent_failures) <= 8


def test_a_repeated_request_that_then_succeeds_elsewhere_counts_against_the_failing_channel(
    make_router,
) -> None:
    # Same body every time (a health check, a benchmark, many users saying "hi"): if it works on
    # another channel, the failing channel is at fault, however often it saw that body.
    router = make_router(
        {"m": [ch("bad", priority=0), ch("good", priority=1)]},
        policy=RetryPolicy(max_attempts=2),
        breaker=BreakerPolicy(failures=3),
    )
    for _ in range(3):
        attempts = router.plan("m", JSON_SCHEMA_BODY)
        assert attempts.next().name == "bad"
        assert attempts.record_failure(SERVER_500)
        assert attempts.next().name == "good"
        attempts.record_success(0.1)
    states = {c["name"]: c["state"] for c in router.snapshot()["channels"]}
    assert states == {"bad": "open", "good": "closed"}
