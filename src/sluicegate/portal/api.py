"""`/portal/api/`: a signed-in user's own balance, ledger, redemptions, keys, usage and logs.

Every answer is about the signed-in user and nobody else: no endpoint takes a user id, a key or an
entry of someone else answers 404 exactly like one that does not exist. Sign-in is by name and
password (argon2id); a session is a random token (only its SHA-256 is stored) sent back as an
HttpOnly, SameSite=Strict cookie and in the body, for scripts, as a bearer token; it expires after
`tenancy.session_ttl_s`. Sign-in attempts are throttled per name and per client address by the
gateway's own limiter (shared through Redis when configured). Never on the request path: these
handlers read the store directly. OIDC and self-registration are not offered.
"""

from __future__ import annotations

import hashlib
import logging
import time
from typing import Any
from urllib.parse import parse_qs

import orjson

from sluicegate.limits import REQUESTS, Quota, Refusal, demands_for
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

COOKIE = "sluicegate_session"
PREFIX = "/portal/api/"


class Conflict(GatewayError):
    status = 409
    type = "invalid_request_error"
    code = "key_name_taken"


def _token(headers: Any) -> str | None:
    auth = headers.get("authorization")
    if auth:
        scheme, _, value = auth.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return str(value.strip())
    for part in (headers.get("cookie") or "").split(";"):
        name, _, value = part.strip().partition("=")
        if name == COOKIE and value:
            return value
    return None


def _cookie(token: str, max_age: int) -> tuple[str, str]:
    return ("set-cookie", f"{COOKIE}={token}; Path=/portal; HttpOnly; SameSite=Strict; Max-Age={max_age}")


async def handle_portal(gw: Any, scope: Any, proto: Any, ctx: Any) -> None:
    """Answer one /portal/api/* request (docs/tenancy.md, "The portal API")."""
    path = ctx.path.rstrip("/")
    method = ctx.method
    headers = scope.headers
    extra: list[tuple[str, str]] = []
    if path == "/portal/api/login":
        _only(method, "POST", path)
        status, body, extra = await _login(gw, proto, ctx, headers)
    else:
        token = _token(headers)
        user = await gw.store.tenancy.session_user(token) if token else None
        if user is None or token is None:
            raise Unauthorized("Sign in first: POST /portal/api/login.", code="not_signed_in")
        query = {k: v[-1] for k, v in parse_qs(scope.query_string or "").items()}
        status, body, extra = await _route(gw, proto, query, headers, path, method, user, token)
    ctx.status = status
    proto.response_bytes(
        status, gw._headers(ctx, [*extra, ("cache-control", "no-store")]), orjson.dumps(body)
    )


def _only(method: str, allowed: str, path: str) -> None:
    if method != allowed:
        raise MethodNotAllowed(f"{method} is not allowed on {path}; use {allowed}.")


async def _json(gw: Any, proto: Any, headers: Any) -> dict[str, Any]:
    # A JSON content type: a cross-site form cannot send one without a CORS preflight (CSRF).
    if "json" not in (headers.get("content-type") or "").lower():
        raise BadRequest("Send a JSON body (Content-Type: application/json).", code="invalid_json")
    return parse_json_object(await gw.read_body(proto, headers))


# -- signing in ------------------------------------------------------------------------------------------


async def _login(gw: Any, proto: Any, ctx: Any, headers: Any) -> tuple[int, Any, list[tuple[str, str]]]:
    body = await _json(gw, proto, headers)
    name, password = body.get("name"), body.get("password")
    if not isinstance(name, str) or not isinstance(password, str) or not name or not password:
        raise BadRequest("name and password are required.", code="invalid_credentials")
    admission = await _throttle(gw, name, ctx.client_ip)
    user = await gw.store.tenancy.verify_password(name, password)
    if user is None:
        log.info("portal: sign-in refused for a name (client %s)", ctx.client_ip)
        raise Unauthorized("Wrong name or password.", code="invalid_credentials")
    if admission is not None:  # a successful sign-in does not count against the name
        await gw.limits.limiter.settle(admission, {REQUESTS: 0.0})
    cfg = gw.settings.tenancy
    token, expires = await gw.store.tenancy.create_session(user.id, cfg.session_ttl_s)
    log.info("portal: %s signed in", user.id)
    body = {"token": token, "expires_at": expires, "user": user.to_json()}
    return 200, body, [_cookie(token, int(cfg.session_ttl_s))]


async def _throttle(gw: Any, name: str, client_ip: str | None) -> Any:
    """One attempt against the name's and the address's hourly allowance (GCRA: it refills)."""
    if gw.limits is None:
        return None
    per_hour = gw.settings.tenancy.login_attempts_per_hour
    digest = hashlib.sha256(name.strip().lower().encode()).hexdigest()[:32]
    quotas = (
        Quota.rate(f"login-name:{digest}", REQUESTS, per_hour, "hour"),
        Quota.rate(f"login-ip:{client_ip or '-'}", REQUESTS, per_hour * 3, "hour"),
    )
    result = await gw.limits.limiter.acquire(demands_for(quotas, {REQUESTS: 1.0}))
    if isinstance(result, Refusal):
        wait = max(1, int(result.retry_after or 60))
        raise RateLimited(
            f"Too many sign-in attempts; try again in {wait} s.",
            code="login_throttled",
            headers={"retry-after": str(wait)},
        )
    return result


# -- the signed-in user's own things ---------------------------------------------------------------------


async def _route(
    gw: Any, proto: Any, query: dict[str, str], headers: Any, path: str, method: str, user: Any, token: str
) -> tuple[int, Any, list[tuple[str, str]]]:
    store = gw.store
    owner = f"user:{user.id}"
    if path == "/portal/api/logout":
        _only(method, "POST", path)
        await store.tenancy.end_session(token)
        return 200, {"signed_out": True}, [_cookie("", 0)]
    if path == "/portal/api/me":
        _only(method, "GET", path)
        balance = await store.tenancy.balance(owner)
        return 200, {**user.to_json(), "balance": balance.to_json()}, []
    if path == "/portal/api/balance":
        _only(method, "GET", path)
        balance = await store.tenancy.balance(owner)
        entries = await store.tenancy.ledger(owner, limit=_int(query, "limit", 100))
        return 200, {**balance.to_json(), "ledger": [e.to_json() for e in entries]}, []
    if path == "/portal/api/redeem":
        _only(method, "POST", path)
        _may_change(user)
        return 200, await _redeem(gw, proto, headers, user), []
    if path == "/portal/api/keys":
        if method == "GET":
            return (
                200,
                {"object": "list", "data": [_key_json(k) for k in await _own_keys(store, user.id)]},
                [],
            )
        _only(method, "POST", path)
        _may_change(user)
        return 201, await _create_key(gw, proto, headers, user), []
    if path.startswith("/portal/api/keys/") and path.count("/") == 4:
        _only(method, "DELETE", path)
        _may_change(user)
        return 200, await _revoke_key(gw, user, path.rsplit("/", 1)[1]), []
    if path == "/portal/api/usage":
        _only(method, "GET", path)
        rows: list[Any] = []
        for key in await _own_keys(store, user.id, include_revoked=True):
            rows += await store.usage.query(key_id=key.id)
        return 200, {"object": "list", "data": rows}, []
    if path == "/portal/api/logs":
        _only(method, "GET", path)
        return 200, {"object": "list", "data": await _logs(store, user.id, _int(query, "limit", 50))}, []
    raise NotFound(f"Unknown portal path {path}.")


def _int(query: dict[str, str], name: str, default: int) -> int:
    value = query.get(name)
    try:
        return max(1, min(1000, int(value))) if value else default
    except ValueError:
        raise BadRequest(f"{name} must be a whole number.", param=name) from None


def _may_change(user: Any) -> None:
    if user.role == "viewer":
        raise Forbidden("A viewer may look but not change anything.", code="viewer_read_only")


async def _own_keys(store: Any, user_id: str, include_revoked: bool = False) -> list[Any]:
    return [k for k in await store.keys.list(include_revoked=include_revoked) if k.user_id == user_id]


def _key_json(record: Any) -> dict[str, Any]:
    from sluicegate.cli.keys import key_json

    return key_json(record, time.time())


async def _redeem(gw: Any, proto: Any, headers: Any, user: Any) -> dict[str, Any]:
    from sluicegate.admin.keys import changed
    from sluicegate.store.ledger import CodeRefused

    body = await _json(gw, proto, headers)
    code = body.get("code")
    if not isinstance(code, str) or not code.strip():
        raise BadRequest("code is required.", param="code", code="invalid_code")
    try:
        entry = await gw.store.tenancy.redeem(code, user.id)
    except CodeRefused as exc:
        raise BadRequest(str(exc).capitalize() + ".", param="code", code=f"code_{exc.reason}") from None
    await changed(gw)
    balance = await gw.store.tenancy.balance(f"user:{user.id}")
    return {**balance.to_json(), "entry": entry.to_json()}


async def _create_key(gw: Any, proto: Any, headers: Any, user: Any) -> dict[str, Any]:
    """A key of the user's own: a name, optionally models and an expiry; limits are the operator's."""
    from sluicegate.admin.keys import changed
    from sluicegate.store.expiry import InvalidExpiry, parse_expiry
    from sluicegate.store.keyfields import InvalidKeyField
    from sluicegate.store.keys import KeyNameTaken

    body = await _json(gw, proto, headers)
    unknown = set(body) - {"name", "models", "expires"}
    if unknown:
        raise BadRequest(f"Unknown field(s): {', '.join(sorted(unknown))}.", code="invalid_key_field")
    if len(await _own_keys(gw.store, user.id)) >= gw.settings.tenancy.portal_max_keys:
        raise Forbidden(
            "You hold as many keys as the operator allows; revoke one first.", code="too_many_keys"
        )
    fields: dict[str, Any] = {"name": body.get("name"), "user_id": user.id, "owner": user.name}
    if "models" in body:
        fields["models"] = body["models"]
    try:
        if body.get("expires"):
            fields["expires_at"] = parse_expiry(str(body["expires"]), time.time())
        if not isinstance(fields["name"], str):
            raise InvalidKeyField("name is required")
        record, secret = await gw.store.keys.create(fields)
    except KeyNameTaken:
        raise Conflict("A key with this name exists; choose another name.", param="name") from None
    except (InvalidKeyField, InvalidExpiry) as exc:
        raise BadRequest(str(exc).capitalize() + ".", code="invalid_key_field") from None
    await changed(gw)
    log.info("portal: %s created key %s", user.id, record.id)
    return {"key": secret, **_key_json(record)}


async def _revoke_key(gw: Any, user: Any, key_id: str) -> dict[str, Any]:
    from sluicegate.admin.keys import changed

    record = await gw.store.keys.get(key_id)
    if record is None or record.user_id != user.id:  # someone else's key is not found, like no key
        raise NotFound(f"No key with id {key_id!r}.", code="key_not_found")
    revoked = await gw.store.keys.revoke(key_id)
    await changed(gw)
    return _key_json(revoked)


async def _logs(store: Any, user_id: str, limit: int) -> list[dict[str, Any]]:
    from sluicegate.cli.usage import log_json

    ids = [k.id for k in await _own_keys(store, user_id, include_revoked=True)]
    out = []
    for entry in await store.usage.tail_for_keys(ids, limit):
        row = log_json(entry.id, entry.record)
        row.pop("request_body", None)
        row.pop("response_body", None)
        out.append(row)
    return out
