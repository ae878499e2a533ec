"""The request log for the console: search with filters, one request in detail, and CSV export.

`GET /admin/logs?tail=N` (reports.py) answers what `sluicegate logs` prints; the dashboard needs more:
filter by key, model, status class, error code and time range, search text, page back through a long
log, open one request with its stored bodies, and take the same selection away as a spreadsheet. The
filtering is done by the database (`store.logsearch`), so a page costs `limit` rows.

- `GET /admin/requests?key=&model=&status=&error=&since=&until=&q=&bodies=1&request_id=&before=&limit=`
  newest first; `since`/`until` are epoch seconds or ISO 8601 times; `next_before` continues the list.
  Rows leave the bodies out (`has_request_body`/`has_response_body` say whether there are some).
- `GET /admin/requests/{id}`: one request, bodies included.
- `GET /admin/requests.csv?...`: the same filters, up to 10,000 rows, bodies left out.
"""

from __future__ import annotations

import csv
import io
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sluicegate.admin.catalog import RawBody
from sluicegate.cli.usage import log_json
from sluicegate.protocol.errors import BadRequest, NotFound
from sluicegate.store.logsearch import MAX_PAGE, LogQuery, status_range

if TYPE_CHECKING:
    from sluicegate.admin.keys import AdminRequest

CSV_MAX_ROWS = 10_000
CSV_COLUMNS = (
    "id", "time", "request_id", "key_id", "key_name", "endpoint", "model_requested", "model_served",
    "upstream", "channel", "status", "error_type", "prompt_tokens", "completion_tokens", "cached_tokens",
    "reasoning_tokens", "usage_estimated", "cost", "currency", "latency_ms", "ttft_ms", "stream", "client_ip",
)  # fmt: skip


def _time(text: str, name: str) -> float:
    try:
        return float(text)
    except ValueError:
        pass
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise BadRequest(
            f"{name} must be epoch seconds or an ISO 8601 time such as 2026-12-04T10:00:00Z.",
            param=name,
            code="invalid_time",
        ) from None


def log_query(query: dict[str, str], *, limit: int | None = None) -> LogQuery:
    """A LogQuery from the URL's parameters, refusing malformed ones with a 400 that names them."""
    status = query.get("status") or None
    if status is not None:
        try:
            status_range(status)
        except ValueError:
            raise BadRequest(
                "status must be 2xx, 3xx, 4xx, 5xx, error or a status code such as 429.",
                param="status",
                code="invalid_status",
            ) from None
    if limit is None:
        try:
            limit = int(query.get("limit", "50"))
        except ValueError:
            limit = -1
        if not 1 <= limit <= MAX_PAGE:
            raise BadRequest(
                f"limit must be a whole number from 1 to {MAX_PAGE}.", param="limit", code="invalid_limit"
            )
    before = query.get("before") or None
    if before is not None and not before.isdigit():
        raise BadRequest("before must be a row id (next_before of the last page).", param="before")
    return LogQuery(
        key_id=query.get("key") or None,
        model=query.get("model") or None,
        status=status,
        error=query.get("error") or None,
        since=_time(query["since"], "since") if query.get("since") else None,
        until=_time(query["until"], "until") if query.get("until") else None,
        text=(query.get("q") or "").strip() or None,
        in_bodies=query.get("bodies", "") in ("1", "true", "yes"),
        request_id=query.get("request_id") or None,
        before=int(before) if before is not None else None,
        limit=limit,
    )


def _row(entry: Any) -> dict[str, Any]:
    row = log_json(entry.id, entry.record)
    row["has_request_body"] = row.pop("request_body") is not None
    row["has_response_body"] = row.pop("response_body") is not None
    return row


async def search(req: AdminRequest) -> tuple[int, Any]:
    """`GET /admin/requests`: one page of matching requests, newest first."""
    q = log_query(req.query)
    entries = await req.gw.store.logs.search(q)
    more = len(entries) == q.limit
    return 200, {
        "object": "list",
        "data": [_row(e) for e in entries],
        "has_more": more,
        "next_before": entries[-1].id if more and entries else None,
    }


async def show(req: AdminRequest, entry_id: str) -> tuple[int, Any]:
    """`GET /admin/requests/{id}`: one logged request with its stored bodies."""
    entry = await req.gw.store.logs.get(int(entry_id)) if entry_id.isdigit() else None
    if entry is None:
        raise NotFound(f"No logged request with id {entry_id}.", code="request_not_found")
    return 200, log_json(entry.id, entry.record)


async def export_csv(req: AdminRequest) -> tuple[int, Any]:
    """`GET /admin/requests.csv`: the matching requests as CSV (UTF-8 with a BOM, for spreadsheets)."""
    entries = await req.gw.store.logs.search(log_query(req.query, limit=CSV_MAX_ROWS))
    out = io.StringIO()
    out.write("\ufeff")  # Excel reads UTF-8 (a Chinese key name) only with the byte order mark
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for e in entries:
        row = log_json(e.id, e.record)
        writer.writerow(["" if row[c] is None else row[c] for c in CSV_COLUMNS])
    return 200, RawBody("text/csv; charset=utf-8", out.getvalue().encode(), "sluicegate-requests.csv")
