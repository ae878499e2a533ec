"""The portal's HTTP API under /portal/api/: which handler answers which call, and the signed-in user's
balance, ledger, codes, usage and logs (sign-in is in signin.py, keys in keys.py).

Who is asking is the session cookie (a token the tenancy store keeps hashed), looked up on every call: a portal call
is not on the LLM request path, so a query is fine, and signing out or disabling a user takes effect
at once on every worker. Every answer is about the signed-in user only: ids are looked up together with
the user's id in the same query (mine.py), so another user's key is "not found", never "forbidden".
Errors are OpenAI-shaped like every other error.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import parse_qs

import click
import orjson

from sluicegate.cli.usage import DayType
from sluicegate.portal import accounts, keys, signin
from sluicegate.portal.call import (
    MAX_PAGE,
    PREFIX,
    Call,
    check_same_origin,
    holder,
    int_param,
    portal_of,
    read_cookie,
    team_role,
    user_json,
    writer_only,
)
from sluicegate.portal.keys import key_models
from sluicegate.protocol.errors import BadRequest, MethodNotAllowed, NotFound, Unauthorized

log = logging.getLogger("sluicegate.portal")


async def me(call: Call) -> tuple[int, Any]:
    team, role_in_team = await team_role(call)
    money = await call.gw.store.tenancy.balance(f"user:{call.user.id}")
    own_keys = await call.portal.mine.keys(await holder(call))
    models = await key_models(call)
    team_view = None
    if team is not None:
        manage = role_in_team == "team_admin"
        team_view = {"id": team.id, "name": team.name, "role": role_in_team, "manage": manage}
        if manage:  # what the team's keys may be given (its own group's models)
            team_view["models"] = (await key_models(call, team.group)).listed(call.gw.routes)
    oidc = call.gw.settings.portal.oidc
    return 200, {
        "user": user_json(call.user),
        "team": team_view,
        "balance": money.to_json(),
        "can_write": call.user.role != "viewer",
        "has_password": call.user.has_password,
        "may_set_password": call.user.has_password or bool(oidc and oidc.allow_password),
        "keys": {"count": len(own_keys), "max": call.gw.settings.portal.max_keys_per_user},
        "models": models.listed(call.gw.routes),
        "models_restricted": models.restricted,
    }


async def balance(call: Call) -> tuple[int, Any]:
    """`GET balance?owner=user|team&limit=50&before=ID`: the balance and its ledger, newest first."""
    owner = (await holder(call)).account
    limit = int_param(call.query, "limit", 50, 1, MAX_PAGE)
    before = int_param(call.query, "before", None, 1, 2**62)
    assert limit is not None
    tenancy = call.gw.store.tenancy
    current = await tenancy.balance(owner)
    entries = await tenancy.ledger(owner, limit, before)
    return 200, {
        **current.to_json(),
        "ledger": [e.to_json() for e in entries],
        "next_before": entries[-1].id if len(entries) == limit else None,
    }


async def redeem(call: Call) -> tuple[int, Any]:
    from sluicegate.store.ledger import CodeRefused

    check_same_origin(call)
    writer_only(call)
    code = (await call.json()).get("code")
    if not isinstance(code, str) or not code.strip() or len(code) > 200:
        raise BadRequest("code is required.", param="code", code="invalid_value")
    try:
        entry = await call.gw.store.tenancy.redeem(code.strip(), call.user.id)
    except CodeRefused as exc:
        raise BadRequest(str(exc).capitalize() + ".", param="code", code=f"code_{exc.reason}") from None
    log.info("portal: %s redeemed a code", call.user.id)
    current = await call.gw.store.tenancy.balance(f"user:{call.user.id}")
    return 200, {"entry": entry.to_json(), "balance": current.to_json()}


# -- usage and logs ----------------------------------------------------------------------------------------


async def usage(call: Call) -> tuple[int, Any]:
    """`GET usage?since=30d&until=today[&owner=team]`: the user's (or team's) keys' usage per UTC day and model."""
    days = DayType()
    try:
        since = days.convert(call.query.get("since") or "30d", None, None)
        until = days.convert(call.query["until"], None, None) if call.query.get("until") else None
    except click.BadParameter as exc:
        raise BadRequest(exc.message, param="since/until", code="invalid_date") from None
    rows = await call.portal.mine.usage(await holder(call), since, until)
    return 200, {"object": "list", "data": rows}


async def logs(call: Call) -> tuple[int, Any]:
    """`GET logs?limit=50&before=ID&request_id=ID[&owner=team]`: the user's (or team's) keys' requests,
    newest first."""
    limit = int_param(call.query, "limit", 50, 1, MAX_PAGE)
    before = int_param(call.query, "before", None, 1, 2**62)
    request_id = call.query.get("request_id") or None
    if request_id is not None and len(request_id) > 200:
        raise BadRequest("request_id is at most 200 characters.", param="request_id", code="invalid_value")
    assert limit is not None
    rows = await call.portal.mine.logs(await holder(call), limit, before, request_id)
    return 200, {
        "object": "list",
        "data": rows,
        "next_before": rows[-1]["id"] if len(rows) == limit else None,
    }


_SIGNED_IN = {
    ("GET", "me"): me,
    ("GET", "balance"): balance,
    ("POST", "redeem"): redeem,
    ("GET", "keys"): keys.list_keys,
    ("POST", "keys"): keys.create_key,
    ("GET", "usage"): usage,
    ("GET", "logs"): logs,
    ("POST", "password"): accounts.change_password,
}
_PUBLIC = {
    ("POST", "login"): signin.login,
    ("POST", "logout"): signin.logout,
    ("POST", "register"): accounts.register,
    ("GET", "options"): accounts.options,
}
# Browser navigations of single sign-on, answered with a redirect (portal/oidc.py).
_REDIRECTS = ("oidc/start", "oidc/callback")


async def _sso(gw: Any, proto: Any, ctx: Any, call: Call, route: str) -> None:
    if ctx.method != "GET":
        raise MethodNotAllowed(f"{ctx.method} is not allowed on {ctx.path}; use GET.")
    if gw.settings.portal.oidc is None:
        raise NotFound("Single sign-on is not configured on this gateway.", code="sso_off")
    from sluicegate.portal import oidc

    location, cookies = await (oidc.start(call) if route == "oidc/start" else oidc.callback(call))
    ctx.status = 302
    headers = [("location", location), ("cache-control", "no-store"), ("referrer-policy", "no-referrer")]
    proto.response_empty(302, [*headers, *cookies])


async def handle_api(gw: Any, scope: Any, proto: Any, ctx: Any) -> None:
    """Answer one /portal/api/* request."""
    route = ctx.path[len(PREFIX) :].rstrip("/")
    query = {name: values[-1] for name, values in parse_qs(scope.query_string or "").items()}
    call = Call(gw, scope, proto, ctx, portal_of(gw), query, token=read_cookie(scope.headers))
    extra: list[tuple[str, str]] = [("cache-control", "no-store")]
    if route in _REDIRECTS:
        await _sso(gw, proto, ctx, call, route)
        return
    public = _PUBLIC.get((ctx.method, route))
    if public is not None:
        status, body, cookies = await public(call)
        extra += cookies
    else:
        known = {r for _, r in (*_SIGNED_IN, *_PUBLIC)}
        is_key = route.startswith("keys/") and route.count("/") == 1
        if route not in known and not is_key:
            raise NotFound(f"Unknown portal path {ctx.path}. See docs/portal.md.")
        if not is_key and (ctx.method, route) not in _SIGNED_IN:
            allowed = ", ".join(m for m, r in (*_SIGNED_IN, *_PUBLIC) if r == route)
            raise MethodNotAllowed(f"{ctx.method} is not allowed on {ctx.path}; use {allowed}.")
        if is_key and ctx.method != "DELETE":
            raise MethodNotAllowed(f"{ctx.method} is not allowed on {ctx.path}; use DELETE.")
        call.session = await gw.store.tenancy.session_user(call.token) if call.token else None
        if call.session is None:
            raise Unauthorized("Sign in first (POST /portal/api/login).", code="not_signed_in")
        if is_key:
            status, body = await keys.revoke_key(call, route.split("/", 1)[1])
        else:
            status, body = await _SIGNED_IN[(ctx.method, route)](call)
    ctx.status = status
    proto.response_bytes(status, gw._headers(ctx, extra), orjson.dumps(body))
