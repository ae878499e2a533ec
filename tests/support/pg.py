"""Throwaway PostgreSQL databases on this machine's server, one per test module or test.

Tests use the real PostgreSQL (never a mock); each gets its own uniquely named database so suites
running side by side cannot collide, dropped afterwards with its connections (WITH (FORCE)).
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import asyncpg

PG_SERVER = os.environ.get("SLUICEGATE_TEST_PG", "postgresql://postgres@127.0.0.1:5432")


async def pg_admin(sql: str) -> None:
    conn = await asyncpg.connect(f"{PG_SERVER}/postgres")
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def create_postgres_database(prefix: str) -> tuple[str, str]:
    """A new, uniquely named, empty database: (name, URL)."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    asyncio.run(pg_admin(f'CREATE DATABASE "{name}"'))
    return name, f"{PG_SERVER}/{name}"


def drop_postgres_database(name: str) -> None:
    asyncio.run(pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@contextmanager
def fresh_postgres_database(prefix: str = "sg_test") -> Iterator[str]:
    """A new, empty database for the duration of the block; yields its URL."""
    name, url = create_postgres_database(prefix)
    try:
        yield url
    finally:
        drop_postgres_database(name)
