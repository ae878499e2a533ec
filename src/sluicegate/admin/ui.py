"""The web dashboard's static files under /admin/ui/: served without auth, with strict headers.

The files hold no data: the page asks for the admin key, keeps it in the tab's sessionStorage and calls
the admin API with it like any other client. So they are served before the admin guard, which lets the
page itself explain a refused or missing admin key. What keeps them safe is what they may do once
loaded: the content security policy allows scripts, styles and requests to this origin only (no inline
script, no CDN, no third-party beacon), the page cannot be framed (no clickjacking of the revoke
button), and no referrer leaks the dashboard's address.

Only the names in `static/` with a known type are served; nothing else under the package can be
reached. Each file is read once, on first use: the files are part of the installed package and do not
change while the gateway runs (restart after an upgrade).
"""

from __future__ import annotations

import functools
import re
from importlib import resources
from typing import Any

from sluicegate.protocol.errors import MethodNotAllowed, NotFound

PREFIX = "/admin/ui"

CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".svg": "image/svg+xml",
}

# Scripts, styles, images and requests from this origin only; nothing inline; no <base>, no form
# posting anywhere, no framing.
CSP = "default-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
SECURITY_HEADERS = (
    ("content-security-policy", CSP),
    ("x-frame-options", "DENY"),
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "no-referrer"),
    ("cache-control", "no-cache"),
)

_NAME = re.compile(r"[a-z0-9][a-z0-9_.-]*")


@functools.cache
def _asset(name: str) -> bytes | None:
    """The bytes of `static/<name>`, or None; read once per process (package files are immutable)."""
    try:
        return resources.files("sluicegate.admin").joinpath("static", name).read_bytes()
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        return None


def _content_type(name: str) -> str | None:
    dot = name.rfind(".")
    return CONTENT_TYPES.get(name[dot:]) if dot > 0 else None


def serve_ui(gw: Any, proto: Any, ctx: Any, path: str) -> bool:
    """Answer `path` if it is the dashboard's; return False (and send nothing) if it is not."""
    if path != PREFIX and not path.startswith(PREFIX + "/"):
        return False
    if ctx.method not in ("GET", "HEAD"):
        raise MethodNotAllowed(f"{ctx.method} is not allowed on {path}; the dashboard is read with GET.")
    if path == PREFIX:  # relative asset URLs in the page need the trailing slash
        ctx.status = 308
        proto.response_empty(308, [("location", PREFIX + "/"), *SECURITY_HEADERS])
        return True
    name = path[len(PREFIX) + 1 :] or "index.html"
    content_type = _content_type(name) if _NAME.fullmatch(name) and ".." not in name else None
    body = _asset(name) if content_type else None
    if body is None:
        raise NotFound(f"No dashboard file {path}. The dashboard is at {PREFIX}/.")
    ctx.status = 200
    headers = [("content-type", content_type), *SECURITY_HEADERS]
    if ctx.method == "HEAD":
        proto.response_empty(200, [*headers, ("content-length", str(len(body)))])
    else:
        proto.response_bytes(200, headers, body)
    return True
