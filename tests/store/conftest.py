"""Store fixtures: every repository test runs on a SQLite file and on a fresh PostgreSQL database."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest
from support.pg import fresh_postgres_database

from sluicegate.store import Store
from sluicegate.store.migrate import upgrade


class Clock:
    """A settable clock handed to the repositories, so expiry and retention tests need no sleeping."""

    def __init__(self, now: float = 1_790_000_000.0) -> None:  # 2026-09-21T13:33:20Z
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of a database nobody has migrated: a new SQLite path, or a new PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'data' / 'sluicegate.db'}"
    else:
        with fresh_postgres_database("sg_store") as url:
            yield url


@pytest.fixture(scope="module")
def postgres_module_url() -> Iterator[str]:
    """One migrated PostgreSQL database per test module (creating one per test costs ~0.3 s)."""
    with fresh_postgres_database("sg_store") as url:
        asyncio.run(upgrade(url))
        yield url


async def _empty(url: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(
            "TRUNCATE api_keys, request_logs, usage_daily, responses, owned_objects, leases, users, teams, "
            "team_members, balances, ledger, redemption_codes, group_models, sessions RESTART IDENTITY; "
            "DELETE FROM groups WHERE name <> 'default'; UPDATE revision SET value = 0"
        )
    finally:
        await conn.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of a migrated, empty database: a new SQLite file, or this module's PostgreSQL
    database emptied for the test."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'data' / 'sluicegate.db'}"
    url: str = request.getfixturevalue("postgres_module_url")
    asyncio.run(_empty(url))
    return url


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def store(db_url: str, clock: Clock) -> AsyncIterator[Store]:
    """A migrated store on `db_url` whose repositories read time from `clock`."""
    opened = await Store.open(db_url, clock=clock)
    try:
        yield opened
    finally:
        await opened.close()
