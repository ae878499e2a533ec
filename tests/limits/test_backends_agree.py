"""The Lua scripts mirror the Python algorithms: both backends answer a random workload alike."""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest

from sluicegate.limits import Admission, Limiter, MemoryLimiter, Quota, RedisLimiter, Refusal, demands_for

T0 = 1_764_115_200.0 - 300  # five minutes before a UTC midnight

QUOTAS = [
    Quota.rate("key:k1", "requests", 7, "minute"),
    Quota.rate("key:k1", "tokens", 3000, "minute"),
    Quota.concurrency("key:k1", 3),
    Quota.budget("key:k1", "tokens", 9000, "day"),
    Quota.budget("key:k1", "cost", 2.0, "month"),
    Quota.rate("model:m1", "requests", 11, "minute"),
    Quota.rate("channel:c1", "tokens", 5000, "minute"),
]


def outcome(result: Admission | Refusal) -> tuple[object, ...]:
    statuses = tuple(
        None if s is None else (s.limit, s.remaining, round(s.reset, 3))
        for s in (result.requests, result.tokens)
    )
    if isinstance(result, Admission):
        return ("admitted", statuses)
    retry = None if result.retry_after is None else round(result.retry_after, 3)
    return ("refused", result.quota, result.reason, retry, statuses)


async def run_workload(limiter: Limiter, seed: int) -> list[tuple[object, ...]]:
    rng = random.Random(seed)
    now, held, log = T0, [], []
    for _ in range(300):
        now += rng.choice([0.0, 0.0, 0.5, 1.7, 6.0])
        if held and rng.random() < 0.4:
            admission = held.pop(rng.randrange(len(held)))
            if rng.random() < 0.2:
                await limiter.release(admission, now=now)
            else:
                await limiter.settle(
                    admission, {"tokens": rng.randint(0, 1500), "cost": rng.random() / 20}, now=now
                )
            continue
        quotas = rng.sample(QUOTAS, rng.randint(1, len(QUOTAS)))
        tokens = 3500.0 if rng.random() < 0.03 else float(rng.randint(1, 1200))  # 3500: too large
        estimate = {"tokens": tokens, "cost": rng.random() / 25}
        result = await limiter.acquire(demands_for(quotas, estimate), now=now)
        log.append(outcome(result))
        if isinstance(result, Admission):
            held.append(result)
    return log


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_memory_and_redis_answer_a_random_workload_identically(
    seed: int,
    redis_limiter_factory: Callable[..., RedisLimiter],
) -> None:
    expected = await run_workload(MemoryLimiter(), seed)
    actual = await run_workload(redis_limiter_factory(lease_ttl=3600), seed)
    assert sum(1 for o in expected if o[0] == "refused") > 20  # the workload does reach the limits
    assert actual == expected
