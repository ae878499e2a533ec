"""Reading one field (the `model`) from a multipart/form-data body, in linear time.

Uploads (audio transcriptions, images edits, files) are forwarded byte for byte; the gateway only needs
the model name to check the key and pick a route. The scan jumps from delimiter to delimiter with
`bytes.find` (C speed, each byte looked at a bounded number of times), reads only the small header
block of each part, and looks at no more than `MAX_PARTS` parts, so a hostile 32 MiB body costs one
pass over its bytes. A body that names the model twice with different values, or that has more parts
than that before its end, has no model the gateway can vouch for: `UNREADABLE` (the caller refuses it
where the model matters), so the gateway never checks one model while the upstream reads another.
"""

from __future__ import annotations

from typing import Final

from sluicegate.protocol.content import header_params

MAX_PARTS: Final = 1000  # real uploads have a handful of fields
MAX_HEADER_BYTES: Final = 8192  # one part's header block
UNREADABLE: Final = object()  # the field cannot be determined (ambiguous or malformed)


def disposition_name(headers: bytes) -> tuple[str | None, bool]:
    """(the `name` of the part's Content-Disposition, whether it has a `filename`)."""
    for line in headers.split(b"\r\n"):
        key, colon, value = line.partition(b":")
        if colon and key.strip().lower() == b"content-disposition":
            params = header_params(value.decode("latin-1"))
            return params.get("name"), "filename" in params or "filename*" in params
    return None, False


def form_field(body: bytes, boundary: str, field: str = "model") -> str | object | None:
    """The text value of form field `field` (not a file), None if absent, UNREADABLE if ambiguous."""
    if not boundary or len(boundary) > 70:
        return UNREADABLE
    dash = b"--" + boundary.encode("latin-1", errors="replace")
    delimiter = b"\r\n" + dash
    if body.startswith(dash):
        pos = 0
        after = len(dash)
    else:
        pos = body.find(delimiter)
        if pos < 0:
            return UNREADABLE
        after = pos + len(delimiter)
    found: str | None = None
    for _ in range(MAX_PARTS + 1):
        if body[after : after + 2] == b"--":  # the close delimiter: done
            return found
        eol = body.find(b"\r\n", after, after + 256)  # the delimiter line (transport padding allowed)
        if eol < 0 or body[after:eol].strip(b" \t"):
            return UNREADABLE
        start = eol + 2
        end = body.find(delimiter, start)
        if end < 0:
            return UNREADABLE  # no closing delimiter: a truncated body
        if body[start : start + 2] == b"\r\n":
            headers, content = b"", start + 2
        else:
            head_end = body.find(b"\r\n\r\n", start, min(end, start + MAX_HEADER_BYTES))
            if head_end < 0:
                return UNREADABLE
            headers, content = body[start:head_end], head_end + 4
        name, is_file = disposition_name(headers)
        if name == field and not is_file:
            try:
                value = body[content:end].decode("utf-8")
            except UnicodeDecodeError:
                return UNREADABLE
            if found is not None and value != found:
                return UNREADABLE  # two different answers: which one the upstream reads is unknown
            found = value
        after = end + len(delimiter)
    return UNREADABLE  # more parts than any real upload has
