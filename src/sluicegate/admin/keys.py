"""Managed keys over HTTP: the same fields, checks and JSON as `sluicegate keys`.

A key created through the API and one created with the CLI must be indistinguishable, so this module
owns no rule of its own: the CLI's option parsing (`option_fields`: limits where 0 or null means "no limit",
`budget_tokens` + `budget_period`, `expires` as `30d` or a date) and its JSON (`key_json`) are reused,
and the store's `normalise_key_fields` has the last word on every value. After a change this node's
key cache is refreshed at once, and other nodes are woken through Redis when there is one.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import click

from sluicegate.cli._common import split_list
from sluicegate.cli.keys import INT_LIMIT, USD_LIMIT, key_json, option_fields
from sluicegate.protocol.errors import BadRequest, GatewayError, NotFound
from sluicegate.server.body import parse_json_object
from sluicegate.store.keyfields import LIMIT_FIELDS, InvalidKeyField, normalise_key_fields
from sluicegate.store.keys import KeyAudit, KeyNameTaken, KeyNotFound, KeyRevoked

log = logging.getLogger("sluicegate.admin")

_TEXT_FIELDS = ("name", "owner")
_OWNER_FIELDS = ("user_id", "team_id")  # tenancy: the user or team the key belongs to (and is charged to)
_FLAG_FIELDS = ("enabled", "store_bodies")
_LIST_FIELDS = {"models": "models", "endpoints": "endpoints", "networks": "networks", "ip": "networks"}
_COUNT_LIMITS = ("rpm", "rpd", "tpm", "concurrency")
_PERIODS = ("day", "month", "total")
ACCEPTED_FIELDS = frozenset(
    (
        *_TEXT_FIELDS,
        *_OWNER_FIELDS,
        *_FLAG_FIELDS,
        *_LIST_FIELDS,
        *_COUNT_LIMITS,
        "budget_tokens",
        "budget_usd",
        "budget_period",
        "expires",
        "expires_at",
        "limits",
        "cache",
    )
)


class KeyConflict(GatewayError):
    """The key is revoked: revocation is final, so it cannot be changed."""

    status = 409
    type = "invalid_request_error"
    code = "key_revoked"


def _name_taken(exc: KeyNameTaken) -> KeyConflict:
    return KeyConflict(str(exc).capitalize() + ".", param="name", code="key_name_taken")


def _audit(req: AdminRequest) -> KeyAudit:
    """Key changes through the API are audited like catalog changes, under who made them."""
    return KeyAudit(req.actor, lambda record: key_json(record, time.time()))


def _check_file_names(gw: Any, fields: dict[str, Any]) -> None:
    """A managed key may not take the name of a key written in the file either."""
    name = fields.get("name")
    if name is not None and any(k.name == name for k in gw.settings.keys):
        raise _name_taken(KeyNameTaken(name))


@dataclass(slots=True)
class AdminRequest:
    """What an admin handler may use: the gateway, the raw request, and its query parameters."""

    gw: Any
    scope: Any
    proto: Any
    query: dict[str, str]
    actor: str = ""  # who acts, for the audit log: `admin:<key fingerprint>` or `operator:<user name>`

    async def json(self) -> dict[str, Any]:
        body = await self.gw.read_body(self.proto, self.scope.headers)
        return parse_json_object(body)


def key_fields(body: dict[str, Any], now: float) -> dict[str, Any]:
    """Store fields from an admin JSON body, read exactly as the CLI reads its options."""
    unknown = set(body) - ACCEPTED_FIELDS
    if unknown:
        raise BadRequest(f"Unknown key field(s): {', '.join(sorted(unknown))}.", code="invalid_key_field")
    fields: dict[str, Any] = {}
    options: dict[str, Any] = {}  # the CLI's vocabulary, for the CLI's own parser
    try:
        for name in (*_TEXT_FIELDS, *_OWNER_FIELDS, *_FLAG_FIELDS, "cache"):
            if name in body:
                fields[name] = body[name]
        for name, field in _LIST_FIELDS.items():
            if name in body:
                value = body[name]
                fields[field] = split_list(value) if isinstance(value, str) else value
        for name in _COUNT_LIMITS:
            if name in body:
                options[name] = INT_LIMIT.convert(body[name], None, None)
        if "budget_tokens" in body:
            options["budget_tokens"] = INT_LIMIT.convert(body["budget_tokens"], None, None)
        if "budget_usd" in body:
            options["budget_usd"] = USD_LIMIT.convert(body["budget_usd"], None, None)
        period = body.get("budget_period")
        if period is not None and period not in _PERIODS:
            raise InvalidKeyField(f"budget_period must be one of {', '.join(_PERIODS)}")
        options["budget_period"] = period
        for name in ("expires", "expires_at"):
            if name in body:
                value = body[name]
                if value is not None and not isinstance(value, str):
                    raise BadRequest(
                        f"{name} must be text (30d, 12h, 2026-12-31, an ISO date-time) or null.",
                        param=name,
                        code="invalid_key_field",
                    )
                options["expires"] = value if value is not None else "never"
        fields.update(option_fields(options, now))
        fields.update(_limits_object(body.get("limits")))
        return normalise_key_fields(fields)
    except click.ClickException as exc:
        raise BadRequest(exc.message, code="invalid_key_field") from None
    except InvalidKeyField as exc:
        raise BadRequest(str(exc), code="invalid_key_field") from None


def _limits_object(value: Any) -> dict[str, Any]:
    """`"limits": {"rpm": 60, "budget_usd_month": null}` as `key_json` prints it; 0 or null removes."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidKeyField("limits must be an object of limit names to numbers or null")
    unknown = set(value) - set(LIMIT_FIELDS)
    if unknown:
        raise InvalidKeyField(f"unknown limit(s): {', '.join(sorted(unknown))}")
    return {name: (None if v == 0 and not isinstance(v, bool) else v) for name, v in value.items()}


async def changed(gw: Any) -> None:
    """Make a key change visible now: on this node at once, on others through Redis (or their poll)."""
    if gw.keysync is not None:
        try:
            await gw.keysync.refresh()
        except Exception as exc:
            log.warning("key cache refresh after an admin change failed: %s", type(exc).__name__)
    if gw.redis is not None:
        from sluicegate.server.keysync import notify

        await notify(gw.redis)


async def list_keys(req: AdminRequest) -> tuple[int, Any]:
    include_revoked = req.query.get("all", "").lower() in ("1", "true", "yes")
    records = await req.gw.store.keys.list(include_revoked=include_revoked)
    now = time.time()
    return 200, {"object": "list", "data": [key_json(r, now) for r in records]}


async def create_key(req: AdminRequest) -> tuple[int, Any]:
    body = await req.json()
    if not isinstance(body.get("name"), str) or not body["name"].strip():
        raise BadRequest("name is required.", param="name", code="invalid_key_field")
    now = time.time()
    fields = key_fields(body, now)
    _check_file_names(req.gw, fields)
    try:
        record, secret = await req.gw.store.keys.create(fields, _audit(req))
    except KeyNameTaken as exc:
        raise _name_taken(exc) from None
    await changed(req.gw)
    log.info("admin: created key %s (%s)", record.id, record.name)
    return 201, {"key": secret, **key_json(record, now)}


async def show_key(req: AdminRequest, key_id: str) -> tuple[int, Any]:
    record = await req.gw.store.keys.get(key_id)
    if record is None:
        raise _not_found(key_id)
    return 200, key_json(record, time.time())


async def update_key(req: AdminRequest, key_id: str) -> tuple[int, Any]:
    body = await req.json()
    fields = key_fields(body, time.time())
    if not fields:
        raise BadRequest("Nothing to change: give at least one field.", code="invalid_key_field")
    _check_file_names(req.gw, fields)
    try:
        record = await req.gw.store.keys.update(key_id, _audit(req), **fields)
    except KeyNameTaken as exc:
        raise _name_taken(exc) from None
    except KeyNotFound:
        raise _not_found(key_id) from None
    except KeyRevoked:
        raise KeyConflict(f"Key {key_id} is revoked; revocation is final (create a new key).") from None
    await changed(req.gw)
    log.info("admin: updated key %s (%s)", record.id, ", ".join(sorted(fields)))
    return 200, key_json(record, time.time())


async def revoke_key(req: AdminRequest, key_id: str) -> tuple[int, Any]:
    try:
        record = await req.gw.store.keys.revoke(key_id, _audit(req))
    except KeyNotFound:
        raise _not_found(key_id) from None
    await changed(req.gw)
    log.info("admin: revoked key %s (%s)", record.id, record.name)
    return 200, key_json(record, time.time())


def _not_found(key_id: str) -> NotFound:
    return NotFound(f"No key with id {key_id!r}.", code="key_not_found")
