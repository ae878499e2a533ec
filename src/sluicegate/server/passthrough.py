"""Pass-through mode (as openai-forward users expect): the client's own provider key goes upstream.

There is no managed key: the client authenticates to the provider itself, and the gateway only
relays, rate-limits and meters. Limits apply per client key, identified by a hash of it (the key is
never stored or logged), so one leaked key cannot starve the others.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

from sluicegate.inbound import DEFAULT_CODEC
from sluicegate.protocol.errors import NotFound, Unauthorized
from sluicegate.protocol.fields import check_fields
from sluicegate.server.body import body_model
from sluicegate.server.proxy import bearer_token, relay
from sluicegate.server.wire import prepare_body

if TYPE_CHECKING:
    from sluicegate.server.app import Gateway
    from sluicegate.server.context import RequestContext


def client_key_id(secret: str) -> str:
    return "client-" + hashlib.sha256(secret.encode()).hexdigest()[:16]


async def handle_passthrough(gw: Gateway, scope: Any, proto: Any, ctx: RequestContext, prefix: str) -> None:
    headers = scope.headers
    secret = bearer_token(headers)
    if not secret:
        raise Unauthorized(
            "Pass-through requests carry the provider API key: 'Authorization: Bearer YOUR_KEY'.",
            code="missing_api_key",
        )
    upstream = gw.passthrough_upstream
    if upstream is None:
        raise NotFound("Pass-through mode has no upstream configured.")
    path = ctx.path[len(prefix) :]
    ctx.path = path
    ctx.codec = gw.codecs.get(path, DEFAULT_CODEC)  # its errors and stream ends; the wire is always the same
    ctx.upstream = ctx.channel = upstream.name
    body = await gw.read_body(proto, headers) if ctx.method in ("POST", "PUT", "PATCH") else b""
    ctx.payload, ctx.model = body_model(headers.get("content-type", ""), body, False)
    ctx.served_model = ctx.model
    if ctx.payload is not None:
        check_fields(ctx.payload)
        ctx.stream = ctx.payload.get("stream") is True
    ctx.body_len = len(body)
    ctx.key = gw.passthrough_entry(client_key_id(secret))
    if (admitting := gw.admit(ctx)) is not None:
        await admitting
    out_body = prepare_body(ctx, body, None, upstream.stream_usage)
    client_headers = {"content-type": headers.get("content-type", "application/json")}
    req = upstream.request(path, scope.query_string, ctx.model, client_headers, None, out_body or None)
    req.headers.pop("api-key", None)
    req.headers.pop("x-api-key", None)
    req.headers["authorization"] = f"Bearer {secret}"
    resp = await gw.client.send(ctx.method, req.url, req.headers, req.body, upstream.timeouts)
    try:
        await relay(gw, proto, ctx, resp, upstream)
    finally:
        await resp.aclose()
