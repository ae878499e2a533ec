"""The catalog over HTTP: upstreams, model routes, prices, channel operations and the audit log.

Thin: each handler reads the body, calls `CatalogService` (the CLI calls the same), maps its refusals
to OpenAI-shaped errors with the field path in `param`, and after a change rebuilds this worker's
routes at once and wakes the other workers and nodes (Redis), whose poll would catch up anyway.
Names are the last path segment, URL-decoded; channel names ("upstream/model") are whatever lies
between /admin/channels/ and the operation, so their slash needs no encoding (though %2F works).
"""

from __future__ import annotations

import csv
import hashlib
import io
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from sluicegate.catalog.audit import audit_json, parse_since
from sluicegate.catalog.fields import CatalogError, Conflict, Invalid, Missing
from sluicegate.catalog.service import CatalogService
from sluicegate.protocol.errors import BadRequest, GatewayError, NotFound, ServiceUnavailable
from sluicegate.store.catalog import Audit
from sluicegate.store.crypto import MasterKeyMissing, SecretsUnreadable

if TYPE_CHECKING:
    from sluicegate.admin.keys import AdminRequest

log = logging.getLogger("sluicegate.admin")

AUDIT_LIMIT = 10_000


class CatalogConflict(GatewayError):
    status = 409
    type = "invalid_request_error"
    code = "conflict"


@dataclass(frozen=True, slots=True)
class RawBody:
    """A non-JSON answer (an audit export)."""

    content_type: str
    data: bytes
    filename: str


def actor(admin_key: str) -> str:
    """Who is acting, for the audit log: a fingerprint of the admin key, never the key."""
    return "admin:" + hashlib.sha256(admin_key.encode()).hexdigest()[:12]


def service(req: AdminRequest) -> CatalogService:
    gw = req.gw
    box = gw.configsync.box if gw.configsync is not None else None
    if box is None:
        from sluicegate.store.crypto import SecretBox

        box = SecretBox(gw.file_settings.master_key)
    return CatalogService(gw.store, gw.file_settings, box, req.actor)


def as_http(exc: Exception, kind: str) -> GatewayError:
    """The catalog's refusals as the API's errors (400 with a field path, 404, 409)."""
    if isinstance(exc, Invalid):
        return BadRequest(exc.message, param=exc.param, code=f"invalid_{kind}")
    if isinstance(exc, Missing):
        return NotFound(exc.message, param=exc.param, code=f"{kind}_not_found")
    if isinstance(exc, Conflict):
        return CatalogConflict(exc.message, param=exc.param)
    if isinstance(exc, MasterKeyMissing):
        return BadRequest(str(exc), param="api_key", code="master_key_missing")
    if isinstance(exc, SecretsUnreadable):
        return CatalogConflict(str(exc), param="api_key", code="secrets_unreadable")
    raise exc


async def changed(gw: Any) -> None:
    """Make a catalog change visible now: this worker at once, the others through Redis or their poll."""
    if gw.configsync is not None:
        try:
            await gw.configsync.refresh()
        except Exception as exc:
            log.warning("route rebuild after an admin change failed: %s", type(exc).__name__)
    if gw.redis is not None:
        from sluicegate.server.configsync import notify

        await notify(gw.redis)


async def _run(req: AdminRequest, kind: str, call: Any, *, write: bool) -> Any:
    try:
        result = await call
    except (CatalogError, MasterKeyMissing, SecretsUnreadable) as exc:
        raise as_http(exc, kind) from None
    if write:
        await changed(req.gw)
    return result


# -- upstreams ----------------------------------------------------------------------------------------


async def list_upstreams(req: AdminRequest) -> tuple[int, Any]:
    return 200, {
        "object": "list",
        "data": await _run(req, "upstream", service(req).list_upstreams(), write=False),
    }


async def create_upstream(req: AdminRequest) -> tuple[int, Any]:
    body = await req.json()
    return 201, await _run(req, "upstream", service(req).create_upstream(body), write=True)


async def show_upstream(req: AdminRequest, name: str) -> tuple[int, Any]:
    return 200, await _run(req, "upstream", service(req).get_upstream(name), write=False)


async def update_upstream(req: AdminRequest, name: str) -> tuple[int, Any]:
    body = await req.json()
    return 200, await _run(req, "upstream", service(req).update_upstream(name, body), write=True)


async def delete_upstream(req: AdminRequest, name: str) -> tuple[int, Any]:
    return 200, await _run(req, "upstream", service(req).delete_upstream(name), write=True)


# -- model routes -------------------------------------------------------------------------------------


async def list_models(req: AdminRequest) -> tuple[int, Any]:
    return 200, {"object": "list", "data": await _run(req, "model", service(req).list_models(), write=False)}


async def create_model(req: AdminRequest) -> tuple[int, Any]:
    body = await req.json()
    return 201, await _run(req, "model", service(req).create_model(body), write=True)


async def show_model(req: AdminRequest, name: str) -> tuple[int, Any]:
    return 200, await _run(req, "model", service(req).get_model(name), write=False)


async def update_model(req: AdminRequest, name: str) -> tuple[int, Any]:
    body = await req.json()
    return 200, await _run(req, "model", service(req).update_model(name, body), write=True)


async def delete_model(req: AdminRequest, name: str) -> tuple[int, Any]:
    return 200, await _run(req, "model", service(req).delete_model(name), write=True)


# -- prices -------------------------------------------------------------------------------------------


async def list_prices(req: AdminRequest) -> tuple[int, Any]:
    return 200, {"object": "list", "data": await _run(req, "price", service(req).list_prices(), write=False)}


async def set_price(req: AdminRequest) -> tuple[int, Any]:
    body = await req.json()
    created, price = await _run(req, "price", service(req).set_price(body), write=True)
    return (201 if created else 200), price


async def delete_price(req: AdminRequest, model: str) -> tuple[int, Any]:
    return 200, await _run(req, "price", service(req).delete_price(model), write=True)


# -- channels -----------------------------------------------------------------------------------------


def _channel_record(gw: Any, name: str) -> dict[str, Any] | None:
    for record in gw.router.snapshot().get("channels", []):
        if record.get("name") == name:
            return {k: v for k, v in record.items() if k != "keys"}
    return None


def _known_channels(gw: Any) -> set[str]:
    """Channel names served now, plus those switched off (which left the routes)."""
    from sluicegate.routing.routes import build_routes

    known = {c.name for channels in build_routes(gw.settings).values() for c in channels}
    return known | set(gw.disabled_channels)


async def test_channel(req: AdminRequest, name: str) -> tuple[int, Any]:
    gw = req.gw
    if gw.router.channel(name) is None:
        raise _no_channel(gw, name)
    if gw.health is None:
        raise ServiceUnavailable("Channel tests need a started gateway.", code="not_started")
    result = await gw.health.test(name)
    if result is None:  # the routes changed while the test started
        raise _no_channel(gw, name)
    result["state"] = (_channel_record(gw, name) or {}).get("state")
    return 200, result


async def reset_channel(req: AdminRequest, name: str) -> tuple[int, Any]:
    gw = req.gw
    router = gw.router
    channel = router.channel(name)
    if channel is None:
        raise _no_channel(gw, name)
    before = _channel_record(gw, name)
    router.reset_channel(name)
    if router.upstream_ring(channel.upstream) is not None:
        router.reset_keys(channel.upstream)
    if gw.health is not None:  # publish at once: other workers and nodes adopt the newer record
        try:
            await gw.health.sync()
        except Exception as exc:
            log.warning("could not share a channel reset: %s", type(exc).__name__)
    log.info("admin: reset channel %s", name)
    after = _channel_record(gw, name)
    try:
        await gw.store.catalog.note(Audit(req.actor, "reset", "channel", name, before, after))
    except Exception as exc:  # the reset itself is done; the log says the entry is missing
        log.warning("could not audit the reset of channel %s: %s", name, type(exc).__name__)
    return 200, after


async def enable_channel(req: AdminRequest, name: str) -> tuple[int, Any]:
    return await _switch(req, name, True)


async def disable_channel(req: AdminRequest, name: str) -> tuple[int, Any]:
    return await _switch(req, name, False)


async def _switch(req: AdminRequest, name: str, enabled: bool) -> tuple[int, Any]:
    result = await _run(
        req, "channel", service(req).set_channel(name, enabled, _known_channels(req.gw)), write=True
    )
    record = _channel_record(req.gw, name)
    if record is not None:
        result["state"] = record.get("state")
    return 200, result


def _no_channel(gw: Any, name: str) -> NotFound:
    hint = " It is disabled: POST .../enable first." if name in gw.disabled_channels else ""
    return NotFound(
        f"No channel named {name!r} is routed (see GET /admin/channels).{hint}", code="channel_not_found"
    )


# -- audit --------------------------------------------------------------------------------------------

_AUDIT_COLUMNS = ("id", "ts", "actor", "action", "target_kind", "target", "before", "after")


async def audit(req: AdminRequest) -> tuple[int, Any]:
    """`GET /admin/audit?since=7d&until=&target=&kind=&limit=&format=json|jsonl|csv`."""
    q = req.query
    try:
        since = parse_since(q.get("since"))
        until = parse_since(q.get("until"))
    except ValueError as exc:
        raise BadRequest(
            str(exc), param="since" if q.get("since") else "until", code="invalid_date"
        ) from None
    try:
        limit = int(q.get("limit") or 1000)
    except ValueError:
        limit = -1
    if not 1 <= limit <= AUDIT_LIMIT:
        raise BadRequest(
            f"limit must be a whole number from 1 to {AUDIT_LIMIT}.", param="limit", code="invalid_limit"
        )
    fmt = (q.get("format") or "json").lower()
    if fmt not in ("json", "jsonl", "csv"):
        raise BadRequest("format must be json, jsonl or csv.", param="format", code="invalid_format")
    entries = await req.gw.store.catalog.audit(
        since=since, until=until, target=q.get("target") or None, kind=q.get("kind") or None, limit=limit
    )
    rows = [audit_json(e) for e in entries]
    if fmt == "json":
        return 200, {"object": "list", "data": rows}
    if fmt == "jsonl":
        data = b"".join(orjson.dumps(r) + b"\n" for r in rows)
        return 200, RawBody("application/x-ndjson", data, "sluicegate-audit.jsonl")
    return 200, RawBody("text/csv; charset=utf-8", audit_csv(rows).encode(), "sluicegate-audit.csv")


def audit_csv(rows: list[dict[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(_AUDIT_COLUMNS)
    for r in rows:
        writer.writerow(
            [
                *(r[c] for c in _AUDIT_COLUMNS[:6]),
                "" if r["before"] is None else orjson.dumps(r["before"]).decode(),
                "" if r["after"] is None else orjson.dumps(r["after"]).decode(),
            ]
        )
    return out.getvalue()
