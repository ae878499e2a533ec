"""`GET /admin/quotas`: each key's limits with what the limiter holds against them now.

The dashboard's keys page shows "12 of 60 requests this minute, $3.20 of $10 today" at a glance. The
figures are the limiter's own (`Limiter.peek`): the same counters that admit or refuse the key's next
request, budgets included (seeded from the store at start, then counted live), so the page and the
gateway cannot disagree. Read-only; nothing is consumed.

With Redis the counters are shared by every worker and node. Without it each worker holds an equal
share of every limit and counts only its own requests: the answer says so (`shared: false`,
`workers`) and reports the answering worker's share.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sluicegate.limits import LimiterUnavailable, Quota
from sluicegate.protocol.errors import ServiceUnavailable

if TYPE_CHECKING:
    from sluicegate.admin.keys import AdminRequest


def limit_name(q: Quota) -> str:
    """The key field a quota comes from: rpm, rpd, tpm, concurrency, budget_usd_day, ...; a key's user's
    and team's quotas (tenancy) are prefixed `user_` / `team_` (`user_rpm`, `team_budget_balance_total`:
    the balance, in micro-units, its limit everything credited)."""
    owner = q.scope.partition(":")[0]
    prefix = f"{owner}_" if owner in ("user", "team") else ""
    return prefix + _field_name(q)


def _field_name(q: Quota) -> str:
    if q.kind == "concurrency":
        return "concurrency"
    if q.kind == "budget":
        return f"budget_{'usd' if q.metric == 'cost' else q.metric}_{q.period}"
    return {("requests", "minute"): "rpm", ("requests", "day"): "rpd", ("tokens", "minute"): "tpm"}.get(
        (q.metric, q.period), f"{q.metric}_per_{q.period}"
    )


async def quotas(req: AdminRequest) -> tuple[int, Any]:
    """Every key with limits: per limit its kind, period, limit and the amount used now."""
    gw = req.gw
    rows: list[dict[str, Any]] = []
    for entry in gw.keys.entries():
        record = entry.record
        if req.query.get("key") and record.id != req.query["key"]:
            continue
        qs = gw.limits.quotas_for(entry, None) if gw.limits is not None else ()
        if not qs:
            continue
        try:
            used = await gw.limits.limiter.peek(qs)
        except LimiterUnavailable as exc:
            raise ServiceUnavailable(
                f"The limiter's store did not answer: {exc}", code="limiter_unavailable"
            ) from None
        rows.append(
            {
                "key_id": record.id,
                "key_name": record.name,
                "limits": {
                    limit_name(q): {
                        "kind": q.kind,
                        "metric": q.metric,
                        "period": q.period or None,
                        "limit": q.limit,
                        "used": round(u, 6),
                    }
                    for q, u in zip(qs, used, strict=True)
                },
            }
        )
    settings = gw.settings
    return 200, {
        "object": "list",
        "shared": bool(settings.redis),
        "workers": settings.server.workers,
        "data": rows,
    }
