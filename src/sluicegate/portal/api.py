"""The portal's HTTP API under /portal/api/: sign-in, the signed-in user's balance, codes, keys, usage.

Who is asking is the session cookie (sessions.py), looked up in the store on every call: a portal call
is not on the LLM request path, so a query is fine, and signing out or disabling a user takes effect
at once on every worker. Every answer is about the signed-in user only: ids are looked up together with
the user's id in the same query (mine.py), so another user's key is "not found", never "forbidden".

Cross-site requests: the cookie is SameSite=Strict, and every call that changes something must send a
JSON body (`content-type: application/json`, which a cross-site form cannot) and, when the browser
names an Origin, come from this gateway's own. Errors are OpenAI-shaped like every other error.
"""

from __future__ import annotations

import asyncio
import fnmatch
import functools
import logging
import secrets
import time
from dataclasses import dataclass
from ipaddress import ip_address
from typing import Any
from urllib.parse import parse_qs, urlsplit

import click

from sluicegate.cli.usage import DayType
from sluicegate.policy.network import peer_host
from sluicegate.portal.mine import Mine, key_view, stored_name
from sluicegate.portal.sessions import Session, SessionRepository
from sluicegate.portal.throttle import LoginThrottle
from sluicegate.protocol.errors import (
    BadRequest,
    Forbidden,
    GatewayError,
    MethodNotAllowed,
    NotFound,
    RateLimited,
    Unauthorized,
)
from sluicegate.server.body import parse_json_object

log = logging.getLogger("sluicegate.portal")

COOKIE = "sg_portal"
PREFIX = "/portal/api/"
MAX_PAGE = 200


class Conflict(GatewayError):
    status = 409
    type = "invalid_request_error"


@dataclass
class Portal:
    """What the portal keeps per worker: the store's sessions and the user's rows, and the throttle."""

    sessions: SessionRepository
    mine: Mine
    throttle: LoginThrottle


def portal_of(gw: Any) -> Portal:
    portal: Portal | None = getattr(gw, "portal", None)
    if portal is None:
        p = gw.settings.portal
        portal = Portal(
            SessionRepository(gw.store.engine),
            Mine(gw.store.engine),
            LoginThrottle(p.login_max_failures, p.login_window_s),
        )
        gw.portal = portal
    return portal


@dataclass(slots=True)
class Call:
    gw: Any
    scope: Any
    proto: Any
    ctx: Any
    portal: Portal
    query: dict[str, str]
    session: Session | None = None
    token: str | None = None

    async def json(self) -> dict[str, Any]:
        return parse_json_object(await self.gw.read_body(self.proto, self.scope.headers))

    @property
    def user(self) -> Session:
        assert self.session is not None
        return self.session


def _cookie(headers: Any) -> str | None:
    for line in headers.get_all("cookie") if hasattr(headers, "get_all") else [headers.get("cookie")]:
        for part in (line or "").split(";"):
            name, _, value = part.strip().partition("=")
            if name == COOKIE and value:
                return value
    return None


def _via_trusted_proxy(call: Call) -> bool:
    """The connection comes from one of `server.trusted_proxies`, whose X-Forwarded-* are believed."""
    if not call.gw.trusted:
        return False
    try:
        peer = ip_address(peer_host(call.scope.client or ""))
    except ValueError:
        return False
    return any(peer in net for net in call.gw.trusted)


def _forwarded(call: Call, name: str) -> str:
    """The first (client-side) value of an X-Forwarded-* header, from a trusted proxy only."""
    if not _via_trusted_proxy(call):
        return ""
    return (call.scope.headers.get(name) or "").split(",")[0].strip().lower()


def _secure(call: Call) -> bool:
    configured = call.gw.settings.portal.secure_cookie
    if configured is not None:
        return bool(configured)
    return getattr(call.scope, "scheme", "") == "https" or _forwarded(call, "x-forwarded-proto") == "https"


def _set_cookie(call: Call, token: str, max_age: int) -> tuple[str, str]:
    parts = [f"{COOKIE}={token}", "Path=/portal", "HttpOnly", "SameSite=Strict", f"Max-Age={max_age}"]
    if _secure(call):
        parts.append("Secure")
    return ("set-cookie", "; ".join(parts))


def _check_same_origin(call: Call) -> None:
    """A change must come as JSON from this gateway's own page (or a script that is not a browser)."""
    headers = call.scope.headers
    content_type = (headers.get("content-type") or "").split(";")[0].strip().lower()
    if content_type != "application/json":
        raise BadRequest(
            "Send the request body as JSON (content-type: application/json).", code="json_required"
        )
    origin = headers.get("origin")
    if origin:
        # This gateway's own names: the Host header, and what a trusted proxy says the client asked for.
        hosts = {(headers.get("host") or "").lower(), _forwarded(call, "x-forwarded-host")} - {""}
        if origin == "null" or urlsplit(origin).netloc.lower() not in hosts:
            raise Forbidden("Portal calls are accepted only from the portal's own page.", code="cross_origin")


def _writer(call: Call) -> None:
    if call.user.role == "viewer":
        raise Forbidden("A viewer may look but not change anything.", code="read_only_role")


def _int(query: dict[str, str], name: str, default: int | None, low: int, high: int) -> int | None:
    text = query.get(name)
    if text is None or text == "":
        return default
    try:
        value = int(text)
    except ValueError:
        value = low - 1
    if not low <= value <= high:
        raise BadRequest(
            f"{name} must be a whole number from {low} to {high}.", param=name, code="invalid_value"
        )
    return value


@functools.cache
def _dummy_hash() -> str:
    from sluicegate.store.passwords import hash_password

    return hash_password(secrets.token_urlsafe(16))


# -- sign-in ------------------------------------------------------------------------------------------


async def login(call: Call) -> tuple[int, Any, list[tuple[str, str]]]:
    from sluicegate.store.passwords import check_password, needs_rehash

    _check_same_origin(call)
    body = await call.json()
    name, password = body.get("name"), body.get("password")
    if not isinstance(name, str) or not name.strip():
        raise BadRequest("name is required.", param="name", code="invalid_value")
    if not isinstance(password, str) or not password:
        raise BadRequest("password is required.", param="password", code="invalid_value")
    name = name.strip()
    throttle = call.portal.throttle
    subjects = (f"name:{name.lower()}", f"ip:{call.ctx.client_ip or ''}")
    wait = throttle.retry_after(*subjects)
    if wait:
        raise RateLimited(
            f"Too many failed sign-ins; try again in {wait} s.",
            code="login_throttled",
            headers={"retry-after": str(wait)},
        )
    found = await call.portal.sessions.password_hash(name)
    # argon2 takes tens of milliseconds of CPU: off the event loop, which may be relaying streams.
    # An unknown name costs the same check, so the time taken does not tell which names exist.
    stored = found[1] if found is not None and found[1] else _dummy_hash()
    ok = await asyncio.to_thread(check_password, stored, password)
    if found is None or not found[1] or not ok:
        throttle.failed(*subjects)
        log.info("portal: failed sign-in from %s", call.ctx.client_ip)
        raise Unauthorized("Wrong name or password.", code="invalid_credentials")
    user_id, password_hash, disabled = found
    if disabled:
        raise Forbidden("This account is disabled; ask the operator.", code="user_disabled")
    throttle.succeeded(subjects[0])
    if password_hash and needs_rehash(password_hash):
        await call.gw.store.tenancy.update_user(user_id, password=password)
    ttl = call.gw.settings.portal.session_ttl_h * 3600
    token, expires_at = await call.portal.sessions.create(user_id, ttl, call.ctx.client_ip)
    session = await call.portal.sessions.lookup(token)
    assert session is not None
    log.info("portal: %s signed in", user_id)
    body = {"user": _user_json(session), "expires_at": expires_at}
    return 200, body, [_set_cookie(call, token, int(ttl))]


async def logout(call: Call) -> tuple[int, Any, list[tuple[str, str]]]:
    _check_same_origin(call)
    if call.token:
        await call.portal.sessions.end(call.token)
    return 200, {"signed_out": True}, [_set_cookie(call, "", 0)]


# -- the signed-in user ---------------------------------------------------------------------------------


def _user_json(s: Session) -> dict[str, Any]:
    return {"id": s.user_id, "name": s.user_name, "role": s.role, "group": s.group, "team_id": s.team_id}


async def _team_role(call: Call) -> tuple[Any, str | None]:
    """The user's team and their role in it (None when they have no team)."""
    if call.user.team_id is None:
        return None, None
    team = await call.gw.store.tenancy.get_team(call.user.team_id)
    if team is None:
        return None, None
    role = next((r for u, r in team.members if u == call.user.user_id), None)
    return team, role


@dataclass(frozen=True, slots=True)
class KeyModels:
    """What a portal key may be given: the models the user's group sees (none listed: every model),
    within `portal.key_models` (globs; none: no further limit)."""

    visible: tuple[str, ...]
    patterns: tuple[str, ...]

    @property
    def restricted(self) -> bool:
        return bool(self.visible or self.patterns)

    def allows(self, model: str) -> bool:
        return (not self.visible or model in self.visible) and (
            not self.patterns or any(fnmatch.fnmatchcase(model, p) for p in self.patterns)
        )

    def listed(self, routes: Any) -> list[str]:
        """The models to offer: the group's, or the gateway's public models, that are allowed."""
        return [m for m in (self.visible or sorted(routes)) if self.allows(m)]

    def default(self) -> list[str]:
        """A key given no models gets all it may use: the allowed names, the globs, or every model."""
        if self.visible:
            return [m for m in self.visible if self.allows(m)]
        return list(self.patterns)


async def _key_models(call: Call) -> KeyModels:
    group = await call.gw.store.tenancy.get_group(call.user.group)
    visible = tuple(group.models) if group is not None else ()
    return KeyModels(visible, tuple(call.gw.settings.portal.key_models))


async def me(call: Call) -> tuple[int, Any]:
    team, team_role = await _team_role(call)
    balance = await call.gw.store.tenancy.balance(f"user:{call.user.user_id}")
    keys = await call.portal.mine.keys(call.user.user_id)
    models = await _key_models(call)
    return 200, {
        "user": _user_json(call.user),
        "team": None if team is None else {"id": team.id, "name": team.name, "role": team_role},
        "balance": balance.to_json(),
        "session_expires_at": call.user.expires_at,
        "can_write": call.user.role != "viewer",
        "keys": {"count": len(keys), "max": call.gw.settings.portal.max_keys_per_user},
        "models": models.listed(call.gw.routes),
        "models_restricted": models.restricted,
    }


async def balance(call: Call) -> tuple[int, Any]:
    """`GET balance?owner=user|team&limit=50&before=ID`: the balance and its ledger, newest first."""
    owner = f"user:{call.user.user_id}"
    if call.query.get("owner", "user") == "team":
        team, role = await _team_role(call)
        if team is None or role != "team_admin":
            raise Forbidden("Only a team's admins may see its balance.", code="not_team_admin")
        owner = f"team:{team.id}"
    elif call.query.get("owner", "user") != "user":
        raise BadRequest("owner must be user or team.", param="owner", code="invalid_value")
    limit = _int(call.query, "limit", 50, 1, MAX_PAGE)
    before = _int(call.query, "before", None, 1, 2**62)
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

    _check_same_origin(call)
    _writer(call)
    code = (await call.json()).get("code")
    if not isinstance(code, str) or not code.strip() or len(code) > 200:
        raise BadRequest("code is required.", param="code", code="invalid_value")
    try:
        entry = await call.gw.store.tenancy.redeem(code.strip(), call.user.user_id)
    except CodeRefused as exc:
        raise BadRequest(str(exc).capitalize() + ".", param="code", code=f"code_{exc.reason}") from None
    log.info("portal: %s redeemed a code", call.user.user_id)
    current = await call.gw.store.tenancy.balance(f"user:{call.user.user_id}")
    return 200, {"entry": entry.to_json(), "balance": current.to_json()}


# -- keys -------------------------------------------------------------------------------------------------


def _audit(call: Call) -> Any:
    from sluicegate.cli.keys import key_json
    from sluicegate.store.keys import KeyAudit

    return KeyAudit(f"portal:{call.user.user_name}", lambda record: key_json(record, time.time()))


async def list_keys(call: Call) -> tuple[int, Any]:
    include_revoked = call.query.get("all", "").lower() in ("1", "true", "yes")
    now = time.time()
    records = await call.portal.mine.keys(call.user.user_id, include_revoked)
    return 200, {"object": "list", "data": [key_view(r, call.user.user_id, now) for r in records]}


async def create_key(call: Call) -> tuple[int, Any]:
    from sluicegate.admin.keys import changed
    from sluicegate.store.keyfields import InvalidKeyField
    from sluicegate.store.keys import KeyNameTaken

    _check_same_origin(call)
    _writer(call)
    body = await call.json()
    unknown = set(body) - {"name", "models"}
    if unknown:
        raise BadRequest(f"Unknown key field(s): {', '.join(sorted(unknown))}.", code="invalid_key_field")
    label = body.get("name")
    if not isinstance(label, str) or not label.strip() or len(label.strip()) > 100:
        raise BadRequest("name is required (at most 100 characters).", param="name", code="invalid_key_field")
    wanted = body.get("models") or []
    if not isinstance(wanted, list) or not all(isinstance(m, str) and m.strip() for m in wanted):
        raise BadRequest("models must be a list of model names.", param="models", code="invalid_key_field")
    allowed = await _key_models(call)
    refused = [m for m in wanted if not allowed.allows(m.strip())]
    if refused:
        raise BadRequest(
            f"Not a model your keys may use: {', '.join(refused)}.", param="models", code="model_not_allowed"
        )
    models = [m.strip() for m in wanted] or allowed.default()
    if allowed.restricted and not models:
        raise Forbidden("No model is open to your keys; ask the operator.", code="no_models_allowed")
    limit = call.gw.settings.portal.max_keys_per_user
    if len(await call.portal.mine.keys(call.user.user_id)) >= limit:
        raise Forbidden(
            f"You have {limit} key(s), the most allowed; revoke one first.", code="key_limit_reached"
        )
    fields = {
        "name": stored_name(call.user.user_id, label.strip()),
        "owner": call.user.user_name,
        "models": models,
        "user_id": call.user.user_id,
    }
    try:
        record, secret = await call.gw.store.keys.create(fields, _audit(call))
    except KeyNameTaken:
        raise Conflict(
            "You already have a key with this name.", param="name", code="key_name_taken"
        ) from None
    except InvalidKeyField as exc:
        raise BadRequest(str(exc), code="invalid_key_field") from None
    if len(await call.portal.mine.keys(call.user.user_id)) > limit:
        # Two creations raced past the count above (on any workers): this one gives way, so a user never
        # holds more than the limit (both may give way; trying again then succeeds).
        await call.gw.store.keys.revoke(record.id, _audit(call))
        raise Forbidden(
            f"You have {limit} key(s), the most allowed; revoke one first.", code="key_limit_reached"
        )
    await changed(call.gw)
    log.info("portal: %s created key %s", call.user.user_id, record.id)
    return 201, {"key": secret, **key_view(record, call.user.user_id)}


async def revoke_key(call: Call, key_id: str) -> tuple[int, Any]:
    from sluicegate.admin.keys import changed

    _check_same_origin(call)
    _writer(call)
    if await call.portal.mine.key(call.user.user_id, key_id) is None:
        raise NotFound(f"No key with id {key_id!r}.", code="key_not_found")
    record = await call.gw.store.keys.revoke(key_id, _audit(call))
    await changed(call.gw)
    log.info("portal: %s revoked key %s", call.user.user_id, key_id)
    return 200, key_view(record, call.user.user_id)


# -- usage and logs ----------------------------------------------------------------------------------------


async def usage(call: Call) -> tuple[int, Any]:
    """`GET usage?since=30d&until=today`: the user's keys' usage per UTC day and model."""
    days = DayType()
    try:
        since = days.convert(call.query.get("since") or "30d", None, None)
        until = days.convert(call.query["until"], None, None) if call.query.get("until") else None
    except click.BadParameter as exc:
        raise BadRequest(exc.message, param="since/until", code="invalid_date") from None
    rows = await call.portal.mine.usage(call.user.user_id, since, until)
    return 200, {"object": "list", "data": rows}


async def logs(call: Call) -> tuple[int, Any]:
    """`GET logs?limit=50&before=ID`: the user's keys' requests, newest first."""
    limit = _int(call.query, "limit", 50, 1, MAX_PAGE)
    before = _int(call.query, "before", None, 1, 2**62)
    assert limit is not None
    rows = await call.portal.mine.logs(call.user.user_id, limit, before)
    return 200, {
        "object": "list",
        "data": rows,
        "next_before": rows[-1]["id"] if len(rows) == limit else None,
    }


_SIGNED_IN = {
    ("GET", "me"): me,
    ("GET", "balance"): balance,
    ("POST", "redeem"): redeem,
    ("GET", "keys"): list_keys,
    ("POST", "keys"): create_key,
    ("GET", "usage"): usage,
    ("GET", "logs"): logs,
}
_PUBLIC = {("POST", "login"): login, ("POST", "logout"): logout}


async def handle_api(gw: Any, scope: Any, proto: Any, ctx: Any) -> None:
    """Answer one /portal/api/* request."""
    route = ctx.path[len(PREFIX) :].rstrip("/")
    query = {name: values[-1] for name, values in parse_qs(scope.query_string or "").items()}
    call = Call(gw, scope, proto, ctx, portal_of(gw), query, token=_cookie(scope.headers))
    extra: list[tuple[str, str]] = [("cache-control", "no-store")]
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
        call.session = await call.portal.sessions.lookup(call.token) if call.token else None
        if call.session is None:
            raise Unauthorized("Sign in first (POST /portal/api/login).", code="not_signed_in")
        if is_key:
            status, body = await revoke_key(call, route.split("/", 1)[1])
        else:
            status, body = await _SIGNED_IN[(ctx.method, route)](call)
    ctx.status = status
    import orjson

    proto.response_bytes(status, gw._headers(ctx, extra), orjson.dumps(body))
