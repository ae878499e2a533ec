"""Versioned migrations: applied on open, repeatable, concurrent-safe, and equal to the code's tables."""

from __future__ import annotations

import asyncio

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, select

from sluicegate.store import Store
from sluicegate.store.engine import create_engine
from sluicegate.store.migrate import HEAD, current, head_revision, upgrade
from sluicegate.store.schema import metadata, revision


async def test_a_new_database_is_not_migrated(empty_db_url: str) -> None:
    assert await current(empty_db_url) is None


async def test_upgrade_brings_the_database_to_the_newest_revision(empty_db_url: str) -> None:
    assert await upgrade(empty_db_url) == head_revision()
    assert await current(empty_db_url) == head_revision()


async def test_upgrade_twice_changes_nothing(empty_db_url: str) -> None:
    await upgrade(empty_db_url)
    async with await Store.open(empty_db_url) as store:
        await store.keys.create({"name": "kept"})
    assert await upgrade(empty_db_url) == head_revision()
    async with await Store.open(empty_db_url) as store:
        assert [k.name for k in await store.keys.list()] == ["kept"]
        assert await store.keys.revision() == 1


async def test_workers_starting_together_migrate_once(empty_db_url: str) -> None:
    results = await asyncio.gather(*(upgrade(empty_db_url) for _ in range(4)))
    assert results == [head_revision()] * 4
    engine = create_engine(empty_db_url)
    try:
        async with engine.connect() as conn:
            rows = (await conn.execute(select(revision.c.id, revision.c.value).order_by(revision.c.id))).all()
            assert rows == [(1, 0), (2, 0)]  # keys, configuration
    finally:
        await engine.dispose()


async def test_the_migrated_schema_matches_the_tables_the_code_uses(empty_db_url: str) -> None:
    await upgrade(empty_db_url)
    engine = create_engine(empty_db_url)
    try:
        async with engine.connect() as conn:
            diff = await conn.run_sync(
                lambda sync: compare_metadata(MigrationContext.configure(sync), metadata)
            )
            tables = await conn.run_sync(lambda sync: set(inspect(sync).get_table_names()))
    finally:
        await engine.dispose()
    assert diff == []
    assert {
        "api_keys",
        "revision",
        "request_logs",
        "usage_daily",
        "owned_objects",
        "leases",
        "users",
        "teams",
        "team_members",
        "groups",
        "group_models",
        "balances",
        "ledger",
        "redemption_codes",
        "sessions",
        "alembic_version",
    } <= tables


def test_the_head_the_store_checks_for_is_the_newest_migration_shipped() -> None:
    assert HEAD == head_revision()
