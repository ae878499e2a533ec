"""Who made each file, upload and batch (table `owned_objects`), and named leases (table `leases`).

The provider account behind the gateway is shared by every key, so the gateway remembers, for each object
created through it, the key (and the user and team it belongs to, when it does) that created it. A lookup
of an object that is not the caller's finds nothing, exactly as if the id did not exist.

A lease names one holder across every worker and node until it expires; the holder renews it. The batch
poller takes one so that a single gateway polls the provider at a time (charging is idempotent anyway).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import orjson
from sqlalchemy import and_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from sluicegate.store.engine import upsert_insert
from sluicegate.store.owned import BATCH, DELETED, OwnedRef, Owner
from sluicegate.store.schema import leases, owned_objects


def _ref(row: Any) -> OwnedRef:
    return OwnedRef(row.id, row.kind, row.channel, Owner(row.key_id, row.user_id, row.team_id), row.state)


class ObjectsRepository:
    def __init__(self, engine: AsyncEngine, clock: Callable[[], float] = time.time) -> None:
        self._engine = engine
        self._clock = clock
        self._insert = upsert_insert(engine.dialect.name)

    async def record(
        self,
        kind: str,
        object_id: str,
        channel: str,
        owner: Owner,
        data: dict[str, Any],
        *,
        state: str = "",
        purpose: str | None = None,
    ) -> bool:
        """Remember that `owner` made `object_id`; the first owner recorded stays (returns False then)."""
        now = self._clock()
        stmt = (
            self._insert(owned_objects)
            .values(
                id=object_id,
                kind=kind,
                channel=channel,
                key_id=owner.key_id,
                user_id=owner.user_id,
                team_id=owner.team_id,
                created_at=now,
                updated_at=now,
                state=state,
                purpose=purpose,
                data=orjson.dumps(data).decode(),
            )
            .on_conflict_do_nothing(index_elements=[owned_objects.c.id])
        )
        async with self._engine.begin() as conn:
            result = await conn.execute(stmt)
        return bool(result.rowcount)

    async def find(self, object_id: str) -> OwnedRef | None:
        cols = owned_objects.c
        query = select(cols.id, cols.kind, cols.channel, cols.key_id, cols.user_id, cols.team_id, cols.state)
        async with self._engine.connect() as conn:
            row = (await conn.execute(query.where(cols.id == object_id))).first()
        return _ref(row) if row is not None else None

    async def data(self, object_id: str) -> dict[str, Any] | None:
        async with self._engine.connect() as conn:
            text = (
                await conn.execute(select(owned_objects.c.data).where(owned_objects.c.id == object_id))
            ).scalar()
        return orjson.loads(text) if text is not None else None

    async def refresh(self, object_id: str, data: dict[str, Any], state: str | None = None) -> None:
        """The provider's object as just seen (and its state), for lists served from the store."""
        values: dict[str, Any] = {"data": orjson.dumps(data).decode(), "updated_at": self._clock()}
        if state is not None:
            values["state"] = state
        cols = owned_objects.c
        async with self._engine.begin() as conn:
            await conn.execute(
                update(owned_objects).where(cols.id == object_id, cols.state != DELETED).values(**values)
            )

    async def mark_deleted(self, object_id: str) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(
                update(owned_objects)
                .where(owned_objects.c.id == object_id)
                .values(state=DELETED, updated_at=self._clock())
            )

    async def page(
        self,
        key_id: str,
        kind: str,
        *,
        limit: int,
        after: str | None = None,
        order: str = "desc",
        purpose: str | None = None,
    ) -> tuple[list[dict[str, Any]], bool]:
        """One page of `key_id`'s objects of `kind` (newest first unless `order="asc"`), after the object
        `after` (one of the key's own; another id gives an empty page), and whether more follow."""
        cols = owned_objects.c
        where = [cols.key_id == key_id, cols.kind == kind, cols.state != DELETED]
        if purpose:
            where.append(cols.purpose == purpose)
        desc = order != "asc"
        async with self._engine.connect() as conn:
            if after:
                mark = (
                    await conn.execute(
                        select(cols.created_at, cols.id).where(
                            cols.id == after, cols.key_id == key_id, cols.kind == kind
                        )
                    )
                ).first()
                if mark is None:
                    return [], False
                at, aid = mark
                if desc:
                    where.append(or_(cols.created_at < at, and_(cols.created_at == at, cols.id < aid)))
                else:
                    where.append(or_(cols.created_at > at, and_(cols.created_at == at, cols.id > aid)))
            ordering = (cols.created_at.desc(), cols.id.desc()) if desc else (cols.created_at, cols.id)
            query = select(cols.data).where(*where).order_by(*ordering).limit(limit + 1)
            rows = (await conn.execute(query)).scalars().all()
        return [orjson.loads(r) for r in rows[:limit]], len(rows) > limit

    async def uncharged_batches(self, limit: int = 200) -> list[OwnedRef]:
        """Batches not charged yet (running, or finished since the last poll), oldest first."""
        cols = owned_objects.c
        query = (
            select(cols.id, cols.kind, cols.channel, cols.key_id, cols.user_id, cols.team_id, cols.state)
            .where(cols.kind == BATCH, cols.charged_at.is_(None))
            .order_by(cols.created_at)
            .limit(limit)
        )
        async with self._engine.connect() as conn:
            return [_ref(row) for row in await conn.execute(query)]

    async def mark_charged(
        self, batch_id: str, prompt_tokens: int, completion_tokens: int, cost: float, currency: str
    ) -> bool:
        """Set the batch's usage and charge time unless it was already charged; True if this call did."""
        cols = owned_objects.c
        async with self._engine.begin() as conn:
            result = await conn.execute(
                update(owned_objects)
                .where(cols.id == batch_id, cols.charged_at.is_(None))
                .values(
                    prompt_tokens=prompt_tokens,
                    completion_tokens=completion_tokens,
                    cost=cost,
                    currency=currency,
                    charged_at=self._clock(),
                )
            )
        return bool(result.rowcount)

    async def charged(self, batch_id: str) -> dict[str, Any] | None:
        cols = owned_objects.c
        query = select(
            cols.prompt_tokens, cols.completion_tokens, cols.cost, cols.currency, cols.charged_at
        ).where(cols.id == batch_id)
        async with self._engine.connect() as conn:
            row = (await conn.execute(query)).first()
        return dict(row._mapping) if row is not None else None

    async def listing(
        self, *, key_id: str | None = None, kind: str | None = None, limit: int = 100
    ) -> list[dict[str, Any]]:
        """Rows for the operator (`GET /admin/objects`), newest first: owner, state, batch charge."""
        cols = owned_objects.c
        query = select(owned_objects).order_by(cols.created_at.desc(), cols.id.desc()).limit(limit)
        if key_id is not None:
            query = query.where(cols.key_id == key_id)
        if kind is not None:
            query = query.where(cols.kind == kind)
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).mappings().all()
        out = []
        for row in rows:
            item = {str(name): value for name, value in row.items()}  # plain str keys (orjson)
            item["object"] = orjson.loads(item.pop("data"))
            out.append(item)
        return out

    # -- leases ----------------------------------------------------------------------------------------

    async def acquire_lease(self, name: str, holder: str, ttl_s: float) -> bool:
        """Take or renew the lease `name` for `holder` unless someone else holds it unexpired."""
        now = self._clock()
        cols = leases.c
        async with self._engine.begin() as conn:
            result = await conn.execute(
                update(leases)
                .where(cols.name == name, or_(cols.holder == holder, cols.expires_at < now))
                .values(holder=holder, expires_at=now + ttl_s)
            )
            if result.rowcount:
                return True
            result = await conn.execute(
                self._insert(leases)
                .values(name=name, holder=holder, expires_at=now + ttl_s)
                .on_conflict_do_nothing(index_elements=[cols.name])
            )
        return bool(result.rowcount)

    async def release_lease(self, name: str, holder: str) -> None:
        cols = leases.c
        async with self._engine.begin() as conn:
            await conn.execute(
                update(leases).where(cols.name == name, cols.holder == holder).values(expires_at=0.0)
            )
