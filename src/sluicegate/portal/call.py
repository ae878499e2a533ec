"""One portal API call: who the portal keeps per worker, the request, its session, and the checks
every handler shares (the session cookie, same-origin changes, read-only roles, paging parameters).

Cross-site requests: the cookie is SameSite=Strict, and every call that changes something must send a
JSON body (`content-type: application/json`, which a cross-site form cannot) and, when the browser
names an Origin, come from this gateway's own (its Host, or X-Forwarded-Host from a trusted proxy).
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import ip_address
from typing import Any
from urllib.parse import urlsplit

from sluicegate.policy.network import peer_host
from sluicegate.portal.holder import Holder
from sluicegate.portal.mine import Mine
from sluicegate.portal.throttle import LoginThrottle
from sluicegate.protocol.errors import BadRequest, Forbidden, GatewayError
from sluicegate.server.body import parse_json_object
from sluicegate.store.sso import PendingLogins
from sluicegate.store.tenancy_types import User

COOKIE = "sg_portal"
# An operator's session also opens the admin API: the same token in a second cookie scoped to /admin, so
# the portal's cookie is never sent to /v1 (where a relay could pass it on) and nothing but the admin API
# reads it (docs/portal.md, "Operators").
ADMIN_COOKIE = "sg_admin"
PREFIX = "/portal/api/"
MAX_PAGE = 200


class Conflict(GatewayError):
    status = 409
    type = "invalid_request_error"


@dataclass
class Portal:
    """What the portal keeps per worker: the user's own rows, the sign-in and registration throttles,
    single sign-on logins under way (in the database) and the SSO provider's cached keys (oidc.py)."""

    mine: Mine
    throttle: LoginThrottle
    registrations: LoginThrottle
    sso_logins: PendingLogins
    sso: Any = None  # oidc.Provider once single sign-on is first used


def portal_of(gw: Any) -> Portal:
    portal: Portal | None = getattr(gw, "portal", None)
    if portal is None:
        p = gw.settings.portal
        portal = Portal(
            Mine(gw.store.engine),
            LoginThrottle(p.login_max_failures, p.login_window_s),
            LoginThrottle(p.registration.max_per_address, p.registration.window_s),
            PendingLogins(gw.store.engine),
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
    session: User | None = None
    token: str | None = None

    async def json(self) -> dict[str, Any]:
        return parse_json_object(await self.gw.read_body(self.proto, self.scope.headers))

    @property
    def user(self) -> User:
        assert self.session is not None
        return self.session


def read_cookie(headers: Any, cookie: str = COOKIE) -> str | None:
    for line in headers.get_all("cookie") if hasattr(headers, "get_all") else [headers.get("cookie")]:
        for part in (line or "").split(";"):
            name, _, value = part.strip().partition("=")
            if name == cookie and value:
                return value
    return None


def via_trusted_proxy(gw: Any, scope: Any) -> bool:
    """The connection comes from one of `server.trusted_proxies`, whose X-Forwarded-* are believed."""
    if not gw.trusted:
        return False
    try:
        peer = ip_address(peer_host(scope.client or ""))
    except ValueError:
        return False
    return any(peer in net for net in gw.trusted)


def forwarded(gw: Any, scope: Any, name: str) -> str:
    """The first (client-side) value of an X-Forwarded-* header, from a trusted proxy only."""
    if not via_trusted_proxy(gw, scope):
        return ""
    return (scope.headers.get(name) or "").split(",")[0].strip().lower()


def secure(call: Call) -> bool:
    configured = call.gw.settings.portal.secure_cookie
    if configured is not None:
        return bool(configured)
    return (
        getattr(call.scope, "scheme", "") == "https"
        or forwarded(call.gw, call.scope, "x-forwarded-proto") == "https"
    )


def set_cookie(call: Call, token: str, max_age: int, cookie: str = COOKIE) -> tuple[str, str]:
    path = "/admin" if cookie == ADMIN_COOKIE else "/portal"
    parts = [f"{cookie}={token}", f"Path={path}", "HttpOnly", "SameSite=Strict", f"Max-Age={max_age}"]
    if secure(call):
        parts.append("Secure")
    return ("set-cookie", "; ".join(parts))


def session_cookies(call: Call, token: str, max_age: int, role: str) -> list[tuple[str, str]]:
    """The cookies of a new session: the portal's, and for an operator the admin API's too (any other
    role gets the admin cookie cleared, so a browser never keeps one from an earlier operator)."""
    admin = (token, max_age) if role == "operator" else ("", 0)
    return [set_cookie(call, token, max_age), set_cookie(call, *admin, cookie=ADMIN_COOKIE)]


def end_cookies(call: Call) -> list[tuple[str, str]]:
    """Cookies that end a session in the browser: both cleared."""
    return [set_cookie(call, "", 0), set_cookie(call, "", 0, cookie=ADMIN_COOKIE)]


def check_same_origin(call: Call) -> None:
    """A change must come as JSON from this gateway's own page (or a script that is not a browser)."""
    headers = call.scope.headers
    content_type = (headers.get("content-type") or "").split(";")[0].strip().lower()
    if content_type != "application/json":
        raise BadRequest(
            "Send the request body as JSON (content-type: application/json).", code="json_required"
        )
    origin = headers.get("origin")
    if origin and not own_origin(call.gw, call.scope, origin):
        raise Forbidden("Portal calls are accepted only from the portal's own page.", code="cross_origin")


def own_origin(gw: Any, scope: Any, origin: str) -> bool:
    """`origin` is this gateway's own: its Host header, or what a trusted proxy says the client asked for."""
    hosts = {(scope.headers.get("host") or "").lower(), forwarded(gw, scope, "x-forwarded-host")} - {""}
    return origin != "null" and urlsplit(origin).netloc.lower() in hosts


def writer_only(call: Call) -> None:
    if call.user.role == "viewer":
        raise Forbidden("A viewer may look but not change anything.", code="read_only_role")


def int_param(query: dict[str, str], name: str, default: int | None, low: int, high: int) -> int | None:
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


async def holder(call: Call) -> Holder:
    """The user, or with `owner=team` their team: only the team's admins may act for it."""
    wanted = call.query.get("owner", "user")
    if wanted == "user":
        return Holder("user_id", call.user.id, call.user.name, call.user.group)
    if wanted != "team":
        raise BadRequest("owner must be user or team.", param="owner", code="invalid_value")
    team, role = await team_role(call)
    if team is None or role != "team_admin":
        raise Forbidden("Only a team's admins may act for it.", code="not_team_admin")
    return Holder("team_id", team.id, team.name, team.group)


def user_json(s: User) -> dict[str, Any]:
    return {"id": s.id, "name": s.name, "role": s.role, "group": s.group, "team_id": s.team_id}


async def team_role(call: Call) -> tuple[Any, str | None]:
    """The user's team and their role in it (None when they have no team)."""
    if call.user.team_id is None:
        return None, None
    team = await call.gw.store.tenancy.get_team(call.user.team_id)
    if team is None:
        return None, None
    role = next((r for u, r in team.members if u == call.user.id), None)
    return team, role
