"""When Redis fails: one exception, raised fast; recovery without help when Redis is back."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable

from redis_support import PrivateRedis

from sluicegate.limits import Admission, LimiterUnavailable, Quota, RedisLimiter, demands_for

DEMANDS = demands_for([Quota.rate("key:k1", "requests", 30, "minute"), Quota.concurrency("key:k1", 5)], {})


async def _unavailable_within(limiter: RedisLimiter, seconds: float) -> bool:
    started = time.perf_counter()
    try:
        await limiter.acquire(DEMANDS)
    except LimiterUnavailable:
        return time.perf_counter() - started < seconds
    return False


async def test_a_closed_port_raises_limiter_unavailable_at_once(
    redis_limiter_factory: Callable[..., RedisLimiter],
) -> None:
    limiter = redis_limiter_factory("redis://127.0.0.1:1/0")
    assert await _unavailable_within(limiter, 0.5)


async def test_a_server_that_never_answers_raises_limiter_unavailable_after_the_socket_timeout(
    redis_limiter_factory: Callable[..., RedisLimiter],
) -> None:
    with socket.socket() as silent:  # accepts connections (backlog) but never replies
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        url = f"redis://127.0.0.1:{port}/0"
        limiter = redis_limiter_factory(url, socket_timeout=0.2, connect_timeout=0.2)
        assert await _unavailable_within(limiter, 1.0)


async def test_settle_and_seed_fail_the_same_way(
    redis_limiter_factory: Callable[..., RedisLimiter],
    private_redis: PrivateRedis,
) -> None:
    limiter = redis_limiter_factory(private_redis.url)
    admission = await limiter.acquire(DEMANDS)
    assert isinstance(admission, Admission)
    private_redis.stop()
    for call in (limiter.settle(admission, {}), limiter.seed(Quota.budget("key:k1", "cost", 1, "day"), 0.5)):
        try:
            await call
        except LimiterUnavailable:
            continue
        raise AssertionError("expected LimiterUnavailable")


async def test_the_script_cache_is_refilled_after_script_flush(
    redis_limiter_factory: Callable[..., RedisLimiter],
    private_redis: PrivateRedis,
) -> None:
    limiter = redis_limiter_factory(private_redis.url)
    assert (await limiter.acquire(DEMANDS)).admitted
    private_redis.command("SCRIPT", "FLUSH")
    admission = await limiter.acquire(DEMANDS)
    assert isinstance(admission, Admission)
    private_redis.command("SCRIPT", "FLUSH")
    await limiter.settle(admission, {})


async def test_the_limiter_recovers_by_itself_when_redis_comes_back(
    redis_limiter_factory: Callable[..., RedisLimiter],
    private_redis: PrivateRedis,
) -> None:
    limiter = redis_limiter_factory(private_redis.url)
    assert (await limiter.acquire(DEMANDS)).admitted
    private_redis.stop()
    assert await _unavailable_within(limiter, 0.5)
    private_redis.start()  # an empty server: no scripts, no counters
    assert (await limiter.acquire(DEMANDS)).admitted
