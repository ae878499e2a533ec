"""A router rebuilt for a catalog change inherits the health of unchanged channels, and only theirs."""

from __future__ import annotations

from routing_helpers import Clock, ch

from sluicegate.routing import CONNECT_FAILED, BreakerPolicy, RetryPolicy, Router

ONE_TRY = RetryPolicy(max_attempts=1)
BREAKER = BreakerPolicy(failures=2, cooldown_s=30, max_cooldown_s=60)


def open_channel(router: Router, model: str) -> None:
    for _ in range(2):
        attempts = router.plan(model)
        assert attempts.next()
        attempts.record_failure(CONNECT_FAILED)


def states(router: Router) -> dict[str, str]:
    return {c["name"]: c["state"] for c in router.snapshot()["channels"]}


def build(routes: dict, clock: Clock, **kwargs) -> Router:
    return Router(routes, ONE_TRY, BREAKER, now=clock, **kwargs)


def test_an_open_channel_stays_open_when_another_route_is_added() -> None:
    clock = Clock()
    old = build({"m": [ch("a")]}, clock)
    open_channel(old, "m")
    new = build({"m": [ch("a")], "n": [ch("b")]}, clock, inherit=old)
    assert states(new) == {"a": "open", "b": "closed"}


def test_a_channel_whose_upstream_changed_starts_healthy() -> None:
    clock = Clock()
    old = build({"m": [ch("a")]}, clock)
    open_channel(old, "m")
    new = build({"m": [ch("a")]}, clock, inherit=old, changed_upstreams=frozenset({"a"}))
    assert states(new) == {"a": "closed"}


def test_requests_in_flight_are_counted_on_the_inherited_channel() -> None:
    clock = Clock()
    old = build({"m": [ch("a")]}, clock)
    attempts = old.plan("m")
    assert attempts.next()
    new = build({"m": [ch("a")]}, clock, inherit=old)
    assert new.snapshot()["channels"][0]["in_flight"] == 1
    attempts.record_success(0.1)  # the request that started on the old router ends
    assert new.snapshot()["channels"][0]["in_flight"] == 0
