"""Users, teams, groups, balances and redemption codes over HTTP (docs/tenancy.md, docs/admin-api.md).

The same repository and JSON as `sluicegate users|teams|groups|balance|codes`. Never returned: password
hashes (only `has_password`), code hashes, and a batch's codes after the answer that created them.
After a change this gateway reloads its keys and tenancy state at once (balances, ratios, visibility);
other gateways follow at their next revision poll, or at once through Redis.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from sluicegate.admin.keys import AdminRequest, changed
from sluicegate.protocol.errors import BadRequest, GatewayError, NotFound
from sluicegate.store.expiry import InvalidExpiry, parse_expiry
from sluicegate.store.ledger import (
    REFUND,
    TOPUP,
    CodeRefused,
    InvalidAmount,
    OwnerNotFound,
    from_micro,
    parse_owner,
    to_micro,
)
from sluicegate.store.passwords import WeakPassword
from sluicegate.store.tenancy_types import OWNER_LIMITS, NameTaken, TenancyError

log = logging.getLogger("sluicegate.admin")


class Conflict(GatewayError):
    status = 409
    type = "invalid_request_error"
    code = "name_taken"


def store_errors(exc: Exception) -> GatewayError:
    """The repository's errors as OpenAI-shaped answers."""
    if isinstance(exc, NameTaken):
        return Conflict(str(exc).capitalize() + ".", param="name")
    if isinstance(exc, OwnerNotFound):
        return NotFound(f"No user or team with id {exc.args[0]!r}.", code="owner_not_found")
    if isinstance(exc, CodeRefused):
        return BadRequest(str(exc).capitalize() + ".", param="code", code=f"code_{exc.reason}")
    if isinstance(exc, InvalidAmount):
        return BadRequest(str(exc).capitalize() + ".", param="amount", code="invalid_amount")
    if isinstance(exc, WeakPassword):
        return BadRequest(str(exc).capitalize() + ".", param="password", code="weak_password")
    if isinstance(exc, TenancyError | InvalidExpiry):
        return BadRequest(str(exc).capitalize() + ".", code="invalid_tenancy_field")
    raise exc


_ERRORS = (NameTaken, OwnerNotFound, CodeRefused, InvalidAmount, WeakPassword, TenancyError, InvalidExpiry)


def _only(body: dict[str, Any], allowed: tuple[str, ...]) -> None:
    unknown = set(body) - set(allowed)
    if unknown:
        raise BadRequest(f"Unknown field(s): {', '.join(sorted(unknown))}.", code="invalid_tenancy_field")


async def _team_id(gw: Any, value: Any) -> str | None:
    """A team given by id or name."""
    if value is None:
        return None
    team = await gw.store.tenancy.get_team(str(value))
    if team is None:
        raise NotFound(f"No team {value!r}.", code="owner_not_found")
    return str(team.id)


# -- users -------------------------------------------------------------------------------------------


async def list_users(req: AdminRequest) -> tuple[int, Any]:
    users = await req.gw.store.tenancy.list_users()
    return 200, {"object": "list", "data": [u.to_json() for u in users]}


async def create_user(req: AdminRequest) -> tuple[int, Any]:
    body = await req.json()
    _only(body, ("name", "role", "group", "team", "team_id", "password"))
    try:
        team_id = await _team_id(req.gw, body.get("team_id", body.get("team")))
        user = await req.gw.store.tenancy.create_user(
            body.get("name"),
            role=body.get("role", "member"),
            group=body.get("group", "default"),
            team_id=team_id,
            password=body.get("password"),
        )
    except _ERRORS as exc:
        raise store_errors(exc) from None
    await changed(req.gw)
    log.info("admin: created user %s", user.id)
    return 201, user.to_json()


async def _user(req: AdminRequest, id_or_name: str) -> Any:
    user = await req.gw.store.tenancy.get_user(id_or_name)
    if user is None:
        raise NotFound(f"No user {id_or_name!r}.", code="owner_not_found")
    return user


async def show_user(req: AdminRequest, id_or_name: str) -> tuple[int, Any]:
    user = await _user(req, id_or_name)
    balance = await req.gw.store.tenancy.balance(user.id)
    return 200, {**user.to_json(), "balance": balance.to_json()}


async def update_user(req: AdminRequest, id_or_name: str) -> tuple[int, Any]:
    body = await req.json()
    _only(body, ("name", "role", "group", "team", "team_id", "disabled", "password", "sso", *OWNER_LIMITS))
    user = await _user(req, id_or_name)
    fields = dict(body)
    try:
        if "team" in fields or "team_id" in fields:
            fields["team_id"] = await _team_id(req.gw, fields.pop("team_id", fields.pop("team", None)))
            fields.pop("team", None)
        updated = await req.gw.store.tenancy.update_user(user.id, **fields)
    except _ERRORS as exc:
        raise store_errors(exc) from None
    await changed(req.gw)
    log.info("admin: updated user %s (%s)", user.id, ", ".join(sorted(body)))
    return 200, updated.to_json()


# -- teams -------------------------------------------------------------------------------------------


async def list_teams(req: AdminRequest) -> tuple[int, Any]:
    teams = await req.gw.store.tenancy.list_teams()
    return 200, {"object": "list", "data": [t.to_json() for t in teams]}


async def create_team(req: AdminRequest) -> tuple[int, Any]:
    body = await req.json()
    _only(body, ("name", "group"))
    try:
        team = await req.gw.store.tenancy.create_team(body.get("name"), group=body.get("group", "default"))
    except _ERRORS as exc:
        raise store_errors(exc) from None
    await changed(req.gw)
    return 201, team.to_json()


async def show_team(req: AdminRequest, id_or_name: str) -> tuple[int, Any]:
    team = await req.gw.store.tenancy.get_team(id_or_name)
    if team is None:
        raise NotFound(f"No team {id_or_name!r}.", code="owner_not_found")
    balance = await req.gw.store.tenancy.balance(team.id)
    return 200, {**team.to_json(), "balance": balance.to_json()}


async def update_team(req: AdminRequest, id_or_name: str) -> tuple[int, Any]:
    """PATCH /admin/teams/{id}: name, group, and rpm / rpd / tpm / concurrency over all its keys."""
    body = await req.json()
    _only(body, ("name", "group", *OWNER_LIMITS))
    team_id = await _team_id(req.gw, id_or_name)
    try:
        team = await req.gw.store.tenancy.update_team(team_id, **body)
    except _ERRORS as exc:
        raise store_errors(exc) from None
    await changed(req.gw)
    return 200, team.to_json()


async def add_member(req: AdminRequest, id_or_name: str) -> tuple[int, Any]:
    body = await req.json()
    _only(body, ("user_id", "user", "role"))
    team_id = await _team_id(req.gw, id_or_name)
    user = await _user(req, str(body.get("user_id", body.get("user", ""))))
    try:
        team = await req.gw.store.tenancy.add_member(team_id, user.id, body.get("role", "member"))
    except _ERRORS as exc:
        raise store_errors(exc) from None
    await changed(req.gw)
    return 200, team.to_json()


# -- groups ------------------------------------------------------------------------------------------


async def list_groups(req: AdminRequest) -> tuple[int, Any]:
    groups = await req.gw.store.tenancy.list_groups()
    return 200, {"object": "list", "data": [g.to_json() for g in groups]}


async def set_group(req: AdminRequest, name: str | None = None) -> tuple[int, Any]:
    """POST /admin/groups {name, ratio, description, models} or PATCH /admin/groups/{name}: create or change."""
    body = await req.json()
    _only(
        body,
        ("name", "ratio", "description", "models") if name is None else ("ratio", "description", "models"),
    )
    try:
        group = await req.gw.store.tenancy.set_group(
            name if name is not None else body.get("name"),
            ratio=body.get("ratio"),
            description=body.get("description"),
            models=body.get("models"),
        )
    except _ERRORS as exc:
        raise store_errors(exc) from None
    await changed(req.gw)
    return 200, group.to_json()


async def show_group(req: AdminRequest, name: str) -> tuple[int, Any]:
    group = await req.gw.store.tenancy.get_group(name)
    if group is None:
        raise NotFound(f"No group {name!r}.", code="group_not_found")
    return 200, group.to_json()


# -- balances ------------------------------------------------------------------------------------------


async def _owner(req: AdminRequest, owner: str) -> str:
    """A user or team id (or a user's / team's name) as "user:<id>" / "team:<id>"."""
    try:
        kind, owner_id = parse_owner(owner)
        return f"{kind}:{owner_id}"
    except OwnerNotFound:
        pass
    user = await req.gw.store.tenancy.get_user(owner)
    if user is not None:
        return f"user:{user.id}"
    team = await req.gw.store.tenancy.get_team(owner)
    if team is not None:
        return f"team:{team.id}"
    raise NotFound(f"No user or team {owner!r}.", code="owner_not_found")


async def show_balance(req: AdminRequest, owner: str) -> tuple[int, Any]:
    """{"balance", "currency", "ledger": [...]}, the ledger newest first (`?limit=`, `?before=<id>`)."""
    who = await _owner(req, owner)
    try:
        limit = int(req.query.get("limit", "100"))
        before = int(req.query["before"]) if "before" in req.query else None
    except ValueError:
        raise BadRequest("limit and before must be whole numbers.", code="invalid_tenancy_field") from None
    try:
        balance = await req.gw.store.tenancy.balance(who)
        entries = await req.gw.store.tenancy.ledger(who, limit=limit, before=before)
    except _ERRORS as exc:
        raise store_errors(exc) from None
    return 200, {**balance.to_json(), "ledger": [e.to_json() for e in entries]}


async def topup(req: AdminRequest, owner: str) -> tuple[int, Any]:
    """POST /admin/balances/{owner}/topup {amount, reason[, kind: topup|refund]}."""
    body = await req.json()
    _only(body, ("amount", "reason", "kind"))
    who = await _owner(req, owner)
    kind = body.get("kind", TOPUP)
    if kind not in (TOPUP, REFUND):
        raise BadRequest("kind is topup or refund.", param="kind", code="invalid_tenancy_field")
    try:
        entry = await req.gw.store.tenancy.topup(
            who, to_micro(body.get("amount")), body.get("reason", ""), actor=req.actor, kind=kind
        )
        balance = await req.gw.store.tenancy.balance(who)
    except _ERRORS as exc:
        raise store_errors(exc) from None
    await changed(req.gw)
    log.info("admin: %s of %s to %s", kind, entry.amount, who)
    return 200, {**balance.to_json(), "entry": entry.to_json()}


# -- redemption codes ------------------------------------------------------------------------------------


async def create_codes(req: AdminRequest) -> tuple[int, Any]:
    """POST /admin/codes {amount, count, expires}: the codes, in this answer only."""
    body = await req.json()
    _only(body, ("amount", "count", "expires"))
    count = body.get("count", 1)
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= 10_000:
        raise BadRequest(
            "count must be a whole number from 1 to 10000.", param="count", code="invalid_tenancy_field"
        )
    try:
        expires = body.get("expires")
        expires_at = parse_expiry(str(expires), time.time()) if expires is not None else None
        batch_id, codes = await req.gw.store.tenancy.create_codes(
            to_micro(body.get("amount")), count, expires_at
        )
    except _ERRORS as exc:
        raise store_errors(exc) from None
    log.info("admin: created %d redemption code(s) in batch %s", count, batch_id)
    return 201, {
        "batch_id": batch_id,
        "amount": from_micro(to_micro(body["amount"])),
        "currency": req.gw.store.tenancy.currency,
        "expires_at": expires_at,
        "codes": codes,
    }


async def list_codes(req: AdminRequest) -> tuple[int, Any]:
    codes = await req.gw.store.tenancy.list_codes(req.query.get("batch"))
    return 200, {"object": "list", "data": codes}


async def redeem_code(req: AdminRequest) -> tuple[int, Any]:
    """POST /admin/codes/redeem {code, user_id}: on a user's behalf."""
    body = await req.json()
    _only(body, ("code", "user_id", "user"))
    user = await _user(req, str(body.get("user_id", body.get("user", ""))))
    if not isinstance(body.get("code"), str):
        raise BadRequest("code is required.", param="code", code="invalid_tenancy_field")
    try:
        entry = await req.gw.store.tenancy.redeem(body["code"], user.id)
        balance = await req.gw.store.tenancy.balance(user.id)
    except _ERRORS as exc:
        raise store_errors(exc) from None
    await changed(req.gw)
    return 200, {**balance.to_json(), "entry": entry.to_json()}
