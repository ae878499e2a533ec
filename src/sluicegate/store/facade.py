"""The Store: one engine, the repositories on it, and the lifecycle the gateway and CLI need."""

from __future__ import annotations

import time
from collections.abc import Callable
from types import TracebackType
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from sluicegate.store.catalog import CatalogRepository
from sluicegate.store.engine import create_engine
from sluicegate.store.keys import KeyRepository
from sluicegate.store.logsearch import LogSearch
from sluicegate.store.migrate import upgrade
from sluicegate.store.objects import ObjectsRepository
from sluicegate.store.responses import ResponsesRepository
from sluicegate.store.tenancy import TenancyRepository
from sluicegate.store.usage import UsageRepository


class Store:
    """Keys, usage and kept Responses state in SQLite or PostgreSQL behind one async engine.

    Build it with `await Store.open(url)`, which also creates the SQLite file and migrates the
    schema, so a first start needs no separate setup step.
    """

    def __init__(self, engine: AsyncEngine, clock: Callable[[], float] = time.time) -> None:
        self.engine = engine
        self.keys = KeyRepository(engine, clock)
        self.usage = UsageRepository(engine, clock)
        self.logs = LogSearch(engine)
        self.catalog = CatalogRepository(engine, clock)
        self.responses = ResponsesRepository(engine, clock)
        self.objects = ObjectsRepository(engine, clock)
        self.tenancy = TenancyRepository(engine, clock)

    @classmethod
    async def open(
        cls, url: str, *, migrate: bool = True, clock: Callable[[], float] = time.time, **engine_options: Any
    ) -> Store:
        """Connect to `url` (user form: `sqlite:///...`, `postgresql://...`) and migrate it."""
        engine = create_engine(url, **engine_options)
        try:
            if migrate:
                await upgrade(url, engine)
        except BaseException:
            await engine.dispose()
            raise
        return cls(engine, clock)

    async def ping(self) -> bool:
        """Whether the database answers a trivial query now (for /readyz)."""
        try:
            async with self.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        except Exception:
            return False
        return True

    async def close(self) -> None:
        """Close every pooled connection."""
        await self.engine.dispose()

    async def __aenter__(self) -> Store:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()
