"""Which request paths the gateway refuses before it looks at anything else.

Granian hands the application the path already percent-decoded (`/v1/%2e%2e/x` arrives as `/v1/../x`,
`/v1/a%2fb` as `/v1/a/b`), and that decoded path is the one path the gateway uses: the key's endpoint
check, the route and the upstream URL are all built from it. A path that a server or proxy downstream
could read differently (dot-segments it would resolve, backslashes some servers take for slashes,
empty segments some collapse, control characters, or a `%` left over from a second layer of encoding
that the upstream would decode again) could make the endpoint checked differ from the endpoint
reached, so it is refused outright. Real API paths never contain any of these.

Pure and cheap: a few C-level string scans per request, no regex, no allocation on a clean path.
"""

from __future__ import annotations

# Characters that never appear in an API path and that some later hop would reinterpret: a backslash
# (a slash to some servers), '%' (a second encoding layer: the upstream URL would be decoded again),
# '?' and '#' (only reachable as %3f/%23: they would start a query or fragment in the upstream URL).
_REINTERPRETED = ("\\", "%", "?", "#")


def path_problem(path: str) -> str | None:
    """Why `path` (as decoded by the server) is refused, or None when it is safe to check and forward."""
    if not path.startswith("/"):
        return "it does not start with '/'"
    if not path.isprintable():
        return "it contains a control character"
    for char in _REINTERPRETED:
        if char in path:
            return f"it contains {char!r}"
    if "//" in path:
        return "it contains an empty segment ('//')"
    if "/." in path:
        for segment in path.split("/"):
            # '..;x' is '..' to servlet-style servers, which drop ';' parameters before resolving.
            if segment.partition(";")[0] in (".", ".."):
                return "it contains a dot-segment ('.' or '..')"
    return None
