"""What kind of request body this is, read the way an upstream would read it.

The gateway must find the model in every body an upstream would read a model from, or a key limited to
some models (or to a budget) could reach another by writing `Content-Type: Application/JSON` or a space
before the `{`: upstreams read those as JSON. So JSON is recognised by its media type in any letter case
and with any parameters (and the `+json` suffix), or by a body that is a JSON object after leading
whitespace, whatever the content type says. Pure functions over the header and the bytes.
"""

from __future__ import annotations

import re

JSON = "json"
MULTIPART = "multipart"

_JSON_WHITESPACE = re.compile(rb"[ \t\r\n]*")  # one class, one star: linear, never backtracks


def media_type(content_type: str) -> str:
    """'Application/JSON; charset=utf-8' -> 'application/json'."""
    return content_type.partition(";")[0].strip().lower()


def starts_as_json_object(body: bytes) -> bool:
    """The body's first byte after JSON whitespace is '{'."""
    end = _JSON_WHITESPACE.match(body).end()  # type: ignore[union-attr]  # '*' always matches
    return body[end : end + 1] == b"{"


def body_kind(content_type: str, body: bytes) -> str | None:
    """JSON, MULTIPART, or None (a body the gateway does not read, e.g. raw audio)."""
    media = media_type(content_type)
    if media == "application/json" or media.endswith("+json"):
        return JSON
    if media == "multipart/form-data":
        return MULTIPART
    return JSON if starts_as_json_object(body) else None


def header_params(value: str) -> dict[str, str]:
    """The parameters of a header value ('form-data; name="a;b"; filename=x'): names lower-cased,
    values unquoted, semicolons inside quotes kept. The first of two same-named parameters wins."""
    params: dict[str, str] = {}
    start = 0
    quoted = False
    pieces: list[str] = []
    for i, char in enumerate(value):
        if char == '"':
            quoted = not quoted
        elif char == ";" and not quoted:
            pieces.append(value[start:i])
            start = i + 1
    pieces.append(value[start:])
    for piece in pieces[1:]:  # the first is the type itself
        key, eq, val = piece.partition("=")
        if not eq:
            continue
        val = val.strip()
        if len(val) >= 2 and val[0] == val[-1] == '"':
            val = val[1:-1]
        params.setdefault(key.strip().lower(), val)
    return params


def header_param(content_type: str, name: str) -> str | None:
    """One parameter of a Content-Type header (`boundary`)."""
    return header_params(content_type).get(name) if ";" in content_type else None
