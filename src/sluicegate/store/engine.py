"""Database URLs and engines: one async SQLAlchemy code path for SQLite and PostgreSQL.

Users write the URLs they know (`sqlite:///gate.db`, `postgresql://user@host/db`); the store needs
the async drivers (aiosqlite, asyncpg). SQLite is tuned for a gateway with several worker
processes on one file: WAL so readers never block the writer, and a busy timeout so concurrent
writers wait instead of failing.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

SQLITE_BUSY_TIMEOUT_MS = 10_000

# sqlite3 binds exact int, float, str and bytearray parameters directly; any other value (None, bytes,
# bool) first goes through its adapter lookup, which on a miss raises and formats two AttributeErrors
# (`__adapt__`, `__conform__`) before binding the value as it is: ~1,200 instructions a parameter, ~16
# parameters a request-log row (~2 % of a governed request, bench/README.md "Instructions per request, issue 16").
# An adapter that returns the same value makes the lookup a dict hit and one C call; what is stored is
# unchanged (None is NULL, bytes a blob, a bool its int).
sqlite3.register_adapter(type(None), {}.get)  # type: ignore[arg-type]  # {}.get(None) is None
sqlite3.register_adapter(bytes, bytes)  # bytes(b) is b for an exact bytes object
sqlite3.register_adapter(bool, int)

_SCHEME_DRIVERS = {
    "sqlite": "sqlite+aiosqlite",
    "postgresql": "postgresql+asyncpg",
    "postgres": "postgresql+asyncpg",
}


def upsert_insert(dialect: str) -> Any:
    """The dialect's own `insert` (it has `on_conflict_do_update`), imported for the dialect in use:
    PostgreSQL's dialect package is ~2 MB a worker that logs to SQLite has no use for."""
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert


class InvalidDatabaseURL(ValueError):
    """The `database:` setting is not a SQLite or PostgreSQL URL the store can use."""


def normalise_url(url: str) -> str:
    """The async-driver form of a user's database URL.

    `sqlite:///x.db` becomes `sqlite+aiosqlite:///x.db`; `postgresql://` and `postgres://` become
    `postgresql+asyncpg://`. URLs that already name an async driver pass through unchanged.
    """
    url = url.strip()
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise InvalidDatabaseURL(
            f"database URL {url!r} has no scheme; use sqlite:///path/to/file.db or "
            "postgresql://user@host:port/dbname"
        )
    if scheme in _SCHEME_DRIVERS:
        return f"{_SCHEME_DRIVERS[scheme]}://{rest}"
    if scheme in ("sqlite+aiosqlite", "postgresql+asyncpg"):
        return url
    raise InvalidDatabaseURL(
        f"database URL scheme {scheme!r} is not supported; use sqlite:/// or postgresql://"
    )


def is_sqlite(url: str) -> bool:
    """Whether a (normalised or user) URL points at SQLite."""
    return url.strip().startswith("sqlite")


def sqlite_path(url: str) -> Path | None:
    """The database file of a SQLite URL, or None for in-memory databases and other backends."""
    if not is_sqlite(url):
        return None
    database = make_url(normalise_url(url)).database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database)


def create_engine(url: str, **options: Any) -> AsyncEngine:
    """An async engine for `url`; the SQLite file's directory is created if it is missing."""
    async_url = normalise_url(url)
    if not is_sqlite(async_url):
        return create_async_engine(async_url, **options)
    path = sqlite_path(async_url)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
    options.setdefault("connect_args", {}).setdefault("timeout", SQLITE_BUSY_TIMEOUT_MS / 1000)
    engine = create_async_engine(async_url, **options)
    event.listen(engine.sync_engine, "connect", _tune_sqlite_connection)
    return engine


def _tune_sqlite_connection(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        # The busy timeout first: switching a fresh file to WAL takes an exclusive lock, and workers
        # opening the same new database at once got "database is locked" from whichever lost the race.
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_MS / 1000
        while True:
            try:
                cursor.execute("PRAGMA journal_mode=WAL")
                break
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.02)
        cursor.execute("PRAGMA synchronous=NORMAL")
    finally:
        cursor.close()
