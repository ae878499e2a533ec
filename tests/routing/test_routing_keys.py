"""Provider keys: used in turn; a key the upstream refuses is retired until a person or a probe."""

from __future__ import annotations

import json

import pytest
from routing_helpers import Clock, ch

from sluicegate.routing import BreakerPolicy, KeyRing, NoChannel, Router, classify

KEYS = {"openai": ["sk-one", "sk-two", "sk-three"]}
NO_PROBES = BreakerPolicy(disabled_probe_s=None)


def keys_used(router: Router, n: int) -> list[str | None]:
    used = []
    for _ in range(n):
        attempts = router.plan("m")
        attempts.next()
        used.append(attempts.key)
        attempts.record_success(0.1)
    return used


def test_keys_are_used_in_turn() -> None:
    ring = KeyRing(["k1", "k2", "k3"])
    assert [ring.next() for _ in range(4)] == ["k1", "k2", "k3", "k1"]


def test_a_disabled_key_is_skipped() -> None:
    ring = KeyRing(["k1", "k2", "k3"])
    ring.disable("k2", "auth_error:401", 0.0)
    assert [ring.next() for _ in range(3)] == ["k1", "k3", "k1"]


def test_a_ring_with_every_key_disabled_has_none_to_give() -> None:
    ring = KeyRing(["k1"])
    ring.disable("k1", "auth_error:401", 0.0)
    assert (ring.available, ring.next()) == (False, None)


def test_the_router_hands_out_the_upstreams_keys_in_turn(make_router) -> None:
    router = make_router({"m": [ch("openai")]}, keys=KEYS)
    assert keys_used(router, 4) == ["sk-one", "sk-two", "sk-three", "sk-one"]


def test_an_upstream_without_keys_gets_none_and_uses_its_own(make_router) -> None:
    assert keys_used(make_router({"m": [ch("openai")]}), 1) == [None]


def test_a_401_retires_the_key_and_the_retry_uses_the_next_one(make_router) -> None:
    router = make_router({"m": [ch("openai")]}, keys=KEYS)
    attempts = router.plan("m")
    attempts.next()
    assert attempts.key == "sk-one"
    assert attempts.record_failure(classify(401)) is True
    assert attempts.next().name == "openai" and attempts.key == "sk-two"
    attempts.record_success(0.1)
    assert "sk-one" not in keys_used(router, 6)


@pytest.mark.parametrize(("status", "body"), [(402, b""), (429, b'{"error":{"code":"insufficient_quota"}}')])
def test_an_exhausted_balance_retires_the_key(make_router, status: int, body: bytes) -> None:
    router = make_router({"m": [ch("openai")]}, keys=KEYS)
    attempts = router.plan("m")
    attempts.next()
    attempts.record_failure(classify(status, body))
    assert "sk-one" not in keys_used(router, 6)


def test_every_key_refused_disables_the_channel_and_fails_over(make_router) -> None:
    router = make_router({"m": [ch("openai"), ch("azure")]}, keys={"openai": ["sk-one"]})
    attempts = router.plan("m")
    while attempts.next().name != "openai":
        attempts.record_cancelled()
        attempts = router.plan("m")
    attempts.record_failure(classify(401))
    assert attempts.next().name == "azure"
    status = {c["name"]: c for c in router.snapshot()["channels"]}
    assert status["openai"]["state"] == "disabled"
    assert status["openai"]["last_error"] == "auth_error:401"


def test_a_refused_upstream_without_a_key_ring_is_disabled_until_reset(make_router, clock: Clock) -> None:
    router = make_router({"m": [ch("openai")]}, breaker=NO_PROBES)
    attempts = router.plan("m")
    attempts.next()
    attempts.record_failure(classify(401))
    clock.advance(86_400)
    answer = router.plan("m").next()
    assert isinstance(answer, NoChannel)
    assert (answer.status, answer.retry_after) == (503, None)  # only a person can tell when
    router.reset_channel("openai")
    assert router.plan("m").next().name == "openai"


def test_a_403_disables_only_that_channel_not_the_upstreams_other_models(make_router) -> None:
    routes = {
        "m": [ch("openai/gpt-x", upstream="openai")],
        "other": [ch("openai/gpt-y", upstream="openai")],
    }
    router = make_router(routes, keys=KEYS)
    attempts = router.plan("m")
    attempts.next()
    attempts.record_failure(classify(403))
    assert not router.plan("m").next()
    assert router.plan("other").next().name == "openai/gpt-y"


def test_a_person_can_restore_a_key_by_its_position(make_router) -> None:
    router = make_router({"m": [ch("openai")]}, keys={"openai": ["sk-one", "sk-two"]}, breaker=NO_PROBES)
    for _ in range(2):
        attempts = router.plan("m")
        attempts.next()
        attempts.record_failure(classify(401))
    assert not router.plan("m").next()
    router.reset_keys("openai", index=1)
    assert keys_used(router, 2) == ["sk-two", "sk-two"]


def test_status_never_shows_a_key(make_router) -> None:
    router = make_router({"m": [ch("openai")]}, keys=KEYS)
    attempts = router.plan("m")
    attempts.next()
    attempts.record_failure(classify(401, b'{"error":"bad key sk-one"}'))
    text = json.dumps(router.snapshot()) + json.dumps(router.take_changes())
    assert "sk-" not in text
    keys = router.snapshot()["upstreams"]["openai"]["keys"]
    assert [k["enabled"] for k in keys] == [False, True, True]


def test_resetting_a_channel_whose_keys_were_all_refused_restores_the_keys(make_router) -> None:
    router = make_router({"m": [ch("openai")]}, keys={"openai": ["sk-one"]}, breaker=NO_PROBES)
    attempts = router.plan("m")
    attempts.next()
    attempts.record_failure(classify(401))
    router.reset_channel("openai")
    assert keys_used(router, 2) == ["sk-one", "sk-one"]
