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

import asyncio
import os
import uuid
from collections.abc import Iterator

import asyncpg
import pytest
import redis

PG_SERVER = os.environ.get("SLUICEGATE_TEST_PG", "postgresql://postgres@127.0.0.1:5432")
REDIS_DB = int(os.environ.get("SLUICEGATE_TEST_REDIS_DB", "7"))
REDIS_SERVER = os.environ.get("SLUICEGATE_TEST_REDIS", "redis://127.0.0.1:6379")


async def _pg_admin(sql: str) -> None:
    conn = await asyncpg.connect(f"{PG_SERVER}/postgres")
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """postgresql://... of a fresh database, dropped (with its connections) at the end."""
    name = f"sg_scaleout_{uuid.uuid4().hex[:10]}"
    try:
        asyncio.run(_pg_admin(f'CREATE DATABASE "{name}"'))
    except (OSError, asyncpg.PostgresError) as exc:
        pytest.skip(f"PostgreSQL at {PG_SERVER} is not usable: {exc}")
    yield f"{PG_SERVER}/{name}"
    asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


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
