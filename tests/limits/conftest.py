"""Fixtures for the limiter tests: limiters over the real Redis, each test in its own key prefix."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
import redis

from sluicegate.limits import Limiter, MemoryLimiter, RedisLimiter

REDIS_URL = os.environ.get("SLUICEGATE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def _delete_prefix(url: str, prefix: str) -> None:
    client = redis.Redis.from_url(url)
    try:
        keys = list(client.scan_iter(match=prefix + "*", count=500))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


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
        opts.setdefault("socket_timeout", 2.0)
        opts.setdefault("connect_timeout", 2.0)
        limiter = RedisLimiter.from_url(url, **opts)
        made.append(limiter)
        return limiter

    yield make
    for limiter in made:
        await limiter.close()
    _delete_prefix(REDIS_URL, prefix)


@pytest.fixture(params=["memory", "redis"])
async def limiter(request: pytest.FixtureRequest,
                  redis_limiter_factory: Callable[..., RedisLimiter]) -> AsyncIterator[Limiter]:
    """Each backend in turn: behaviour promised by the `Limiter` interface holds for both."""
    if request.param == "memory":
        yield MemoryLimiter()
    else:
        yield redis_limiter_factory()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PrivateRedis:
    """A redis-server of our own, to stop, restart and flush without disturbing anyone else."""

    def __init__(self, tmp: str) -> None:
        self.port = _free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._tmp = tmp
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self._proc = subprocess.Popen(
            [shutil.which("redis-server") or "redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no", "--dir", self._tmp],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.1):
                    return
            except OSError:
                time.sleep(0.01)
        raise RuntimeError("private redis-server did not start")

    def stop(self) -> None:
        if self._proc is not None:
            self._proc.terminate()
            self._proc.wait(5)
            self._proc = None

    def command(self, *args: Any) -> Any:
        client = redis.Redis(port=self.port)
        try:
            return client.execute_command(*args)
        finally:
            client.close()


@pytest.fixture
def private_redis(tmp_path: Any) -> Iterator[PrivateRedis]:
    """A running private redis-server, stopped at teardown."""
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")
    server = PrivateRedis(str(tmp_path))
    server.start()
    yield server
    server.stop()


