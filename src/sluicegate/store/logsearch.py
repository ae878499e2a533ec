"""Searching the request log: filters, text search, newest-first pages, and one request by id.

Why a module of its own: `usage.py` writes the log and keeps the aggregates beside it; this is the
read side an operator's console needs (which key, which model, which status, which error, when, and
"find this text"), done in the database so a page reads `limit` rows however long the log is.
Pages go backwards by row id (`before`), which stays right while new requests are logged, unlike an
offset. Text search is a case-insensitive substring over the short columns (ids, names, models,
channel, error, client), plus the stored bodies when asked: bodies are large, so that is opt-in.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, or_, select
from sqlalchemy.ext.asyncio import AsyncEngine

from sluicegate.store.schema import request_logs
from sluicegate.store.usage import LogEntry, log_entry

MAX_PAGE = 1000
# Status filters by name; anything else must be a whole number (an exact status).
STATUS_CLASSES = {
    "2xx": (200, 299),
    "3xx": (300, 399),
    "4xx": (400, 499),
    "5xx": (500, 599),
    "error": (400, 999),
}
_TEXT_COLUMNS = (
    "request_id", "key_id", "key_name", "endpoint", "model_requested", "model_served", "upstream",
    "channel", "error_type", "client_ip",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class LogQuery:
    """Which logged requests to return; every filter is optional and they all must hold."""

    key_id: str | None = None
    model: str | None = None  # requested or served
    status: str | None = None  # "2xx", "4xx", "5xx", "error" or an exact code such as "429"
    error: str | None = None  # the logged error_type, exactly
    since: float | None = None  # epoch seconds, inclusive
    until: float | None = None  # epoch seconds, exclusive
    text: str | None = None
    in_bodies: bool = False  # also search the stored request and response bodies
    request_id: str | None = None
    before: int | None = None  # row id: only older rows (the next page)
    limit: int = 50


def status_range(status: str) -> tuple[int, int]:
    """The inclusive status range a filter names; ValueError when it names none."""
    if status in STATUS_CLASSES:
        return STATUS_CLASSES[status]
    code = int(status)
    if not 100 <= code <= 999:
        raise ValueError(status)
    return code, code


def _like(text: str) -> str:
    escaped = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _filtered(q: LogQuery) -> Select[Any]:
    c = request_logs.c
    stmt = select(request_logs)
    if q.key_id:
        stmt = stmt.where(c.key_id == q.key_id)
    if q.model:
        stmt = stmt.where(or_(c.model_requested == q.model, c.model_served == q.model))
    if q.status:
        low, high = status_range(q.status)
        stmt = stmt.where(c.status >= low, c.status <= high)
    if q.error:
        stmt = stmt.where(c.error_type == q.error)
    if q.since is not None:
        stmt = stmt.where(c.ts >= q.since)
    if q.until is not None:
        stmt = stmt.where(c.ts < q.until)
    if q.request_id:
        stmt = stmt.where(c.request_id == q.request_id)
    if q.before is not None:
        stmt = stmt.where(c.id < q.before)
    if q.text:
        pattern = _like(q.text)
        names = _TEXT_COLUMNS + (("request_body", "response_body") if q.in_bodies else ())
        stmt = stmt.where(or_(*(c[n].ilike(pattern, escape="\\") for n in names)))
    return stmt


class LogSearch:
    """The request log's read side for the admin API (see the module docstring)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def search(self, q: LogQuery) -> list[LogEntry]:
        """Up to `q.limit` matching requests, newest first."""
        limit = max(0, min(q.limit, MAX_PAGE))
        stmt = _filtered(q).order_by(request_logs.c.id.desc()).limit(limit)
        async with self._engine.connect() as conn:
            return [log_entry(row._mapping) for row in await conn.execute(stmt)]

    async def get(self, entry_id: int) -> LogEntry | None:
        """One logged request by its row id, with its stored bodies."""
        stmt = select(request_logs).where(request_logs.c.id == entry_id)
        async with self._engine.connect() as conn:
            row = (await conn.execute(stmt)).first()
        return None if row is None else log_entry(row._mapping)
