"""What belongs to one user (or one team), read from the store: their keys, their keys' usage and
request logs.

Every query here is scoped by the holder inside the SQL (`api_keys.user_id = :user`, or `team_id` for a
team, or the request's key among that holder's keys), never by filtering a wider result afterwards, so
no code path can hand one user another's rows. Keys count as the user's whoever made them (the portal or the operator for them),
revoked ones included: their usage and logs stay the user's.
"""

from __future__ import annotations

import time
from datetime import date
from typing import Any

from sqlalchemy import BigInteger, cast, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from sluicegate.cli.keys import key_status
from sluicegate.portal.holder import Holder
from sluicegate.store.keys import _to_record
from sluicegate.store.records import KeyRecord
from sluicegate.store.schema import api_keys, request_logs, usage_daily
from sluicegate.store.usage import fold_unpriced

_SUMS = ("requests", "errors", "prompt_tokens", "completion_tokens", "cached_tokens", "reasoning_tokens")


def stored_name(user_id: str, label: str) -> str:
    """Key names are unique across the gateway; a portal key's is prefixed with its user's id, so one
    user's choice never collides with (or reveals) another's."""
    return f"{user_id}/{label}"


def label_of(user_id: str, name: str | None) -> str:
    prefix = f"{user_id}/"
    return (name or "")[len(prefix) :] if (name or "").startswith(prefix) else (name or "")


def key_view(record: KeyRecord, user_id: str, now: float | None = None) -> dict[str, Any]:
    """A key as its owner sees it: no hash, no secret, no operator-only detail."""
    return {
        "id": record.id,
        "name": label_of(user_id, record.name),
        "prefix": record.prefix,
        "status": key_status(record, time.time() if now is None else now),
        "models": list(record.models),
        "expires_at": record.expires_at,
        "revoked_at": record.revoked_at,
        "created_at": record.created_at,
    }


def _owned(holder: Holder) -> Any:
    """`api_keys.<user_id|team_id> = :id`: the SQL condition that a key is the holder's."""
    return api_keys.c[holder.column] == holder.id


def _own_key_ids(holder: Holder) -> Any:
    return select(api_keys.c.id).where(_owned(holder)).scalar_subquery()


class Mine:
    """The signed-in user's own rows (or their team's, for a team admin)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def keys(self, holder: Holder, include_revoked: bool = False) -> list[KeyRecord]:
        query = select(api_keys).where(_owned(holder))
        if not include_revoked:
            query = query.where(api_keys.c.revoked_at.is_(None))
        query = query.order_by(api_keys.c.created_at, api_keys.c.id)
        async with self._engine.connect() as conn:
            return [_to_record(row) for row in await conn.execute(query)]

    async def key(self, holder: Holder, key_id: str) -> KeyRecord | None:
        """The key when it is the holder's; None for another's and for an unknown id alike."""
        query = select(api_keys).where(api_keys.c.id == key_id, _owned(holder))
        async with self._engine.connect() as conn:
            row = (await conn.execute(query)).first()
        return None if row is None else _to_record(row)

    async def usage(self, holder: Holder, since: date | None, until: date | None) -> list[dict[str, Any]]:
        """Usage of the holder's keys per UTC day, model and currency, oldest day first."""
        c = usage_daily.c
        query = (
            select(
                c.day,
                c.model,
                c.currency,
                *[cast(func.sum(c[n]), BigInteger).label(n) for n in _SUMS],
                func.sum(c.cost).label("cost"),
            )
            .where(c.key_id.in_(_own_key_ids(holder)))
            .group_by(c.day, c.model, c.currency)
            .order_by(c.day, c.model, c.currency)
        )
        if since is not None:
            query = query.where(c.day >= since)
        if until is not None:
            query = query.where(c.day <= until)
        async with self._engine.connect() as conn:
            rows = []
            for found in await conn.execute(query):
                m = found._mapping
                day = m["day"]
                out: dict[str, Any] = {
                    "day": day.isoformat() if isinstance(day, date) else str(day),
                    "model": m["model"] or None,
                    "key_id": None,
                    "currency": m["currency"],
                    **{n: int(m[n] or 0) for n in _SUMS},
                    "cost": float(m["cost"] or 0.0),
                }
                rows.append(out)
        for row in (rows := fold_unpriced(rows)):
            row.pop("key_id", None)
        return rows

    async def logs(
        self, holder: Holder, limit: int, before: int | None, request_id: str | None = None
    ) -> list[dict[str, Any]]:
        """The holder's keys' logged requests, newest first; `before` is the last page's smallest id;
        `request_id` picks one request (the playground's, to show what it was charged)."""
        c = request_logs.c
        query = select(
            c.id, c.ts, c.request_id, c.key_id, c.key_name, c.endpoint, c.model_requested, c.model_served,
            c.status, c.error_type, c.prompt_tokens, c.completion_tokens, c.cost, c.currency, c.latency_ms,
            c.stream, c.cache_hit, c.charge,
        ).where(c.key_id.in_(_own_key_ids(holder)))  # fmt: skip
        if before is not None:
            query = query.where(c.id < before)
        if request_id is not None:
            query = query.where(c.request_id == request_id)
        query = query.order_by(c.id.desc()).limit(limit)
        async with self._engine.connect() as conn:
            result = await conn.execute(query)
            return [
                {
                    "id": int(m["id"]), "ts": m["ts"], "request_id": m["request_id"], "key_id": m["key_id"],
                    "key_name": label_of(holder.id, m["key_name"]), "endpoint": m["endpoint"],
                    "model": m["model_requested"] or m["model_served"], "status": m["status"],
                    "error_type": m["error_type"], "prompt_tokens": int(m["prompt_tokens"]),
                    "completion_tokens": int(m["completion_tokens"]), "cost": float(m["cost"]),
                    "currency": m["currency"], "latency_ms": float(m["latency_ms"]),
                    "stream": bool(m["stream"]), "cache_hit": bool(m["cache_hit"]),
                    "charge_micro": int(m["charge"] or 0),
                }
                for m in (row._mapping for row in result)
            ]  # fmt: skip
