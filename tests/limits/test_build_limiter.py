"""The factory picks the backend from configuration: Redis when a URL is given, memory otherwise."""

from __future__ import annotations

from redis_support import REDIS_URL

from sluicegate.limits import Limiter, MemoryLimiter, RedisLimiter, build_limiter


async def test_without_a_redis_url_the_limiter_is_in_memory() -> None:
    limiter = build_limiter(None, sweep_interval=30.0)
    assert isinstance(limiter, MemoryLimiter) and isinstance(limiter, Limiter)


async def test_with_a_redis_url_the_limiter_is_shared_through_redis(prefix: str) -> None:
    limiter = build_limiter(REDIS_URL, prefix=prefix, lease_ttl=30.0)
    try:
        assert isinstance(limiter, RedisLimiter) and isinstance(limiter, Limiter)
    finally:
        await limiter.close()
