"""Database URLs as users write them, and how SQLite is tuned for several worker processes."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from sluicegate.store import Store
from sluicegate.store.engine import InvalidDatabaseURL, create_engine, normalise_url


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("sqlite:///x.db", "sqlite+aiosqlite:///x.db"),
        ("sqlite:////var/lib/sg/x.db", "sqlite+aiosqlite:////var/lib/sg/x.db"),
        ("postgresql://u@h:5432/db", "postgresql+asyncpg://u@h:5432/db"),
        ("postgres://u:p@h/db", "postgresql+asyncpg://u:p@h/db"),
        ("postgresql+asyncpg://u@h/db", "postgresql+asyncpg://u@h/db"),
        ("sqlite+aiosqlite:///x.db", "sqlite+aiosqlite:///x.db"),
    ],
)
def test_user_urls_get_the_async_drivers(url: str, expected: str) -> None:
    assert normalise_url(url) == expected


@pytest.mark.parametrize("url", ["mysql://u@h/db", "gate.db", "postgresql+psycopg2://u@h/db"])
def test_unsupported_urls_are_refused_with_the_supported_forms(url: str) -> None:
    with pytest.raises(InvalidDatabaseURL, match="sqlite:///"):
        normalise_url(url)


async def test_sqlite_runs_in_wal_mode_with_a_busy_timeout(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'x.db'}")
    try:
        async with engine.connect() as conn:
            assert (await conn.execute(text("PRAGMA journal_mode"))).scalar() == "wal"
            assert (await conn.execute(text("PRAGMA busy_timeout"))).scalar() >= 5000
    finally:
        await engine.dispose()


async def test_opening_a_sqlite_store_creates_the_file_and_its_directory(tmp_path: Path) -> None:
    path = tmp_path / "not" / "yet" / "sluicegate.db"
    store = await Store.open(f"sqlite:///{path}")
    await store.close()
    assert path.is_file()


async def test_ping_is_true_for_a_live_database(tmp_path: Path) -> None:
    async with await Store.open(f"sqlite:///{tmp_path / 'x.db'}") as store:
        assert await store.ping() is True


async def test_ping_is_false_when_the_database_is_unreachable() -> None:
    unreachable = Store(
        create_engine("postgresql://postgres@127.0.0.1:1/nothing", connect_args={"timeout": 2})
    )
    try:
        assert await unreachable.ping() is False
    finally:
        await unreachable.close()
