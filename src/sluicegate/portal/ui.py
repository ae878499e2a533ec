"""The portal's page under /portal/: static files, served like the dashboard's (admin/ui.py).

The files hold no data; the page signs in through /portal/api/login and the browser then carries the
HttpOnly session cookie, which the page's script cannot read. The same strict headers as the dashboard:
scripts, styles and requests from this origin only, nothing inline, no framing, no referrer.
"""

from __future__ import annotations

import functools
from importlib import resources
from typing import Any

from sluicegate.admin.ui import _NAME, SECURITY_HEADERS, _content_type
from sluicegate.protocol.errors import MethodNotAllowed, NotFound

PREFIX = "/portal"


# The dashboard's files the portal's page uses too (its stylesheet and icon, and the playground's call and
# conversation), served under /portal/ as well: one file at two addresses, so the portal needs nothing
# under /admin/, which a proxy may keep off the internet.
SHARED = frozenset({"app.css", "favicon.svg", "chatcall.js", "chatpage.js"})


@functools.cache
def _asset(name: str) -> bytes | None:
    package = "sluicegate.admin" if name in SHARED else "sluicegate.portal"
    try:
        return resources.files(package).joinpath("static", name).read_bytes()
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        return None


def serve_page(proto: Any, ctx: Any, path: str) -> None:
    if ctx.method not in ("GET", "HEAD"):
        raise MethodNotAllowed(f"{ctx.method} is not allowed on {path}; the portal's page is read with GET.")
    if path == PREFIX:  # relative asset URLs in the page need the trailing slash
        ctx.status = 308
        proto.response_empty(308, [("location", PREFIX + "/"), *SECURITY_HEADERS])
        return
    name = path[len(PREFIX) + 1 :] or "index.html"
    content_type = _content_type(name) if _NAME.fullmatch(name) and ".." not in name else None
    body = _asset(name) if content_type else None
    if body is None:
        raise NotFound(f"No portal file {path}. The portal is at {PREFIX}/.")
    ctx.status = 200
    headers = [("content-type", content_type), *SECURITY_HEADERS]
    if ctx.method == "HEAD":
        proto.response_empty(200, [*headers, ("content-length", str(len(body)))])
    else:
        proto.response_bytes(200, headers, body)


async def handle_portal(gw: Any, scope: Any, proto: Any, ctx: Any) -> None:
    """Answer one /portal or /portal/* request (404 while `portal.enabled` is off)."""
    if not gw.settings.portal.enabled:
        raise NotFound(
            "The portal is off on this gateway: the operator sets portal.enabled: true.",
            code="portal_disabled",
        )
    if ctx.path.startswith("/portal/api/"):
        from sluicegate.portal.api import handle_api

        await handle_api(gw, scope, proto, ctx)
    else:
        serve_page(proto, ctx, ctx.path)
