"""Active health checks: which channels are due a probe, and what a probe's result does."""

from __future__ import annotations

from routing_helpers import Clock, ch

from sluicegate.routing import CONNECT_FAILED, BreakerPolicy, RetryPolicy, Router, classify

ONE_TRY = RetryPolicy(max_attempts=1)


def refuse_key(router: Router) -> None:
    attempts = router.plan("m")
    attempts.next()
    attempts.record_failure(classify(401))


def test_a_refused_key_is_due_a_probe_after_the_interval(make_router, clock: Clock) -> None:
    router = make_router(
        {"m": [ch("openai")]}, keys={"openai": ["sk-1"]}, breaker=BreakerPolicy(disabled_probe_s=300)
    )
    refuse_key(router)
    assert router.due_probes() == []
    clock.advance(300)
    [probe] = router.due_probes()
    assert (probe.channel.name, probe.key, probe.reason) == ("openai", "sk-1", "disabled_key")


def test_a_probe_is_handed_out_once_per_interval(make_router, clock: Clock) -> None:
    router = make_router(
        {"m": [ch("openai")]}, keys={"openai": ["sk-1"]}, breaker=BreakerPolicy(disabled_probe_s=300)
    )
    refuse_key(router)
    clock.advance(300)
    assert len(router.due_probes()) == 1
    assert router.due_probes() == []


def test_a_successful_probe_restores_the_key_and_the_channel(make_router, clock: Clock) -> None:
    router = make_router(
        {"m": [ch("openai")]}, keys={"openai": ["sk-1"]}, breaker=BreakerPolicy(disabled_probe_s=300)
    )
    refuse_key(router)
    clock.advance(300)
    [probe] = router.due_probes()
    router.record_probe(probe)
    attempts = router.plan("m")
    assert attempts.next().name == "openai" and attempts.key == "sk-1"


def test_a_refused_probe_keeps_the_key_retired(make_router, clock: Clock) -> None:
    router = make_router(
        {"m": [ch("openai")]}, keys={"openai": ["sk-1"]}, breaker=BreakerPolicy(disabled_probe_s=300)
    )
    refuse_key(router)
    clock.advance(300)
    [probe] = router.due_probes()
    router.record_probe(probe, classify(401))
    assert not router.plan("m").next()
    clock.advance(300)
    assert len(router.due_probes()) == 1  # and it is tried again later


def test_a_refused_channel_without_keys_is_probed_and_restored(make_router, clock: Clock) -> None:
    router = make_router({"m": [ch("openai")]}, breaker=BreakerPolicy(disabled_probe_s=60))
    refuse_key(router)
    clock.advance(60)
    [probe] = router.due_probes()
    assert (probe.key, probe.reason) == (None, "disabled")
    router.record_probe(probe)
    assert router.plan("m").next().name == "openai"


def test_an_open_channel_past_its_cooldown_gets_the_half_open_probe(make_router, clock: Clock) -> None:
    router = make_router({"m": [ch("a")]}, policy=ONE_TRY, breaker=BreakerPolicy(failures=1, cooldown_s=10))
    attempts = router.plan("m")
    attempts.next()
    attempts.record_failure(CONNECT_FAILED)
    assert router.due_probes() == []
    clock.advance(10)
    [probe] = router.due_probes()
    assert probe.reason == "half_open"
    assert not router.plan("m").next()  # users wait for the probe's verdict
    router.record_probe(probe, latency=0.3)
    assert router.snapshot()["channels"][0]["state"] == "closed"
    assert router.plan("m").next().name == "a"


def test_a_failed_half_open_probe_reopens_the_channel(make_router, clock: Clock) -> None:
    router = make_router({"m": [ch("a")]}, policy=ONE_TRY, breaker=BreakerPolicy(failures=1, cooldown_s=10))
    attempts = router.plan("m")
    attempts.next()
    attempts.record_failure(CONNECT_FAILED)
    clock.advance(10)
    [probe] = router.due_probes()
    router.record_probe(probe, CONNECT_FAILED)
    assert router.plan("m").next().retry_after == 20.0


def test_idle_probes_are_off_by_default(make_router, clock: Clock) -> None:
    router = make_router({"m": [ch("a")]})
    clock.advance(3600)
    assert router.due_probes() == []


def test_an_idle_channel_is_due_a_probe_when_enabled(make_router, clock: Clock) -> None:
    router = make_router({"m": [ch("a"), ch("b")]}, breaker=BreakerPolicy(idle_probe_s=30))
    clock.advance(30)
    attempts = router.plan("m")
    used = attempts.next().name
    attempts.record_success(0.1)
    assert [p.channel.name for p in router.due_probes()] == [({"a", "b"} - {used}).pop()]


def test_failing_idle_probes_open_the_breaker_before_a_user_meets_it(make_router, clock: Clock) -> None:
    router = make_router({"m": [ch("a")]}, breaker=BreakerPolicy(idle_probe_s=30, failures=2))
    for _ in range(2):
        clock.advance(30)
        [probe] = router.due_probes()
        router.record_probe(probe, classify(502))
    assert router.snapshot()["channels"][0]["state"] == "open"
    assert router.snapshot()["channels"][0]["requests"] == 0  # probes are not user requests


def test_idle_probes_do_not_burst_at_start_up(make_router, clock: Clock) -> None:
    router = make_router({"m": [ch("a"), ch("b")]}, breaker=BreakerPolicy(idle_probe_s=30))
    assert router.due_probes() == []
    clock.advance(30)
    assert len(router.due_probes()) == 2


def test_a_channel_resting_after_retry_after_is_not_probed(make_router, clock: Clock) -> None:
    router = make_router({"m": [ch("a")]}, breaker=BreakerPolicy(idle_probe_s=30))
    attempts = router.plan("m")
    attempts.next()
    attempts.record_failure(classify(429, None, {"retry-after": "120"}))
    clock.advance(60)
    assert router.due_probes() == []
    clock.advance(60)
    assert len(router.due_probes()) == 1
