"""The admin HTTP API under /admin/: the guard, and which handler answers which path.

The admin key is a different secret from every client key: a leaked client key must not be able to
mint itself a bigger one. So the guard compares the bearer token with `admin_key` in constant time,
and with no admin key configured the whole API is absent (404), not open. A user with the `operator`
role who signed in to the portal may use the API without the key: their session's second cookie
(`sg_admin`, Path=/admin, SameSite=Strict) is checked against the store on every call, and a change
through it must come from this gateway's own page (its Origin). Changes are audited under the actor
the guard names: `admin:<key fingerprint>` or `operator:<user name>`. Handlers live beside this
file, one concept each (`keys.py`, `reports.py`, `requests.py`, `quotas.py`, `catalog.py`); errors are raised as `sluicegate.protocol.errors`
types, which the app turns into OpenAI-shaped bodies like every other error.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs, unquote

from sluicegate.admin import catalog, keys, objects, quotas, reports, requests, selfhost, tenancy
from sluicegate.admin.ui import serve_ui
from sluicegate.protocol.errors import Forbidden, MethodNotAllowed, NotFound, Unauthorized
from sluicegate.server.proxy import bearer_token

Handler = Callable[..., Awaitable[tuple[int, Any]]]

# (method, path) for fixed paths; the handler returns (status, JSON body).
_ROUTES: dict[tuple[str, str], Handler] = {
    ("GET", "/admin/keys"): keys.list_keys,
    ("POST", "/admin/keys"): keys.create_key,
    ("GET", "/admin/usage"): reports.usage,
    ("GET", "/admin/logs"): reports.logs,
    ("GET", "/admin/channels"): reports.channels,
    ("GET", "/admin/selfhost"): selfhost.selfhost,
    ("GET", "/admin/requests"): requests.search,
    ("GET", "/admin/requests.csv"): requests.export_csv,
    ("GET", "/admin/quotas"): quotas.quotas,
    ("GET", "/admin/upstreams"): catalog.list_upstreams,
    ("POST", "/admin/upstreams"): catalog.create_upstream,
    ("GET", "/admin/models"): catalog.list_models,
    ("POST", "/admin/models"): catalog.create_model,
    ("GET", "/admin/prices"): catalog.list_prices,
    ("POST", "/admin/prices"): catalog.set_price,
    ("GET", "/admin/audit"): catalog.audit,
    ("GET", "/admin/objects"): objects.list_objects,
    ("GET", "/admin/users"): tenancy.list_users,
    ("POST", "/admin/users"): tenancy.create_user,
    ("GET", "/admin/teams"): tenancy.list_teams,
    ("POST", "/admin/teams"): tenancy.create_team,
    ("GET", "/admin/groups"): tenancy.list_groups,
    ("POST", "/admin/groups"): tenancy.set_group,
    ("GET", "/admin/codes"): tenancy.list_codes,
    ("POST", "/admin/codes"): tenancy.create_codes,
    ("POST", "/admin/codes/redeem"): tenancy.redeem_code,
}
# /admin/<collection>/{name}: the methods each collection answers on one entry.
_ENTRY_ROUTES: dict[str, dict[str, Handler]] = {
    "/admin/upstreams/": {
        "GET": catalog.show_upstream,
        "PATCH": catalog.update_upstream,
        "DELETE": catalog.delete_upstream,
    },
    "/admin/models/": {
        "GET": catalog.show_model,
        "PATCH": catalog.update_model,
        "DELETE": catalog.delete_model,
    },
    "/admin/prices/": {"DELETE": catalog.delete_price},
    "/admin/users/": {"GET": tenancy.show_user, "PATCH": tenancy.update_user},
    "/admin/teams/": {"GET": tenancy.show_team, "PATCH": tenancy.update_team},
    "/admin/groups/": {"GET": tenancy.show_group, "PATCH": tenancy.set_group},
    "/admin/balances/": {"GET": tenancy.show_balance},
}
# POST /admin/<collection>/{id}/<operation> (tenancy).
_ENTRY_OPS: dict[tuple[str, str], Handler] = {
    ("/admin/teams/", "members"): tenancy.add_member,
    ("/admin/balances/", "topup"): tenancy.topup,
}
# POST /admin/channels/{name}/<operation>; the name may hold '/' (channels are "upstream/model").
_CHANNEL_OPS: dict[str, Handler] = {
    "test": catalog.test_channel,
    "reset": catalog.reset_channel,
    "enable": catalog.enable_channel,
    "disable": catalog.disable_channel,
}
# Methods on /admin/keys/{id}.
_KEY_ROUTES: dict[str, Handler] = {
    "GET": keys.show_key,
    "PATCH": keys.update_key,
    "DELETE": keys.revoke_key,
}


def check_admin(admin_key: str | None, headers: Any) -> None:
    """Refuse unless the request carries `Authorization: Bearer <admin_key>`."""
    if not admin_key:
        raise NotFound(
            "admin API disabled: set admin_key in the configuration to enable it.", code="admin_disabled"
        )
    token = bearer_token(headers)
    if not token or not hmac.compare_digest(token.encode(), admin_key.encode()):
        raise Unauthorized(
            "The admin API needs 'Authorization: Bearer <admin_key>' (or an operator signed in to the portal).",
            code="invalid_admin_key",
        )


async def authorize(gw: Any, scope: Any, method: str) -> str:
    """Who may act: `admin:<fingerprint>` for the admin key, `operator:<name>` for an operator's portal
    session. A bearer token is always judged as the admin key (a wrong one is refused, never retried as
    a session); only a request without one is looked at for the operator's cookie."""
    admin_key = gw.settings.admin_key
    if admin_key and not bearer_token(scope.headers):
        # No admin key means no admin API at all (404 below): the cookie is not even looked up then.
        user = await _operator(gw, scope)
        if user is not None:
            if method not in ("GET", "HEAD"):
                _check_operator_origin(gw, scope)
            return f"operator:{user.name}"
    check_admin(admin_key, scope.headers)
    return catalog.actor(admin_key or "")


async def _operator(gw: Any, scope: Any) -> Any:
    """The enabled operator-role user whose unexpired session the admin cookie carries, or None."""
    from sluicegate.portal.call import ADMIN_COOKIE, read_cookie

    token = read_cookie(scope.headers, ADMIN_COOKIE)
    if not token or not gw.settings.portal.enabled or gw.store is None:
        return None
    user = await gw.store.tenancy.session_user(token)
    return user if user is not None and user.role == "operator" else None


def _check_operator_origin(gw: Any, scope: Any) -> None:
    """A change made with the session cookie must name this gateway as its Origin: browsers send one on
    every non-GET call, and a page elsewhere cannot forge it (SameSite=Strict already keeps the cookie
    off cross-site requests; this is the second lock)."""
    from sluicegate.portal.call import own_origin

    origin = scope.headers.get("origin")
    if not origin or not own_origin(gw, scope, origin):
        raise Forbidden(
            "With an operator's session, changes are accepted only from this gateway's own dashboard.",
            code="cross_origin",
        )


async def session(req: keys.AdminRequest) -> tuple[int, Any]:
    """GET /admin/session: who the dashboard is acting as (`actor` and `via` are null when nobody is:
    answered 200, so the dashboard's probe at start leaves no failed request in the browser)."""
    via = "operator_session" if req.actor.startswith("operator:") else "admin_key"
    return 200, {"actor": req.actor, "via": via}


_ROUTES[("GET", "/admin/session")] = session


async def handle_admin(gw: Any, scope: Any, proto: Any, ctx: Any) -> None:
    """Answer one /admin/* request on gateway `gw` (see docs/admin-api.md)."""
    if serve_ui(gw, proto, ctx, ctx.path):  # the dashboard's files hold no data: no admin key needed
        return
    method, path = ctx.method, ctx.path.rstrip("/")
    # "Who am I" answers without failing (the dashboard's probe at start).
    if (method, path) == ("GET", "/admin/session"):
        try:
            actor = await authorize(gw, scope, method)
        except (NotFound, Unauthorized):
            gw._json(proto, ctx, 200, {"actor": None, "via": None})
            return
    else:
        actor = await authorize(gw, scope, method)
    query = {name: values[-1] for name, values in parse_qs(scope.query_string or "").items()}
    request = keys.AdminRequest(gw, scope, proto, query, actor)
    handler = _ROUTES.get((method, path))
    if handler is not None:
        status, body = await handler(request)
    elif path.startswith("/admin/keys/") and path.count("/") == 3:
        key_handler = _KEY_ROUTES.get(method)
        if key_handler is None:
            raise MethodNotAllowed(f"{method} is not allowed on {path}; use GET, PATCH or DELETE.")
        status, body = await key_handler(request, path.rsplit("/", 1)[1])
    elif path.startswith("/admin/requests/") and path.count("/") == 3:
        if method != "GET":
            raise MethodNotAllowed(f"{method} is not allowed on {path}; use GET.")
        status, body = await requests.show(request, path.rsplit("/", 1)[1])
    elif (op := _entry_op(path)) is not None:
        tenancy_op, name = op
        if method != "POST":
            raise MethodNotAllowed(f"{method} is not allowed on {path}; use POST.")
        status, body = await tenancy_op(request, name)
    elif (entry := _entry(path)) is not None:
        prefix, name = entry
        methods = _ENTRY_ROUTES[prefix]
        entry_handler = methods.get(method)
        if entry_handler is None:
            raise MethodNotAllowed(f"{method} is not allowed on {path}; use {', '.join(methods)}.")
        status, body = await entry_handler(request, name)
    elif path.startswith("/admin/channels/") and path.count("/") >= 4:
        name, _, operation = path[len("/admin/channels/") :].rpartition("/")
        op_handler = _CHANNEL_OPS.get(operation)
        if op_handler is None or not name:
            raise NotFound(
                f"Unknown channel operation {operation!r}; use {', '.join(_CHANNEL_OPS)} (POST).",
                code="unknown_operation",
            )
        if method != "POST":
            raise MethodNotAllowed(f"{method} is not allowed on {path}; use POST.")
        status, body = await op_handler(request, unquote(name))
    elif any(p == path for _, p in _ROUTES):
        allowed = ", ".join(m for m, p in _ROUTES if p == path)
        raise MethodNotAllowed(f"{method} is not allowed on {path}; use {allowed}.")
    else:
        raise NotFound(f"Unknown admin path {path}. See docs/admin-api.md.")
    if isinstance(body, catalog.RawBody):
        ctx.status = status
        headers = gw._headers(ctx)
        headers[0] = ("content-type", body.content_type)
        headers.append(("content-disposition", f'attachment; filename="{body.filename}"'))
        proto.response_bytes(status, headers, body.data)
        return
    gw._json(proto, ctx, status, body)


def _entry_op(path: str) -> tuple[Handler, str] | None:
    """(handler, URL-decoded id) for /admin/teams/{id}/members and /admin/balances/{id}/topup."""
    for (prefix, operation), handler in _ENTRY_OPS.items():
        if path.startswith(prefix) and path.endswith("/" + operation):
            name = path[len(prefix) : -len(operation) - 1]
            if name and "/" not in name:
                return handler, unquote(name)
    return None


def _entry(path: str) -> tuple[str, str] | None:
    """(collection prefix, URL-decoded name) for /admin/upstreams/{name} and the like."""
    for prefix in _ENTRY_ROUTES:
        if path.startswith(prefix) and len(path) > len(prefix):
            return prefix, unquote(path[len(prefix) :])
    return None
