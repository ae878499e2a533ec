"""Anthropic's error body, for errors the gateway makes and for OpenAI-format errors it relays.

Anthropic's SDKs choose their exception class from the HTTP status and show `error.message`;
Claude-style clients also read `error.type` (to tell overload from a bad request). So the type
follows the status, in one table.
"""

from __future__ import annotations

from collections.abc import Mapping

import orjson

# Anthropic's documented status → type table. 413's request_too_large is in Anthropic's error
# docs though not in the OpenAPI spec's ErrorType enum; 504 is the spec's timeout_error.
ERROR_TYPES: Mapping[int, str] = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    502: "api_error",
    503: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}


def error_type(status: int) -> str:
    """Anthropic's error type for an HTTP status; the SDKs pick their exception from the status."""
    found = ERROR_TYPES.get(status)
    if found is not None:
        return found
    return "invalid_request_error" if 400 <= status < 500 else "api_error"


def error_body(
    status: int, message: str, type_: str | None = None, *, request_id: str | None = None
) -> bytes:
    """Anthropic's error body: `{"type": "error", "error": {"type": ..., "message": ...}}`.

    The SDKs raise their exception by HTTP status and show `error.message`; `request_id` is what
    Anthropic's own bodies carry (null is allowed) so support can find a request in the logs.
    """
    return orjson.dumps(
        {
            "type": "error",
            "error": {"type": type_ or error_type(status), "message": message},
            "request_id": request_id,
        }
    )


def openai_error_to_anthropic(status: int, body: bytes, *, request_id: str | None = None) -> bytes:
    """An upstream's (or the gateway's own) OpenAI-format error body in Anthropic's format.

    The type follows the status, not OpenAI's `error.type` (whose vocabulary differs: OpenAI
    says invalid_request_error for a 401 or a 404); a body that is not OpenAI's shape keeps its
    text as the message, so nothing the upstream said is lost.
    """
    message = ""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        doc = None
    if isinstance(doc, Mapping):
        error = doc.get("error")
        if isinstance(error, Mapping) and isinstance(error.get("message"), str):
            message = error["message"]
        elif isinstance(error, str):
            message = error
        elif isinstance(doc.get("message"), str):
            message = doc["message"]
    if not message:
        message = body.decode("utf-8", "replace").strip()[:2000] or f"upstream answered HTTP {status}"
    return error_body(status, message, request_id=request_id)
