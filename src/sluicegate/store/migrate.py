"""Applying the versioned schema migrations (alembic) from code, without an alembic.ini.

The gateway calls `upgrade(url)` on start and `sluicegate db upgrade` calls it by hand; both are
safe to repeat. On PostgreSQL the whole upgrade runs in one transaction under an advisory lock, and
on SQLite under `BEGIN IMMEDIATE`, so several workers starting at once migrate exactly once.

A database already at `HEAD` is recognised with one query and alembic is not even imported:
that import costs more than half a second, which every CLI command and worker start would pay.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import inspect, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from sluicegate.store.engine import create_engine

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
# The newest revision in migrations/versions/; a test keeps it equal to alembic's own head.
HEAD = "0008"
_PG_LOCK_KEY = 5_117_226_377  # arbitrary constant naming the "sluicegate migrations" lock


def alembic_config() -> Config:
    """The alembic configuration, built in code so no alembic.ini has to ship or be found."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def head_revision() -> str:
    """The newest migration shipped, as alembic reads it from the scripts."""
    from alembic.script import ScriptDirectory

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
            if await _stored_revision(conn) == HEAD:
                return HEAD
            await conn.rollback()
            if conn.dialect.name == "sqlite":
                await conn.exec_driver_sql("BEGIN IMMEDIATE")
            else:
                await conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_PG_LOCK_KEY})")
            await conn.run_sync(_upgrade_sync)
            await conn.commit()
            return await _stored_revision(conn) or ""
    finally:
        if own:
            await engine.dispose()


async def current(url: str) -> str | None:
    """The revision the database at `url` is at, or None if it was never migrated."""
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            return await _stored_revision(conn)
    finally:
        await engine.dispose()


async def _stored_revision(conn: AsyncConnection) -> str | None:
    if not await conn.run_sync(lambda sync: inspect(sync).has_table("alembic_version")):
        return None
    return (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalar()


def _upgrade_sync(connection: Any) -> None:
    from alembic import command

    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, "head")
