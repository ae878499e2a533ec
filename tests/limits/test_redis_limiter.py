"""The Redis backend: exact across processes, one round trip per call, leases that expire."""

from __future__ import annotations

import asyncio
import calendar
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import pytest
import redis
from redis.asyncio import Redis
from redis_support import REDIS_URL, delete_prefix

from sluicegate.limits import Admission, Quota, RedisLimiter, Refusal, demands_for

RPM_30 = Quota.rate("key:k1", "requests", 30, "minute")
TPM = Quota.rate("key:k1", "tokens", 10_000, "minute")
DAY_USD = Quota.budget("key:k1", "cost", 5.0, "day")
SLOTS_1 = Quota.concurrency("key:k1", 1)
MODEL_RPM = Quota.rate("model:m1", "requests", 100, "minute")


class CountingRedis(Redis):
    """A real client that counts the commands it sends (one per round trip here)."""

    sent: list[str]

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        self.sent.append(str(args[0]))
        return await super().execute_command(*args, **options)


async def test_two_limiters_with_separate_pools_admit_exactly_30_of_100_interleaved(
    redis_limiter_factory: Callable[..., RedisLimiter],
) -> None:
    a, b = redis_limiter_factory(max_connections=4), redis_limiter_factory(max_connections=4)
    demands = demands_for([RPM_30], {})
    results = await asyncio.gather(*((a if i % 2 else b).acquire(demands) for i in range(100)))
    assert sum(r.admitted for r in results) == 30


async def test_two_processes_taking_turns_share_one_40_per_minute_limit(
    redis_limiter_factory: Callable[..., RedisLimiter],
) -> None:
    a, b = redis_limiter_factory(), redis_limiter_factory()
    demands = demands_for([Quota.rate("key:k1", "requests", 40, "minute")], {})
    admitted = 0
    for i in range(100):
        result = await (a if i % 2 else b).acquire(demands)
        admitted += result.admitted
    assert admitted == 40


async def test_a_check_and_a_settle_are_one_round_trip_each(prefix: str) -> None:
    client = CountingRedis.from_url(REDIS_URL)
    client.sent = []
    limiter = RedisLimiter(client, prefix=prefix)
    try:
        admission = await limiter.acquire(
            demands_for([RPM_30, TPM, DAY_USD, SLOTS_1, MODEL_RPM], {"tokens": 500, "cost": 0.1})
        )
        assert isinstance(admission, Admission)
        assert client.sent == ["EVALSHA"] or client.sent == ["EVALSHA", "EVAL"]  # EVAL: first load only
        client.sent.clear()
        await limiter.settle(admission, {"tokens": 200, "cost": 0.04})
        assert client.sent == ["EVALSHA"]
    finally:
        await client.aclose()
        delete_prefix(REDIS_URL, prefix)


async def test_a_settle_with_nothing_to_correct_sends_nothing(prefix: str) -> None:
    client = CountingRedis.from_url(REDIS_URL)
    client.sent = []
    limiter = RedisLimiter(client, prefix=prefix)
    try:
        admission = await limiter.acquire(demands_for([RPM_30, TPM], {"tokens": 500}))
        assert isinstance(admission, Admission)
        client.sent.clear()
        await limiter.settle(admission, {"tokens": 500})
        assert client.sent == []
    finally:
        await client.aclose()
        delete_prefix(REDIS_URL, prefix)


async def test_a_crashed_processs_slot_comes_back_after_the_lease_ttl(
    redis_limiter_factory: Callable[..., RedisLimiter],
) -> None:
    crashed, survivor = redis_limiter_factory(lease_ttl=0.3), redis_limiter_factory(lease_ttl=0.3)
    demands = demands_for([SLOTS_1], {})
    assert (await crashed.acquire(demands)).admitted
    await crashed.close()  # gone without releasing
    assert not (await survivor.acquire(demands)).admitted
    deadline = time.monotonic() + 5  # the lease lapses 0.3 s after its last renewal; polled, not slept
    while not (await survivor.acquire(demands)).admitted:
        assert time.monotonic() < deadline, "the crashed process's slot never came back"
        await asyncio.sleep(0.02)


async def test_renew_keeps_a_long_request_slot_past_the_lease_ttl(
    redis_limiter_factory: Callable[..., RedisLimiter],
) -> None:
    # A TTL well above the renewal period: a loaded box may stretch a 0.2 s sleep by a second.
    limiter = redis_limiter_factory(lease_ttl=1.5)
    demands = demands_for([SLOTS_1], {})
    streaming = await limiter.acquire(demands)
    assert isinstance(streaming, Admission)
    started = time.monotonic()
    while time.monotonic() - started < 2.0:  # past the TTL, renewed every 0.2 s
        await asyncio.sleep(0.2)
        assert await limiter.renew(streaming)
    assert not (await limiter.acquire(demands)).admitted


async def test_renew_reports_a_lease_already_reclaimed(
    redis_limiter_factory: Callable[..., RedisLimiter],
) -> None:
    limiter = redis_limiter_factory(lease_ttl=0.2)
    stalled = await limiter.acquire(demands_for([SLOTS_1], {}))
    assert isinstance(stalled, Admission)
    await asyncio.sleep(0.25)
    assert (await limiter.acquire(demands_for([SLOTS_1], {}))).admitted  # someone else took it
    assert not await limiter.renew(stalled)


async def test_budget_counters_expire_after_their_period_plus_grace(
    redis_limiter_factory: Callable[..., RedisLimiter],
    prefix: str,
) -> None:
    limiter = redis_limiter_factory(budget_grace=3600)
    noon = calendar.timegm((2026, 11, 25, 12, 0, 0)) + 0.0
    await limiter.acquire(demands_for([DAY_USD], {"cost": 1.0}), now=noon)
    client = redis.Redis.from_url(REDIS_URL)
    try:
        key = f"{prefix}{DAY_USD.key}:d20261125"
        assert float(client.get(key)) == 1.0
        assert client.pttl(key) == pytest.approx((12 + 1) * 3600 * 1000, abs=2000)
    finally:
        client.close()


async def test_a_total_budget_counter_never_expires(
    redis_limiter_factory: Callable[..., RedisLimiter],
    prefix: str,
) -> None:
    total = Quota.budget("key:k1", "tokens", 10_000, "total")
    limiter = redis_limiter_factory()
    await limiter.seed(total, 250)
    await limiter.acquire(demands_for([total], {"tokens": 100}))
    client = redis.Redis.from_url(REDIS_URL)
    try:
        key = f"{prefix}{total.key}:total"
        assert (float(client.get(key)), client.pttl(key)) == (350.0, -1)
    finally:
        client.close()


async def test_rate_counters_expire_once_full_again(
    redis_limiter_factory: Callable[..., RedisLimiter],
    prefix: str,
) -> None:
    limiter = redis_limiter_factory()
    await limiter.acquire(demands_for([RPM_30], {}))
    client = redis.Redis.from_url(REDIS_URL)
    try:
        assert 0 < client.pttl(f"{prefix}{RPM_30.key}") <= 2001
    finally:
        client.close()


async def test_a_refusal_from_redis_names_the_quota(
    redis_limiter_factory: Callable[..., RedisLimiter],
) -> None:
    limiter = redis_limiter_factory()
    await limiter.seed(DAY_USD, 5.0)
    refusal = await limiter.acquire(demands_for([RPM_30, DAY_USD], {"cost": 0.01}))
    assert isinstance(refusal, Refusal) and refusal.quota == DAY_USD


WORKER = """
import asyncio, sys
from sluicegate.limits import Quota, RedisLimiter, demands_for

async def main(url, prefix, n):
    limiter = RedisLimiter.from_url(url, prefix=prefix, socket_timeout=5.0, connect_timeout=5.0,
                                    max_connections=4)
    demands = demands_for([Quota.rate("key:k1", "requests", 40, "minute")], {})
    sys.stdin.readline()  # start together
    results = await asyncio.gather(*(limiter.acquire(demands) for _ in range(n)))
    await limiter.close()
    print(sum(r.admitted for r in results))

asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
"""


def test_two_os_processes_hammering_one_key_admit_exactly_40_in_total(prefix: str) -> None:
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, REDIS_URL, prefix, "60"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    try:
        for p in procs:  # both start their 60 concurrent checks at once
            assert p.stdin is not None
            p.stdin.write("go\n")
            p.stdin.flush()
        outputs = [p.communicate(timeout=60)[0] for p in procs]
        assert sum(int(out) for out in outputs) == 40
    finally:
        for p in procs:
            p.kill()
        delete_prefix(REDIS_URL, prefix)


async def test_callers_beyond_the_pool_size_are_served_in_turn_not_starved(
    redis_limiter_factory: Callable[..., RedisLimiter],
) -> None:
    limiter = redis_limiter_factory(max_connections=2, socket_timeout=1.0)
    demands = demands_for([Quota.rate("key:k1", "requests", 1e9, "minute"), SLOTS_1], {})

    async def worker() -> int:
        for _ in range(60):  # a caller that releases and immediately asks again, like a busy server
            admission = await limiter.acquire(demands)
            if isinstance(admission, Admission):
                await limiter.release(admission)
        return 1

    assert sum(await asyncio.gather(*(worker() for _ in range(12)))) == 12
