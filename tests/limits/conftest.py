"""Fixtures for the limiter tests: limiters over the real Redis, each test in its own key prefix."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
from redis_support import REDIS_URL, PrivateRedis, delete_prefix

from sluicegate.limits import Limiter, MemoryLimiter, RedisLimiter


@pytest.fixture
def prefix() -> str:
    """A key prefix no other test (or engineer) uses."""
    return f"test:limits:{uuid.uuid4().hex[:12]}:"


@pytest.fixture
async def redis_limiter_factory(prefix: str) -> AsyncIterator[Callable[..., RedisLimiter]]:
    """`make(**opts)` builds a RedisLimiter with its own connection pool, sharing this test's prefix."""
    made: list[RedisLimiter] = []

    def make(url: str = REDIS_URL, **opts: Any) -> RedisLimiter:
        opts.setdefault("prefix", prefix)
        # Generous timeouts: these tests share two cores with everyone else's; the fail-fast
        # tests point at a closed port or a stopped server, which fail at once whatever the timeout.
        opts.setdefault("socket_timeout", 5.0)
        opts.setdefault("connect_timeout", 5.0)
        limiter = RedisLimiter.from_url(url, **opts)
        made.append(limiter)
        return limiter

    yield make
    for limiter in made:
        await limiter.close()
    delete_prefix(REDIS_URL, prefix)


@pytest.fixture(params=["memory", "redis"])
async def limiter(
    request: pytest.FixtureRequest, redis_limiter_factory: Callable[..., RedisLimiter]
) -> AsyncIterator[Limiter]:
    """Each backend in turn: behaviour promised by the `Limiter` interface holds for both."""
    if request.param == "memory":
        yield MemoryLimiter()
    else:
        yield redis_limiter_factory()


@pytest.fixture
def private_redis(tmp_path: Any) -> Iterator[PrivateRedis]:
    """A running private redis-server, stopped at teardown."""
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")
    server = PrivateRedis(str(tmp_path))
    server.start()
    yield server
    server.stop()
