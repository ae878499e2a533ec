"""Applying the versioned schema migrations (alembic) from code, without an alembic.ini.

The gateway calls `upgrade(url)` on start and `sluicegate db upgrade` calls it by hand; both are
safe to repeat. On PostgreSQL the whole upgrade runs in one transaction under an advisory lock, and
on SQLite under `BEGIN IMMEDIATE`, so several workers starting at once migrate exactly once.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.ext.asyncio import AsyncEngine

from sluicegate.store.engine import create_engine

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
_PG_LOCK_KEY = 5_117_226_377  # arbitrary constant naming the "sluicegate migrations" lock


def alembic_config() -> Config:
    """The alembic configuration, built in code so no alembic.ini has to ship or be found."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def head_revision() -> str:
    """The newest migration this version of Sluicegate knows."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None, "no migrations shipped"
    return head


async def upgrade(url: str, engine: AsyncEngine | None = None) -> str:
    """Bring the database at `url` to the newest schema; returns the revision it is at.

    Pass `engine` to reuse an open one (the Store does); otherwise a short-lived engine is made.
    """
    own = engine is None
    engine = engine or create_engine(url)
    try:
        async with engine.connect() as conn:
            if conn.dialect.name == "sqlite":
                await conn.exec_driver_sql("BEGIN IMMEDIATE")
            else:
                await conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_PG_LOCK_KEY})")
            await conn.run_sync(_upgrade_sync)
            await conn.commit()
            return await conn.run_sync(_current_sync) or ""
    finally:
        if own:
            await engine.dispose()


async def current(url: str) -> str | None:
    """The revision the database at `url` is at, or None if it was never migrated."""
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(_current_sync)
    finally:
        await engine.dispose()


def _upgrade_sync(connection: Any) -> None:
    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


def _current_sync(connection: Any) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()
