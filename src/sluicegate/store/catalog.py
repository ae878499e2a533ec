"""Upstreams, model routes, channel switches and price overrides kept in the store, with their audit log.

What the admin API and CLI add beside the YAML file lives here as rows; `sluicegate.catalog` decides
what they mean. Every change is one transaction that writes the row, its audit entry (who, what, when,
before and after, secrets already masked by the caller) and bumps row 2 of `revision`, so a running
gateway polling that number (server/configsync.py) rebuilds its routes within a poll, and an audit
entry exists exactly when the change does.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from sqlalchemy import Table, delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from sluicegate.store.schema import (
    admin_audit,
    config_channels,
    config_models,
    config_prices,
    config_upstreams,
    revision,
)

CONFIG_REVISION_ID = 2


@dataclass(frozen=True, slots=True)
class StoredUpstream:
    name: str
    data: dict[str, Any]  # UpstreamConfig fields without secrets
    secrets: str | None  # the sealed {"api_key", "api_keys", "headers"} (store/crypto.py)
    hint: dict[str, Any]  # the same secrets masked, for showing without the master key
    enabled: bool
    created_at: float
    updated_at: float


@dataclass(frozen=True, slots=True)
class StoredModel:
    name: str
    channels: list[dict[str, Any]]
    enabled: bool
    created_at: float
    updated_at: float


@dataclass(frozen=True, slots=True)
class StoredPrice:
    model: str
    data: dict[str, Any]
    created_at: float
    updated_at: float


@dataclass(slots=True)
class CatalogRows:
    """Everything in the catalog tables at one revision."""

    revision: int = 0
    upstreams: dict[str, StoredUpstream] = field(default_factory=dict)
    models: dict[str, StoredModel] = field(default_factory=dict)
    channels: dict[str, bool] = field(default_factory=dict)  # channel name -> enabled
    prices: dict[str, StoredPrice] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Audit:
    """One audit entry, written by the caller's change in the same transaction."""

    actor: str
    action: str  # create, update, delete, enable, disable
    target_kind: str  # upstream, model, channel, price
    target: str
    before: Any = None
    after: Any = None


@dataclass(frozen=True, slots=True)
class AuditEntry:
    id: int
    ts: float
    actor: str
    action: str
    target_kind: str
    target: str
    before: Any
    after: Any


async def write_audit(conn: AsyncConnection, audit: Audit, now: float) -> None:
    """Insert one audit entry in the caller's transaction (catalog rows here, keys in keys.py)."""
    await conn.execute(
        insert(admin_audit).values(
            ts=now,
            actor=audit.actor[:200],
            action=audit.action,
            target_kind=audit.target_kind,
            target=audit.target[:400],
            before=None if audit.before is None else orjson.dumps(audit.before).decode(),
            after=None if audit.after is None else orjson.dumps(audit.after).decode(),
        )
    )


class CatalogRepository:
    """Reads the catalog whole, writes one row (and its audit entry) per transaction."""

    def __init__(self, engine: AsyncEngine, clock: Callable[[], float] = time.time) -> None:
        self._engine = engine
        self._clock = clock

    async def revision(self) -> int:
        """The configuration revision counter; it changes whenever any catalog row does."""
        async with self._engine.connect() as conn:
            value = (
                await conn.execute(select(revision.c.value).where(revision.c.id == CONFIG_REVISION_ID))
            ).scalar()
        return int(value or 0)

    async def load(self) -> CatalogRows:
        """Every row, read in one transaction so the revision matches what was read."""
        rows = CatalogRows()
        async with self._engine.begin() as conn:
            value = (
                await conn.execute(select(revision.c.value).where(revision.c.id == CONFIG_REVISION_ID))
            ).scalar()
            rows.revision = int(value or 0)
            for r in await conn.execute(select(config_upstreams).order_by(config_upstreams.c.created_at)):
                m = r._mapping
                rows.upstreams[m["name"]] = StoredUpstream(
                    m["name"],
                    orjson.loads(m["data"]),
                    m["secrets"],
                    orjson.loads(m["secrets_hint"]),
                    bool(m["enabled"]),
                    m["created_at"],
                    m["updated_at"],
                )
            for r in await conn.execute(select(config_models).order_by(config_models.c.created_at)):
                m = r._mapping
                rows.models[m["name"]] = StoredModel(
                    m["name"],
                    orjson.loads(m["channels"]),
                    bool(m["enabled"]),
                    m["created_at"],
                    m["updated_at"],
                )
            for r in await conn.execute(select(config_channels)):
                rows.channels[r._mapping["name"]] = bool(r._mapping["enabled"])
            for r in await conn.execute(select(config_prices).order_by(config_prices.c.model)):
                m = r._mapping
                rows.prices[m["model"]] = StoredPrice(
                    m["model"], orjson.loads(m["data"]), m["created_at"], m["updated_at"]
                )
        return rows

    # -- writes: each one row + its audit entry + the revision, in one transaction -------------------

    async def put_upstream(
        self,
        name: str,
        data: dict[str, Any],
        secrets: str | None,
        hint: dict[str, Any],
        enabled: bool,
        audit: Audit,
        *,
        create: bool,
    ) -> None:
        values = {
            "data": orjson.dumps(data).decode(),
            "secrets": secrets,
            "secrets_hint": orjson.dumps(hint).decode(),
            "enabled": enabled,
        }
        await self._put(config_upstreams, config_upstreams.c.name, name, values, audit, create)

    async def put_model(
        self, name: str, channels: list[dict[str, Any]], enabled: bool, audit: Audit, *, create: bool
    ) -> None:
        values = {"channels": orjson.dumps(channels).decode(), "enabled": enabled}
        await self._put(config_models, config_models.c.name, name, values, audit, create)

    async def put_price(self, model: str, data: dict[str, Any], audit: Audit, *, create: bool) -> None:
        values = {"data": orjson.dumps(data).decode()}
        await self._put(config_prices, config_prices.c.model, model, values, audit, create)

    async def set_channel(self, name: str, enabled: bool, audit: Audit) -> None:
        now = self._clock()
        async with self._engine.begin() as conn:
            done = await conn.execute(
                update(config_channels)
                .where(config_channels.c.name == name)
                .values(enabled=enabled, updated_at=now)
            )
            if not done.rowcount:
                await conn.execute(insert(config_channels).values(name=name, enabled=enabled, updated_at=now))
            await self._finish(conn, audit, now)

    async def delete_upstream(self, name: str, audit: Audit) -> bool:
        return await self._delete(config_upstreams, config_upstreams.c.name, name, audit)

    async def delete_model(self, name: str, audit: Audit) -> bool:
        return await self._delete(config_models, config_models.c.name, name, audit)

    async def delete_price(self, model: str, audit: Audit) -> bool:
        return await self._delete(config_prices, config_prices.c.model, model, audit)

    async def note(self, audit: Audit) -> None:
        """An audit entry for an action that changes no row (a channel reset)."""
        async with self._engine.begin() as conn:
            await write_audit(conn, audit, self._clock())

    async def _put(
        self, table: Table, key: Any, name: str, values: dict[str, Any], audit: Audit, create: bool
    ) -> None:
        now = self._clock()
        async with self._engine.begin() as conn:
            if create:
                await conn.execute(
                    insert(table).values({key.name: name, **values, "created_at": now, "updated_at": now})
                )
            else:
                done = await conn.execute(update(table).where(key == name).values(**values, updated_at=now))
                if not done.rowcount:
                    raise LookupError(name)
            await self._finish(conn, audit, now)

    async def _delete(self, table: Table, key: Any, name: str, audit: Audit) -> bool:
        now = self._clock()
        async with self._engine.begin() as conn:
            done = await conn.execute(delete(table).where(key == name))
            if not done.rowcount:
                return False
            await self._finish(conn, audit, now)
        return True

    async def _finish(self, conn: AsyncConnection, audit: Audit, now: float) -> None:
        await write_audit(conn, audit, now)
        await conn.execute(
            update(revision).where(revision.c.id == CONFIG_REVISION_ID).values(value=revision.c.value + 1)
        )

    # -- the audit log -------------------------------------------------------------------------------

    async def audit(
        self,
        *,
        since: float | None = None,
        until: float | None = None,
        target: str | None = None,
        kind: str | None = None,
        limit: int = 1000,
    ) -> list[AuditEntry]:
        """Audit entries newest first, filtered by time, target name and kind."""
        query = select(admin_audit).order_by(admin_audit.c.ts.desc(), admin_audit.c.id.desc()).limit(limit)
        if since is not None:
            query = query.where(admin_audit.c.ts >= since)
        if until is not None:
            query = query.where(admin_audit.c.ts < until)
        if target:
            query = query.where(admin_audit.c.target == target)
        if kind:
            query = query.where(admin_audit.c.target_kind == kind)
        async with self._engine.connect() as conn:
            out = []
            for r in await conn.execute(query):
                m = r._mapping
                out.append(
                    AuditEntry(
                        int(m["id"]),
                        m["ts"],
                        m["actor"],
                        m["action"],
                        m["target_kind"],
                        m["target"],
                        None if m["before"] is None else orjson.loads(m["before"]),
                        None if m["after"] is None else orjson.loads(m["after"]),
                    )
                )
        return out
