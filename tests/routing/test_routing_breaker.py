"""The circuit breaker: closed, open after repeated failure, half-open for one trial, closed again."""

from __future__ import annotations

import pytest
from routing_helpers import Clock, ch

from sluicegate.routing import CONNECT_FAILED, BreakerPolicy, NoChannel, RetryPolicy, Router, classify

ONE_TRY = RetryPolicy(max_attempts=1)


def fail(router: Router, times: int = 1, outcome=CONNECT_FAILED) -> None:
    for _ in range(times):
        attempts = router.plan("m")
        assert attempts.next(), "expected a channel"
        attempts.record_failure(outcome)


def succeed(router: Router, times: int = 1) -> None:
    for _ in range(times):
        attempts = router.plan("m")
        assert attempts.next(), "expected a channel"
        attempts.record_success(0.1)


def state(router: Router) -> str:
    return router.snapshot()["channels"][0]["state"]


@pytest.fixture
def router(make_router) -> Router:
    return make_router(
        {"m": [ch("a")]}, policy=ONE_TRY, breaker=BreakerPolicy(failures=3, cooldown_s=10, max_cooldown_s=35)
    )


def test_a_channel_stays_closed_below_the_failure_threshold(router: Router) -> None:
    fail(router, 2)
    assert state(router) == "closed"


def test_it_opens_after_n_consecutive_failures(router: Router) -> None:
    fail(router, 3)
    assert state(router) == "open"


def test_an_open_channel_is_skipped_and_the_answer_is_503_with_the_cooldown(router: Router) -> None:
    fail(router, 3)
    answer = router.plan("m").next()
    assert isinstance(answer, NoChannel)
    assert (answer.reason, answer.status, answer.retry_after) == ("unavailable", 503, pytest.approx(10.0))


def test_a_success_breaks_the_run_of_failures(router: Router) -> None:
    fail(router, 2)
    succeed(router)
    fail(router, 2)
    assert state(router) == "closed"


def test_a_high_failure_rate_in_the_window_opens_it_without_a_long_run(make_router) -> None:
    breaker = BreakerPolicy(failures=100, min_requests=10, failure_rate=0.5, window_s=60)
    router = make_router({"m": [ch("a")]}, policy=ONE_TRY, breaker=breaker)
    for _ in range(5):
        succeed(router)
        fail(router)
    assert state(router) == "open"


def test_failures_from_an_earlier_window_are_forgotten(make_router, clock: Clock) -> None:
    breaker = BreakerPolicy(failures=100, min_requests=10, failure_rate=0.5, window_s=60)
    router = make_router({"m": [ch("a")]}, policy=ONE_TRY, breaker=breaker)
    for _ in range(4):
        succeed(router)
        fail(router)
    clock.advance(61)
    succeed(router)
    fail(router)
    assert state(router) == "closed"


def test_rate_limits_never_open_the_breaker(router: Router, clock: Clock) -> None:
    for _ in range(10):
        fail(router, outcome=classify(429, None, {"retry-after": "1"}))
        clock.advance(1)
    assert state(router) == "closed"


def test_after_the_cooldown_one_trial_request_is_admitted(router: Router, clock: Clock) -> None:
    fail(router, 3)
    clock.advance(10)
    trial = router.plan("m")
    assert trial.next().name == "a"
    assert state(router) == "half_open"
    assert isinstance(router.plan("m").next(), NoChannel)  # only one trial at a time


def test_a_successful_trial_closes_the_breaker(router: Router, clock: Clock) -> None:
    fail(router, 3)
    clock.advance(10)
    succeed(router)
    assert state(router) == "closed"
    succeed(router, 3)


def test_a_failed_trial_reopens_it_for_twice_as_long(router: Router, clock: Clock) -> None:
    fail(router, 3)
    clock.advance(10)
    fail(router)
    assert state(router) == "open"
    assert router.plan("m").next().retry_after == pytest.approx(20.0)


def test_the_cooldown_growth_is_capped(router: Router, clock: Clock) -> None:
    fail(router, 3)
    for cooldown in (10, 20):
        clock.advance(cooldown)
        fail(router)
    assert router.plan("m").next().retry_after == pytest.approx(35.0)


def test_closing_resets_the_cooldown_to_its_base(router: Router, clock: Clock) -> None:
    fail(router, 3)
    clock.advance(10)
    fail(router)
    clock.advance(20)
    succeed(router)
    fail(router, 3)
    assert router.plan("m").next().retry_after == pytest.approx(10.0)


def test_a_trial_that_never_reports_back_does_not_block_the_channel_forever(
    make_router, clock: Clock
) -> None:
    breaker = BreakerPolicy(failures=1, cooldown_s=10, probe_timeout_s=30)
    router = make_router({"m": [ch("a")]}, policy=ONE_TRY, breaker=breaker)
    fail(router)
    clock.advance(10)
    router.plan("m").next()  # the trial goes out and is lost
    clock.advance(29)
    assert not router.plan("m").next()
    clock.advance(1)
    assert router.plan("m").next().name == "a"


def test_a_cancelled_trial_lets_the_next_request_be_the_trial(router: Router, clock: Clock) -> None:
    fail(router, 3)
    clock.advance(10)
    trial = router.plan("m")
    trial.next()
    trial.record_cancelled()
    assert router.plan("m").next().name == "a"


def test_an_open_channel_sends_traffic_to_the_others(make_router) -> None:
    router = make_router({"m": [ch("a"), ch("b")]}, policy=ONE_TRY, breaker=BreakerPolicy(failures=1))
    attempts = router.plan("m")
    broken = attempts.next().name
    attempts.record_failure(CONNECT_FAILED)
    names = set()
    for _ in range(50):
        attempts = router.plan("m")
        names.add(attempts.next().name)
        attempts.record_success(0.1)
    assert broken not in names


def test_closing_is_stamped_with_the_time_the_trial_succeeded(router: Router, clock: Clock) -> None:
    fail(router, 3)
    clock.advance(10)
    trial = router.plan("m")
    trial.next()
    clock.advance(5)  # a slow trial: another process may have changed its mind meanwhile
    trial.record_success(5.0)
    assert router.snapshot()["channels"][0]["changed_at"] == clock()
