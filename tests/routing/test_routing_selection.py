"""Which channel gets a request: weights, priorities, and the optional strategies."""

from __future__ import annotations

import math
import random
from collections import Counter

import pytest
from routing_helpers import ch

from sluicegate.routing import CONNECT_FAILED, BreakerPolicy, Channel, NoChannel, Router


def pick_many(router: Router, model: str, n: int) -> Counter[str]:
    seen: Counter[str] = Counter()
    for _ in range(n):
        attempts = router.plan(model)
        seen[attempts.next().name] += 1
        attempts.record_success(0.1)
    return seen


def test_weights_1_to_3_hold_within_binomial_noise(make_router) -> None:
    router = make_router({"m": [ch("a", weight=1), ch("b", weight=3)]})
    n, p = 4000, 0.25
    seen = pick_many(router, "m", n)
    sd = math.sqrt(n * p * (1 - p))
    assert abs(seen["a"] - n * p) < 4 * sd
    assert seen["a"] + seen["b"] == n


def test_weights_hold_for_other_seeds_too(make_router) -> None:
    n, p = 3000, 0.25
    sd = math.sqrt(n * p * (1 - p))
    for seed in (1, 2, 3):
        router = make_router({"m": [ch("a", weight=1), ch("b", weight=3)]}, seed=seed)
        assert abs(pick_many(router, "m", n)["a"] - n * p) < 4 * sd


def test_a_zero_weight_channel_gets_nothing_while_a_weighted_one_is_up(make_router) -> None:
    router = make_router({"m": [ch("a", weight=0), ch("b", weight=1)]})
    assert pick_many(router, "m", 200) == Counter({"b": 200})


def test_a_lower_priority_is_never_used_while_a_preferred_entry_is_available(make_router) -> None:
    router = make_router({"m": [ch("a"), ch("b"), ch("backup", priority=1)]})
    assert "backup" not in pick_many(router, "m", 500)


def test_a_lower_priority_is_used_when_every_preferred_entry_is_unavailable(make_router) -> None:
    router = make_router(
        {"m": [ch("a"), ch("b"), ch("backup", priority=1)]}, breaker=BreakerPolicy(failures=1)
    )
    for _ in range(2):  # one connection error each opens both preferred breakers
        attempts = router.plan("m")
        assert attempts.next().name in {"a", "b"}
        attempts.record_failure(CONNECT_FAILED)
    assert router.plan("m").next().name == "backup"


def test_a_channel_the_limiter_refuses_is_skipped(make_router) -> None:
    router = make_router({"m": [ch("a", weight=100), ch("b", weight=1)]})
    asked: list[str] = []

    def admit(channel) -> bool:
        asked.append(channel.name)
        return channel.name != "a"

    assert router.plan("m").next(admit).name == "b"


def test_the_limiter_is_asked_only_about_the_channel_about_to_be_used(make_router) -> None:
    router = make_router({"m": [ch("a"), ch("b"), ch("c")]})
    asked: list[str] = []

    def admit(channel) -> bool:
        asked.append(channel.name)
        return True

    chosen = router.plan("m").next(admit)
    assert asked == [chosen.name]


def test_every_channel_over_its_limit_answers_429(make_router) -> None:
    router = make_router({"m": [ch("a"), ch("b", priority=1)]})
    answer = router.plan("m").next(lambda channel: False)
    assert isinstance(answer, NoChannel) and answer.status == 429


def test_least_busy_picks_the_channel_with_fewest_requests_in_flight(make_router) -> None:
    router = make_router({"m": [ch("a"), ch("b"), ch("c")]}, strategy="least_busy")
    held = [router.plan("m") for _ in range(2)]
    busy = {attempts.next().name for attempts in held}  # two in flight on two channels
    idle = ({"a", "b", "c"} - busy).pop()
    assert router.plan("m").next().name == idle


def test_least_busy_counts_a_finished_request_as_no_longer_busy(make_router) -> None:
    router = make_router({"m": [ch("a"), ch("b")]}, strategy="least_busy")
    first = router.plan("m")
    first_name = first.next().name
    second = router.plan("m")
    assert second.next().name != first_name
    first.record_success(0.1)
    assert router.plan("m").next().name == first_name  # the second is still in flight


def test_lowest_latency_prefers_the_faster_channel(make_router) -> None:
    router = make_router({"m": [ch("slow"), ch("fast")]}, strategy="lowest_latency")
    for name, latency in (("slow", 0.9), ("fast", 0.2)):
        while True:  # unmeasured channels go first; feed each one a sample
            attempts = router.plan("m")
            if attempts.next().name == name:
                attempts.record_success(latency)
                break
            attempts.record_cancelled()
    assert pick_many_with_latency(router, {"slow": 0.9, "fast": 0.2}, 50) == Counter({"fast": 50})


def pick_many_with_latency(router: Router, latency: dict[str, float], n: int) -> Counter[str]:
    seen: Counter[str] = Counter()
    for _ in range(n):
        attempts = router.plan("m")
        name = attempts.next().name
        seen[name] += 1
        attempts.record_success(latency[name])
    return seen


def test_lowest_latency_follows_a_channel_that_became_slow(make_router) -> None:
    router = make_router({"m": [ch("a"), ch("b")]}, strategy="lowest_latency")
    pick_many_with_latency(router, {"a": 0.1, "b": 0.3}, 10)
    seen = pick_many_with_latency(router, {"a": 2.0, "b": 0.3}, 20)
    assert seen["b"] > seen["a"]


def test_lowest_latency_uses_time_to_first_byte_for_streams(make_router) -> None:
    router = make_router({"m": [ch("a")]}, strategy="lowest_latency")
    attempts = router.plan("m")
    attempts.next()
    attempts.record_first_byte(0.05)
    attempts.record_success(30.0)  # a long stream: its length says nothing about the upstream
    assert router.snapshot()["channels"][0]["ewma_latency_s"] == pytest.approx(0.05)


def test_an_unknown_strategy_is_refused_with_the_valid_names() -> None:
    with pytest.raises(ValueError, match="weighted"):
        Router({"m": [ch("a")]}, strategy="fastest")


def test_an_unknown_model_answers_404(make_router) -> None:
    answer = make_router({"m": [ch("a")]}).plan("nope").next()
    assert isinstance(answer, NoChannel) and (answer.status, answer.reason) == (404, "unknown_model")


def test_channels_made_from_config_share_health_by_upstream_model() -> None:
    assert Channel.of("openai", "gpt-4o-mini", weight=3).name == "openai/gpt-4o-mini"
    router = Router(
        {
            "gpt-4o-mini": [Channel.of("openai", "gpt-4o-mini", 3)],
            "cheap": [Channel.of("openai", "gpt-4o-mini")],
        }
    )
    assert len(router.snapshot()["channels"]) == 1


class NoDraws(random.Random):
    """A Random that fails the test if anything draws from it."""

    def random(self) -> float:
        raise AssertionError("a random draw was made")


def test_a_single_channel_model_makes_no_random_draw() -> None:
    router = Router({"m": [ch("a")]}, rng=NoDraws())
    for _ in range(3):
        attempts = router.plan("m")
        assert attempts.next().name == "a"
        attempts.record_success(0.1)


def test_a_single_usable_channel_left_in_a_priority_makes_no_random_draw() -> None:
    router = Router({"m": [ch("a"), ch("b", priority=1)]}, rng=NoDraws())
    attempts = router.plan("m")
    assert attempts.next().name == "a"


def test_lowest_latency_ranks_a_channel_that_never_succeeded_last(make_router) -> None:
    router = make_router({"m": [ch("broken"), ch("ok")]}, strategy="lowest_latency")
    for _ in range(2):  # untried channels go first, so these two requests try both
        attempts = router.plan("m")
        if attempts.next().name == "broken":
            attempts.record_failure(CONNECT_FAILED)
        else:
            attempts.record_success(0.5)
    assert [c["requests"] for c in router.snapshot()["channels"]] == [1, 1]
    assert [router.plan("m").next().name for _ in range(3)] == ["ok", "ok", "ok"]


@pytest.mark.parametrize("strategy", ["least_busy", "lowest_latency"])
def test_a_zero_weight_channel_is_a_last_resort_under_every_strategy(make_router, strategy: str) -> None:
    router = make_router({"m": [ch("drained", weight=0), ch("live")]}, strategy=strategy)
    held = router.plan("m")
    assert held.next().name == "live"
    assert router.plan("m").next().name == "live"  # even though "drained" is idle
