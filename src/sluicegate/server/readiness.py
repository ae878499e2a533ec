"""Readiness: whether this worker should get traffic, for load balancers and orchestrators.

Why apart from the shell (server/app.py): the policy is subtle (a store that cannot write while the
request log is durable is "degraded" but still 200, so a logging outage is not turned into a total
one; 503 once usage would be lost) and is read by both /readyz and the admin API.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sluicegate.server.app import Gateway


async def readiness(gw: Gateway) -> tuple[int, dict[str, Any]]:
    """/readyz's status and body: 200 ready or degraded (the log spills, nothing lost), 503 not ready."""
    real = [n for n, u in gw.upstreams.items() if u.kind != "mock"]
    unconfigured = sorted(n for n, u in gw.upstreams.items() if u.missing_key)
    checks: dict[str, Any] = {
        # Ready to serve: some real upstream is usable, or only the built-in mock is set up.
        "upstreams_configured": any(not gw.upstreams[n].missing_key for n in real)
        if real
        else bool(gw.routes),
        "upstreams": {n: ("not_configured" if gw.upstreams[n].missing_key else "configured") for n in real},
        "models": len(gw.routes),
    }
    checks.update(await ready_checks(gw))
    # A store that cannot write while the log is durable (records wait in memory and in the local
    # spill, nothing is lost) is "degraded", still 200: every gateway shares the one database, so
    # taking them all out of the load balancer would turn a logging outage into a total one.
    # 503 once usage is being lost (queue and spill full, or no spill to fall back on).
    store_down = checks.get("store") is False or checks.get("store_writable") is False
    durable = bool(checks.get("log_durable", not store_down)) and (
        not store_down or bool(checks.get("log_can_spill"))
    )
    if "log_durable" in checks:
        checks["log_durable"] = durable
    ok = checks["upstreams_configured"] and checks.get("redis") is not False and (not store_down or durable)
    status = "not_ready" if not ok else "degraded" if store_down else "ready"
    body = {"status": status, **checks}
    if unconfigured:
        body["missing_secrets"] = [f"{path} (${{{var}}})" for path, var in gw.missing_env]
    return (200 if ok else 503), body


async def ready_checks(gw: Gateway) -> dict[str, Any]:
    """What /readyz reports beside the upstreams: the store, the log's durability, Redis, channels."""
    checks: dict[str, Any] = {}
    if gw.store is not None:
        checks["store"] = await gw.store.ping()
    if gw.sink is not None:
        checks["log_queue_depth"] = gw.sink.depth
        checks["store_writable"] = gw.sink.store_writable
        checks["log_spilled"] = gw.sink.spill_pending
        checks["log_can_spill"] = gw.sink.can_spill
        checks["log_durable"] = gw.sink.durable
        checks["log_dropped"] = gw.sink.dropped
    if gw.redis is not None:
        try:
            checks["redis"] = bool(await gw.redis.ping())
        except Exception:
            checks["redis"] = False
    checks["channels"] = [
        {k: v for k, v in c.items() if k != "keys"} for c in gw.router.snapshot().get("channels", [])
    ]
    return checks
