"""Health as plain data: the status page, readiness, and sharing between processes via a store."""

from __future__ import annotations

import json

import pytest
from routing_helpers import Clock, ch

from sluicegate.routing import (
    CONNECT_FAILED,
    BreakerPolicy,
    Channel,
    InMemoryHealthStore,
    RetryPolicy,
    Router,
    classify,
    sync_health,
)

ONE_TRY = RetryPolicy(max_attempts=1)
STATUS_FIELDS = {
    "name",
    "upstream",
    "model",
    "state",
    "consecutive_failures",
    "cooldown_until",
    "last_error",
    "in_flight",
    "ewma_latency_s",
    "requests",
    "failures",
}


def two_workers(make_router, **kwargs) -> tuple[Router, Router]:
    routes = {"m": [ch("a")]}
    return make_router(routes, **kwargs), make_router(routes, **kwargs)


def test_the_status_is_plain_json_with_every_field_the_cli_shows(make_router) -> None:
    router = make_router({"m": [ch("a")]})
    attempts = router.plan("m")
    attempts.next()
    attempts.record_success(0.25)
    [channel] = json.loads(json.dumps(router.snapshot()))["channels"]
    assert STATUS_FIELDS <= set(channel)
    assert (channel["state"], channel["requests"], channel["ewma_latency_s"]) == ("closed", 1, 0.25)


def test_an_open_channel_reports_when_its_cooldown_ends(make_router, clock: Clock) -> None:
    router = make_router({"m": [ch("a")]}, policy=ONE_TRY, breaker=BreakerPolicy(failures=1, cooldown_s=10))
    attempts = router.plan("m")
    attempts.next()
    attempts.record_failure(CONNECT_FAILED)
    [channel] = router.snapshot()["channels"]
    assert (channel["state"], channel["cooldown_until"], channel["last_error"]) == (
        "open",
        clock() + 10,
        "connect_error",
    )


def test_a_model_whose_every_channel_is_down_is_reported_unavailable(make_router) -> None:
    router = make_router({"m": [ch("a")], "n": [ch("b")]}, policy=ONE_TRY, breaker=BreakerPolicy(failures=1))
    attempts = router.plan("m")
    attempts.next()
    attempts.record_failure(CONNECT_FAILED)
    assert router.unavailable_models() == ["m"]


def test_routes_naming_one_channel_share_its_health(make_router) -> None:
    router = make_router(
        {"m": [ch("a")], "alias": [ch("a")]}, policy=ONE_TRY, breaker=BreakerPolicy(failures=1)
    )
    attempts = router.plan("m")
    attempts.next()
    attempts.record_failure(CONNECT_FAILED)
    assert not router.plan("alias").next()


async def test_a_breaker_opened_in_one_process_is_respected_by_another(make_router) -> None:
    store = InMemoryHealthStore()
    one, two = two_workers(make_router, policy=ONE_TRY, breaker=BreakerPolicy(failures=1))
    attempts = one.plan("m")
    attempts.next()
    attempts.record_failure(CONNECT_FAILED)
    await store.publish(one.take_changes())
    assert two.merge(await store.fetch()) == 1
    assert two.plan("m").next().status == 503


async def test_a_retry_after_heard_by_one_process_holds_in_another(make_router) -> None:
    store = InMemoryHealthStore()
    one, two = two_workers(make_router)
    attempts = one.plan("m")
    attempts.next()
    attempts.record_failure(classify(429, None, {"retry-after": "30"}))
    await store.publish(one.take_changes())
    two.merge(await store.fetch())
    answer = two.plan("m").next()
    assert (answer.status, answer.retry_after) == (429, 30.0)


async def test_a_key_refused_in_one_process_is_not_used_by_another(make_router) -> None:
    store = InMemoryHealthStore()
    one, two = two_workers(make_router, keys={"a": ["sk-1", "sk-2"]})
    attempts = one.plan("m")
    attempts.next()
    attempts.record_failure(classify(401))
    await store.publish(one.take_changes())
    two.merge(await store.fetch())
    used = set()
    for _ in range(4):
        attempts = two.plan("m")
        attempts.next()
        used.add(attempts.key)
        attempts.record_success(0.1)
    assert used == {"sk-2"}


async def test_a_later_local_change_wins_over_an_older_shared_record(make_router, clock: Clock) -> None:
    store = InMemoryHealthStore()
    one, two = two_workers(make_router, policy=ONE_TRY, breaker=BreakerPolicy(failures=1))
    attempts = one.plan("m")
    attempts.next()
    attempts.record_failure(CONNECT_FAILED)
    await store.publish(one.take_changes())
    clock.advance(1)
    two.reset_channel("a")  # a person reset it after the failure was published
    assert two.merge(await store.fetch()) == 0
    assert two.plan("m").next().name == "a"


async def test_nothing_is_published_when_nothing_changed(make_router) -> None:
    router = make_router({"m": [ch("a")]})
    attempts = router.plan("m")
    attempts.next()
    attempts.record_success(0.1)
    assert router.take_changes() == []


async def test_changes_are_published_once(make_router) -> None:
    router = make_router({"m": [ch("a")]}, policy=ONE_TRY, breaker=BreakerPolicy(failures=1))
    attempts = router.plan("m")
    attempts.next()
    attempts.record_failure(CONNECT_FAILED)
    assert len(router.take_changes()) == 1
    assert router.take_changes() == []


def test_a_route_without_channels_is_refused() -> None:
    with pytest.raises(ValueError, match="no channels"):
        Router({"m": []})


def test_a_channel_listed_twice_in_a_route_is_refused() -> None:
    with pytest.raises(ValueError, match="twice"):
        Router({"m": [ch("a"), ch("a")]})


def test_one_channel_name_for_two_upstream_models_is_refused() -> None:
    with pytest.raises(ValueError, match="two different"):
        Router({"m": [Channel("a", "openai", "x")], "n": [Channel("a", "openai", "y")]})


async def test_the_store_keeps_the_latest_record_whatever_the_order_of_publishing() -> None:
    store = InMemoryHealthStore()
    newer = {"kind": "channel", "name": "a", "state": "open", "changed_at": 20.0}
    older = {"kind": "channel", "name": "a", "state": "closed", "changed_at": 10.0}
    await store.publish([newer])
    await store.publish([older])
    [kept] = await store.fetch()
    assert (kept["state"], kept["changed_at"]) == ("open", 20.0)


async def test_the_store_keeps_the_longest_retry_after_heard_of() -> None:
    store = InMemoryHealthStore()
    await store.publish(
        [{"kind": "channel", "name": "a", "state": "closed", "changed_at": 5.0, "retry_after_until": 90.0}]
    )
    await store.publish(
        [{"kind": "channel", "name": "a", "state": "closed", "changed_at": 6.0, "retry_after_until": 50.0}]
    )
    [kept] = await store.fetch()
    assert (kept["changed_at"], kept["retry_after_until"]) == (6.0, 90.0)


async def test_one_sync_round_each_way_shares_a_failure_between_workers(make_router) -> None:
    store = InMemoryHealthStore()
    one, two = two_workers(make_router, policy=ONE_TRY, breaker=BreakerPolicy(failures=1))
    attempts = one.plan("m")
    attempts.next()
    attempts.record_failure(CONNECT_FAILED)
    assert await sync_health(one, store) == 0
    assert await sync_health(two, store) == 1
    assert two.plan("m").next().status == 503
