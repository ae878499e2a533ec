"""`GET /admin/selfhost`: "should we self-host?" from this gateway's own traffic, for the dashboard.

The same answer as `sluicegate plan --from-usage --json` (sluicegate.planner.selfhost), so the page
and the terminal never disagree. Sizing ranks every GPU over several card counts and layouts: tens
to hundreds of milliseconds of pure CPU, so it runs in a worker thread, never on the event loop that
proxies requests; only the two read-only store queries run on the loop.
"""

from __future__ import annotations

import asyncio
from datetime import date
from typing import TYPE_CHECKING, Any

from sluicegate.planner.catalog import load_catalog
from sluicegate.planner.engines import ENGINES, get_engine
from sluicegate.planner.precision import parse_precision
from sluicegate.planner.selfhost import assess
from sluicegate.protocol.errors import BadRequest
from sluicegate.store.traffic import traffic_by_model

if TYPE_CHECKING:
    from sluicegate.admin.keys import AdminRequest


def _params(q: dict[str, str]) -> tuple[date | None, str, str, str, dict[str, str]]:
    try:
        since = date.fromisoformat(q["since"]) if q.get("since") else None
    except ValueError:
        raise BadRequest("since must be a date, YYYY-MM-DD.", param="since", code="invalid_date") from None
    currency = (q.get("currency") or "USD").upper()
    if currency not in ("USD", "CNY"):
        raise BadRequest("currency must be USD or CNY.", param="currency", code="invalid_currency")
    engine = (q.get("engine") or "vllm").lower()
    if engine not in ENGINES:
        raise BadRequest(
            f"engine must be one of {', '.join(ENGINES)}.", param="engine", code="invalid_engine"
        )
    precision = (q.get("precision") or "fp8").lower()
    maps: dict[str, str] = {}
    for pair in filter(None, (q.get("map") or "").split(",")):
        api_model, sep, open_model = pair.partition("=")
        if not sep or not api_model.strip() or not open_model.strip():
            raise BadRequest("map is API_MODEL=OPEN_MODEL[,...].", param="map", code="invalid_map")
        maps[api_model.strip()] = open_model.strip()
    return since, currency, engine, precision, maps


async def selfhost(req: AdminRequest) -> tuple[int, Any]:
    """`GET /admin/selfhost?since=YYYY-MM-DD&currency=USD|CNY&engine=vllm&precision=fp8&map=A=B,...`."""
    since, currency, engine, precision, maps = _params(req.query)
    traffic = list((await traffic_by_model(req.gw.store.engine, since)).values())

    def compute() -> dict[str, Any]:
        catalog = load_catalog()
        for open_model in maps.values():
            catalog.model(open_model)
        return assess(
            traffic,
            catalog,
            currency,
            get_engine(engine),
            maps,
            parse_precision(precision),
            since,
            None,
            date.today(),
        )

    try:
        return 200, await asyncio.to_thread(compute)
    except (KeyError, ValueError) as exc:
        raise BadRequest(
            str(exc.args[0] if exc.args else exc), param="map", code="invalid_parameter"
        ) from None
