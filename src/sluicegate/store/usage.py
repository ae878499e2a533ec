"""The request log and the daily usage aggregates kept beside it.

The log writer hands over batches of RequestRecords; each batch is inserted into `request_logs`
and added into `usage_daily` in one transaction, so the aggregates always equal the sum of what
was logged and a usage report over months reads a few hundred rows instead of millions.

Aggregates are keyed by UTC day, key id, the model the client *requested* (falling back to the
served model when none was named) and currency: that is the name a key's model rules and a
client's own bookkeeping use, while failover may serve the request under another name (the log
keeps both). Retention (`purge_older_than`) deletes log rows only; aggregates are kept.
"""

from __future__ import annotations

import operator
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields
from datetime import UTC, date, datetime
from typing import Any, Literal

from sqlalchemy import BigInteger, bindparam, cast, delete, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from sluicegate.store.engine import upsert_insert
from sluicegate.store.ledger import apply_charges
from sluicegate.store.records import RequestRecord
from sluicegate.store.schema import request_logs, usage_daily

GroupBy = Literal["key", "model", "day"]
_TOKEN_COLUMNS = ("prompt_tokens", "completion_tokens", "cached_tokens", "reasoning_tokens")
_SUM_COLUMNS = ("requests", "errors", *_TOKEN_COLUMNS, "cost")
_SAVED_COLUMNS = ("cache_hits", "tokens_saved", "cost_saved")  # the response cache (migration 0006)
_RECORD_FIELDS = tuple(f.name for f in fields(RequestRecord))
_PURGE_CHUNK = 5000


@dataclass(frozen=True, slots=True)
class LogEntry:
    """A logged request with its row id, the cursor `after()` continues from."""

    id: int
    record: RequestRecord


@dataclass(frozen=True, slots=True)
class Spent:
    """What a key used since some time: tokens (prompt + completion) and cost per currency."""

    tokens: int = 0
    cost: dict[str, float] = field(default_factory=dict)


def utc_day(ts: float) -> date:
    """The UTC calendar day of an epoch time, the unit of `usage_daily` and of daily budgets."""
    return datetime.fromtimestamp(ts, UTC).date()


_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_DAY = 86400.0


def aggregate(records: Sequence[RequestRecord]) -> list[dict[str, Any]]:
    """Rows to add into `usage_daily` for a batch: one per (day, key, model, currency)."""
    totals: dict[tuple[date | None, str, str, str], dict[str, Any]] = {}
    # The UTC day of a batch's records is nearly always the one before: it is reused while the time is
    # inside that day, short of its last microsecond (`utc_day` rounds to microseconds), and computed
    # again otherwise. The figures are added field by field, in the records' order, as before.
    day: date | None = None
    lo = hi = 0.0
    for r in records:
        ts = r.ts
        if not lo <= ts < hi:
            day = utc_day(ts)
            lo = (day.toordinal() - _EPOCH_ORDINAL) * _DAY
            hi = lo + _DAY - 1e-6
        model = r.model_requested or r.model_served or ""
        key_name = r.key_name
        group = (day, r.key_id or "", model, r.currency)
        row = totals.get(group)
        if row is None:
            row = totals[group] = {
                "day": group[0], "key_id": group[1], "model": model, "currency": r.currency,
                "key_name": key_name or "", "requests": 1, "errors": 0 + (r.status >= 400),
                "prompt_tokens": 0 + r.prompt_tokens, "completion_tokens": 0 + r.completion_tokens,
                "cached_tokens": 0 + r.cached_tokens, "reasoning_tokens": 0 + r.reasoning_tokens,
                "cost": 0.0 + r.cost, "cache_hits": 0 + r.cache_hit, "tokens_saved": 0 + r.tokens_saved,
                "cost_saved": 0.0 + r.cost_saved,
            }  # fmt: skip
            continue
        row["requests"] += 1
        row["errors"] += r.status >= 400
        row["prompt_tokens"] += r.prompt_tokens
        row["completion_tokens"] += r.completion_tokens
        row["cached_tokens"] += r.cached_tokens
        row["reasoning_tokens"] += r.reasoning_tokens
        row["cost"] += r.cost
        row["cache_hits"] += r.cache_hit
        row["tokens_saved"] += r.tokens_saved  # a partly cached embeddings batch saves without a hit
        row["cost_saved"] += r.cost_saved
        if key_name:
            row["key_name"] = key_name
    return list(totals.values())


class UsageRepository:
    """Writes request-log batches with their aggregates, and answers usage and log questions."""

    def __init__(self, engine: AsyncEngine, clock: Callable[[], float] = time.time) -> None:
        self._engine = engine
        self._clock = clock
        # Tenancy: the currency of a balance first made by a charge (users and teams get theirs at creation).
        self.charge_currency = "USD"
        insert = upsert_insert(engine.dialect.name)
        stmt = insert(usage_daily)
        added = {name: usage_daily.c[name] + stmt.excluded[name] for name in (*_SUM_COLUMNS, *_SAVED_COLUMNS)}
        added["key_name"] = func.coalesce(func.nullif(stmt.excluded.key_name, ""), usage_daily.c.key_name)
        self._upsert = stmt.on_conflict_do_update(
            index_elements=[
                usage_daily.c.day,
                usage_daily.c.key_id,
                usage_daily.c.model,
                usage_daily.c.currency,
            ],
            set_=added,
        )
        # The log insert is compiled once and fed plain tuples: SQLAlchemy's per-row bind processing cost
        # ~35 us of CPU per record on SQLite, on the gateway's own core; the driver alone takes ~20 (SQLite)
        # and ~7 (PostgreSQL).
        compiled = (
            request_logs.insert()
            .values({n: bindparam(n) for n in _RECORD_FIELDS})
            .compile(dialect=engine.dialect)
        )
        self._log_sql = str(compiled)
        self._log_order: tuple[str, ...] | None = (
            tuple(compiled.positiontup or ()) if compiled.positional else None
        )
        # A positional row in one C call per record (a getattr per field in Python cost ~2.5 us).
        self._log_row = operator.attrgetter(*self._log_order) if self._log_order else None
        # Records that may already be stored (a retried batch, a replayed spill file): rows whose
        # record_id is there are skipped, and only the rows actually inserted are aggregated.
        self._log_once = (
            insert(request_logs)
            .on_conflict_do_nothing(index_elements=[request_logs.c.record_id])
            .returning(request_logs.c.record_id)
        )

    async def write_batch(self, records: Sequence[RequestRecord], *, replay: bool = False) -> int:
        """Log the records and add them to the daily aggregates, all or nothing; returns rows added.

        `replay=True` for records that may already be stored (each must carry a `record_id`): those
        already there are neither logged nor counted again. The default path is the fast one for
        records written for the first time.
        """
        if not records:
            return 0
        if replay:
            return await self._write_once(records)
        row = self._log_row
        rows: list[Any] = (
            [row(r) for r in records]
            if row is not None
            else [{n: getattr(r, n) for n in _RECORD_FIELDS} for r in records]
        )
        async with self._engine.begin() as conn:
            await conn.exec_driver_sql(self._log_sql, rows)
            await conn.execute(self._upsert, aggregate(records))
            await apply_charges(conn, records, self._clock(), self.charge_currency)
        return len(records)

    async def _write_once(self, records: Sequence[RequestRecord]) -> int:
        if any(r.record_id is None for r in records):
            raise ValueError("a replayed record needs a record_id")
        rows = [{n: getattr(r, n) for n in _RECORD_FIELDS} for r in records]
        async with self._engine.begin() as conn:
            result = await conn.execute(self._log_once, rows)
            added = {row[0] for row in result}
            fresh = [r for r in records if r.record_id in added]
            if fresh:
                await conn.execute(self._upsert, aggregate(fresh))
                await apply_charges(conn, fresh, self._clock(), self.charge_currency)
        return len(fresh)

    async def query(
        self,
        since: date | None = None,
        until: date | None = None,
        key_id: str | None = None,
        model: str | None = None,
        by: GroupBy | None = None,
    ) -> list[dict[str, Any]]:
        """Usage between two UTC days (both inclusive), grouped by key, model, day, or key and model.

        Every row carries key_id, key_name, model, requests, errors, the four token counts, cost
        and currency (costs in different currencies are never added); rows grouped by day also
        carry `day` ("YYYY-MM-DD"). Fields a grouping folds away are None. Unpriced requests (errors,
        models with no price) are counted into their group's priced row: see `fold_unpriced`.
        """
        c = usage_daily.c
        groups = {"key": [c.key_id], "model": [c.model], "day": [c.day], None: [c.key_id, c.model]}[by]
        columns: list[Any] = [*groups, c.currency]
        if by in ("key", None):
            columns.append(func.max(c.key_name).label("key_name"))
        columns += [cast(func.sum(c[name]), BigInteger).label(name) for name in _SUM_COLUMNS[:-1]]
        columns.append(func.sum(c.cost).label("cost"))
        columns += [
            cast(func.sum(c.cache_hits), BigInteger).label("cache_hits"),
            cast(func.sum(c.tokens_saved), BigInteger).label("tokens_saved"),
            func.sum(c.cost_saved).label("cost_saved"),
        ]
        query = select(*columns).group_by(*groups, c.currency)
        if since is not None:
            query = query.where(c.day >= since)
        if until is not None:
            query = query.where(c.day <= until)
        if key_id is not None:
            query = query.where(c.key_id == key_id)
        if model is not None:
            query = query.where(c.model == model)
        if by == "day":
            query = query.order_by(c.day, c.currency)
        else:
            query = query.order_by(func.sum(c.cost).desc(), func.sum(c.requests).desc(), *groups, c.currency)
        async with self._engine.connect() as conn:
            result = await conn.execute(query)
            return fold_unpriced([_usage_row(row._mapping) for row in result])

    async def spent(self, key_id: str, since: date | None = None) -> Spent:
        """A key's tokens and cost from the start of UTC day `since` (or ever), to seed budgets."""
        c = usage_daily.c
        query = (
            select(
                c.currency,
                cast(func.sum(c.prompt_tokens + c.completion_tokens), BigInteger),
                func.sum(c.cost),
            )
            .where(c.key_id == key_id)
            .group_by(c.currency)
        )
        if since is not None:
            query = query.where(c.day >= since)
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return Spent(
            tokens=sum(int(tokens or 0) for _, tokens, _ in rows),
            cost={currency: float(cost or 0.0) for currency, _, cost in rows},
        )

    async def tail(self, n: int = 20) -> list[LogEntry]:
        """The last `n` logged requests, oldest first."""
        query = select(request_logs).order_by(request_logs.c.id.desc()).limit(max(n, 0))
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [log_entry(row._mapping) for row in reversed(rows)]

    async def tail_for_keys(self, key_ids: Sequence[str], n: int = 50) -> list[LogEntry]:
        """The last `n` logged requests of these keys only, newest first (a portal user's own)."""
        if not key_ids:
            return []
        query = (
            select(request_logs)
            .where(request_logs.c.key_id.in_(list(key_ids)))
            .order_by(request_logs.c.id.desc())
            .limit(max(n, 0))
        )
        async with self._engine.connect() as conn:
            return [log_entry(row._mapping) for row in await conn.execute(query)]

    async def after(self, last_id: int, limit: int = 500) -> list[LogEntry]:
        """Requests logged after row `last_id`, oldest first: the cursor behind `logs --follow`."""
        query = (
            select(request_logs).where(request_logs.c.id > last_id).order_by(request_logs.c.id).limit(limit)
        )
        async with self._engine.connect() as conn:
            return [log_entry(row._mapping) for row in await conn.execute(query)]

    async def purge_older_than(self, days: float) -> int:
        """Delete log rows older than `days`; returns how many. Aggregates are kept.

        Deletes in chunks, each its own transaction, so a large purge never holds SQLite's write
        lock for long while gateways are logging.
        """
        cutoff = self._clock() - days * 86400
        old = select(request_logs.c.id).where(request_logs.c.ts < cutoff).limit(_PURGE_CHUNK)
        deleted = 0
        while True:
            async with self._engine.begin() as conn:
                result = await conn.execute(
                    delete(request_logs).where(request_logs.c.id.in_(old.scalar_subquery()))
                )
            deleted += result.rowcount
            if result.rowcount < _PURGE_CHUNK:
                return deleted


def fold_unpriced(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Fold each group's unpriced row (currency "", cost 0) into its priced row, keeping the order.

    Why: a refused or failed request has no price, so `usage_daily` files it under currency "" and a
    key's model's day came out as two rows, one priced and one unlabelled, which read as two different
    things. Its requests, errors and tokens belong to the same group; they cost nothing, so adding them
    to the group's row in its (largest) currency changes no amount. A group with only unpriced usage keeps
    its row, with currency "" (nothing was priced); a group spent in two currencies keeps both rows.
    """
    dims = ("key_id", "model", "day")
    priced: dict[tuple[Any, ...], dict[str, Any]] = {}
    for row in rows:
        if row["currency"]:
            group = tuple(row.get(d) for d in dims)
            best = priced.get(group)
            if best is None or row["cost"] > best["cost"]:
                priced[group] = row
    out: list[dict[str, Any]] = []
    for row in rows:
        target = None if row["currency"] else priced.get(tuple(row.get(d) for d in dims))
        if target is None:
            out.append(row)
            continue
        for name in (*_SUM_COLUMNS[:-1], *_SAVED_COLUMNS):
            target[name] += row[name]
        if not target.get("key_name") and row.get("key_name"):
            target["key_name"] = row["key_name"]
    return out


def _usage_row(m: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "key_id": m.get("key_id") or None,
        "key_name": m.get("key_name") or None,
        "model": m.get("model") or None,
    }
    if "day" in m:
        day = m["day"]
        row["day"] = day.isoformat() if isinstance(day, date) else str(day)
    for name in _SUM_COLUMNS[:-1]:
        row[name] = int(m[name] or 0)
    row["cost"] = float(m["cost"] or 0.0)
    row["currency"] = m["currency"]
    # The response cache: hits, and the tokens and money they saved (in `currency`).
    row["cache_hits"] = int(m.get("cache_hits") or 0)
    row["tokens_saved"] = int(m.get("tokens_saved") or 0)
    row["cost_saved"] = float(m.get("cost_saved") or 0.0)
    return row


def log_entry(m: Any) -> LogEntry:
    """A request_logs row as a LogEntry (shared with `logsearch`)."""
    values = {name: m[name] for name in _RECORD_FIELDS}
    for flag in ("usage_estimated", "stream", "usage_clamped", "cache_hit"):
        values[flag] = bool(values[flag])
    return LogEntry(id=int(m["id"]), record=RequestRecord(**values))
