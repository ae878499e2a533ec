"""The audit log as people and scripts read it: entries as JSON, and the time filters `since`/`until`.

Pure functions; the entries themselves are written by the store in the transaction of each change
(store/catalog.py), and read by `GET /admin/audit` and `sluicegate audit`.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any


def iso(ts: float | None) -> str | None:
    """Epoch seconds as ISO 8601 UTC (`2026-12-04T17:00:00Z`)."""
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


_UNITS = {"d": 86400.0, "h": 3600.0, "m": 60.0}


def parse_since(text: str | None, now: float | None = None) -> float | None:
    """A point in time for audit filters: '7d' / '12h' / '30m' ago, an ISO date or date-time (UTC)."""
    if not text:
        return None
    text = text.strip()
    now = time.time() if now is None else now
    if len(text) > 1 and text[-1] in _UNITS and text[:-1].isdigit():
        return now - int(text[:-1]) * _UNITS[text[-1]]
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"{text!r} is not a time: use 7d, 12h, 30m, 2026-12-01 or an ISO date-time"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def audit_json(entry: Any) -> dict[str, Any]:
    return {
        "id": entry.id,
        "ts": iso(entry.ts),
        "actor": entry.actor,
        "action": entry.action,
        "target_kind": entry.target_kind,
        "target": entry.target,
        "before": entry.before,
        "after": entry.after,
    }
