"""Read-only admin reports: usage aggregates, the request log's tail, and channel health.

They answer what `sluicegate usage`, `sluicegate logs` and `sluicegate channels status` print, with
the same parameters and the same JSON rows, so a dashboard and a terminal never disagree.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from sluicegate.cli.usage import DayType, log_json
from sluicegate.protocol.errors import BadRequest, NotFound

if TYPE_CHECKING:
    from sluicegate.admin.keys import AdminRequest

_GROUPINGS = ("key", "model", "day")
MAX_TAIL = 1000


async def usage(req: AdminRequest) -> tuple[int, Any]:
    """`GET /admin/usage?since=7d&until=today&key=ID&model=M&by=key|model|day`."""
    q = req.query
    days = DayType()
    try:
        since = days.convert(q["since"], None, None) if q.get("since") else None
        until = days.convert(q["until"], None, None) if q.get("until") else None
    except click.BadParameter as exc:
        raise BadRequest(exc.message, param="since/until", code="invalid_date") from None
    by = q.get("by") or None
    if by is not None and by not in _GROUPINGS:
        raise BadRequest(f"by must be one of {', '.join(_GROUPINGS)}.", param="by", code="invalid_grouping")
    rows = await req.gw.store.usage.query(
        since=since, until=until, key_id=q.get("key") or None, model=q.get("model") or None, by=by
    )
    return 200, {"object": "list", "data": rows}


async def logs(req: AdminRequest) -> tuple[int, Any]:
    """`GET /admin/logs?tail=N`: the N most recent logged requests, oldest first (default 20)."""
    text = req.query.get("tail", "20")
    try:
        count = int(text)
    except ValueError:
        count = -1
    if not 0 <= count <= MAX_TAIL:
        raise BadRequest(
            f"tail must be a whole number from 0 to {MAX_TAIL}.", param="tail", code="invalid_tail"
        )
    entries = await req.gw.store.usage.tail(count)
    return 200, {"object": "list", "data": [log_json(e.id, e.record) for e in entries]}


async def channels(req: AdminRequest) -> tuple[int, Any]:
    """`GET /admin/channels`: the router's view of every channel and upstream key (no secrets), and
    the channels switched off (`disabled_channels`)."""
    snapshot = getattr(req.gw.router, "snapshot", None)
    if snapshot is None:
        raise NotFound("This gateway's router keeps no channel status.")
    body = snapshot()
    # Switched-off channels leave the routes (and so the list above); name them, to switch them back on.
    body["disabled_channels"] = sorted(getattr(req.gw, "disabled_channels", ()))
    return 200, body
