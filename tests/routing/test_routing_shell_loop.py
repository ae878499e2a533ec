"""The router driven the way the I/O shell drives it, against scripted upstreams.

`serve` is the shell's loop in miniature: it shows the contract (one outcome per attempt, the
first byte commits, the last upstream error is relayed when the router gives up) end to end.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from routing_helpers import Clock, ch

from sluicegate.routing import (
    CONNECT_FAILED,
    STREAM_CUT,
    NoChannel,
    RetryPolicy,
    Router,
    classify,
)

# What a scripted upstream does: ("ok", latency) | ("status", code, retry_after) | ("refused",) | ("cut",)
Script = Callable[[], tuple]


@dataclass
class Answer:
    status: int
    served_by: str | None = None
    retry_after: float | None = None
    tried: list[str] = field(default_factory=list)


def serve(router: Router, model: str, upstreams: dict[str, Script], clock: Clock) -> Answer:
    attempts = router.plan(model)
    tried: list[str] = []
    last_status: int | None = None
    while True:
        channel = attempts.next()
        if isinstance(channel, NoChannel):
            if channel.reason in ("not_retryable", "attempts_exhausted", "deadline") and last_status:
                return Answer(last_status, None, channel.retry_after, tried)  # relay the upstream's error
            return Answer(channel.status, None, channel.retry_after, tried)
        tried.append(channel.name)
        action = upstreams[channel.name]()
        if action[0] == "refused":
            attempts.record_failure(CONNECT_FAILED)
        elif action[0] == "status":
            headers = {"retry-after": str(action[2])} if action[2] is not None else {}
            last_status = action[1]
            attempts.record_failure(
                classify(action[1], b"{}", headers, clock())
            )  # next() decides what follows
        elif action[0] == "cut":
            attempts.record_first_byte(0.1)
            attempts.record_failure(STREAM_CUT)
            return Answer(200, channel.name, None, tried)  # headers already went out
        else:
            clock.advance(action[1])
            attempts.record_success(action[1])
            return Answer(200, channel.name, None, tried)


def always(*action) -> Script:
    return lambda: action


def test_a_request_survives_a_dead_upstream_and_a_busy_one(make_router, clock: Clock) -> None:
    router = make_router({"m": [ch("dead"), ch("busy"), ch("fine", priority=1)]})
    upstreams = {"dead": always("refused"), "busy": always("status", 429, 30), "fine": always("ok", 0.2)}
    answer = serve(router, "m", upstreams, clock)
    assert (answer.status, answer.served_by) == (200, "fine")
    assert sorted(answer.tried[:2]) == ["busy", "dead"]


def test_the_busy_upstream_is_left_alone_by_the_next_requests(make_router, clock: Clock) -> None:
    router = make_router({"m": [ch("busy"), ch("fine")]})
    upstreams = {"busy": always("status", 429, 30), "fine": always("ok", 0.2)}
    for _ in range(10):
        serve(router, "m", upstreams, clock)
    calls = [serve(router, "m", upstreams, clock).tried for _ in range(10)]
    assert all(tried == ["fine"] for tried in calls)


def test_a_client_error_is_relayed_after_one_attempt(make_router, clock: Clock) -> None:
    router = make_router({"m": [ch("a"), ch("b")]})
    answer = serve(router, "m", {"a": always("status", 422, None), "b": always("status", 422, None)}, clock)
    assert (answer.status, len(answer.tried)) == (422, 1)


def test_when_every_attempt_fails_the_last_upstream_error_is_relayed(make_router, clock: Clock) -> None:
    router = make_router({"m": [ch("a"), ch("b")]}, policy=RetryPolicy(max_attempts=2))
    answer = serve(router, "m", {"a": always("status", 502, None), "b": always("status", 500, None)}, clock)
    assert len(answer.tried) == 2 and answer.status in (500, 502)


def test_every_upstream_rate_limited_tells_the_client_when_to_come_back(make_router, clock: Clock) -> None:
    router = make_router({"m": [ch("a"), ch("b")]})
    answer = serve(router, "m", {"a": always("status", 429, 20), "b": always("status", 429, 5)}, clock)
    assert (answer.status, answer.retry_after) == (429, 5.0)


def test_a_stream_cut_midway_is_not_restarted_elsewhere(make_router, clock: Clock) -> None:
    router = make_router({"m": [ch("a"), ch("b")]})
    answer = serve(router, "m", {"a": always("cut"), "b": always("cut")}, clock)
    assert len(answer.tried) == 1
