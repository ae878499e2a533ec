"""Scale-out fixtures: one PostgreSQL database and one Redis database shared by several real gateways.

- `pg_url`: a PostgreSQL database of this session's own, created from `postgres` and dropped after
  (server from SLUICEGATE_TEST_PG, default postgresql://postgres@127.0.0.1:5432).
- `redis_url`: a Redis database number of our own on the shared server (SLUICEGATE_TEST_REDIS_DB,
  default 7), flushed before and after; nothing else on that server is touched.
- `PrivateRedis` (scaleout_kit.py): a redis-server process of the test's own, to kill and restart.
- `scaleout_config(...)`: a gateway configuration over the stand-in upstream on that store and Redis.
- `create_key(config_path, ...)`: `sluicegate keys create ... --json` through the real CLI.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
import redis
from support.pg import fresh_postgres_database

REDIS_DB = int(os.environ.get("SLUICEGATE_TEST_REDIS_DB", "7"))
REDIS_SERVER = os.environ.get("SLUICEGATE_TEST_REDIS", "redis://127.0.0.1:6379")


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """postgresql://... of a fresh database, dropped (with its connections) at the end."""
    with fresh_postgres_database("sg_scaleout") as url:
        yield url


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """redis://.../N on the shared server, our database number only, flushed before and after."""
    url = f"{REDIS_SERVER}/{REDIS_DB}"
    client = redis.Redis.from_url(url)
    try:
        client.flushdb()
    except redis.RedisError as exc:
        pytest.skip(f"Redis at {url} is not usable: {exc}")
    yield url
    client.flushdb()
    client.close()
