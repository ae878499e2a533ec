"""Which wire each attempt speaks, and the body it sends: the inbound seam as the failover loop uses it.

The codec (chosen once by path) names the edge for each upstream: the same wire, whose body is the
client's own bytes, or a translation, whose canonical body is made once per request (however many
attempts) and reused. Only the model rename and `stream_options.include_usage` ever re-encode a
same-wire body (`prepare_body`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sluicegate.inbound import SAME_WIRE
from sluicegate.protocol.errors import BadRequest
from sluicegate.protocol.jsonbytes import dumps_kept
from sluicegate.providers.chat_fit import fit_for_upstream
from sluicegate.server.reservation import clamp_body

if TYPE_CHECKING:
    from sluicegate.inbound import Translation
    from sluicegate.server.context import RequestContext


class Wire:
    """One request's wire state across its attempts."""

    __slots__ = ("body", "canonical", "codec", "edge", "payload", "src")

    def __init__(self, ctx: RequestContext, body: bytes) -> None:
        self.codec = ctx.codec
        self.payload = ctx.payload  # the client's request, as parsed
        self.body = body  # the client's bytes
        # The edge of the last attempt. A request starts on the same wire (ctx's defaults say so), so
        # the common case never switches: no translation, no await.
        self.edge: Any = SAME_WIRE
        self.src = body
        self.canonical: tuple[dict[str, Any], bytes] | None = None

    async def switch(self, ctx: RequestContext, edge: Any) -> bytes:
        """Move to another edge (the first attempt, or failover across native/translated upstreams)."""
        self.edge = ctx.edge = edge
        if edge is SAME_WIRE:
            ctx.upstream_path, ctx.payload, ctx.stream = ctx.path, self.payload, ctx.client_stream
            self.src = self.body
            return self.src
        if self.canonical is None:
            self.canonical = await translate(ctx, edge, self.payload)
        chat, self.src = self.canonical
        ctx.upstream_path, ctx.payload, ctx.stream = edge.upstream_path, chat, chat.get("stream") is True
        return self.src


async def translate(
    ctx: RequestContext, edge: Translation, payload: dict[str, Any] | None
) -> tuple[dict[str, Any], bytes]:
    """The client's request as the canonical one, and its bytes."""
    if payload is None:
        raise BadRequest("The request body must be a JSON object.")
    prepared = await edge.prepare(ctx, payload)
    chat = edge.request(ctx, prepared, ctx.model or "")
    return chat, dumps_kept(chat)


def prepare_body(
    ctx: RequestContext,
    body: bytes,
    upstream_model: str | None,
    stream_usage: bool,
    *,
    content_as_string: bool = False,
    drop_reasoning_effort: bool = False,
    drop_reasoning_history: bool = False,
    max_output_tokens: int | None = None,
) -> bytes:
    """Re-encode the body only when something in it must change: the model name, usage on streams,
    max_tokens lowered to what a budget has left, or what this upstream cannot take
    (providers/chat_fit.py)."""
    payload = ctx.payload
    if payload is None:
        return body
    changed = False
    if (
        content_as_string or drop_reasoning_effort or drop_reasoning_history or max_output_tokens
    ) and ctx.upstream_path == "/v1/chat/completions":
        fitted = fit_for_upstream(
            payload,
            content_as_string=content_as_string,
            drop_reasoning_effort=drop_reasoning_effort,
            drop_reasoning_history=drop_reasoning_history,
            max_output_tokens=max_output_tokens,
        )
        if fitted is not None:
            payload, changed = fitted, True
    if upstream_model is not None and payload.get("model") != upstream_model:
        payload = {**payload, "model": upstream_model}
        changed = True
    # A budget bounds the answer (server/reservation.py); count_tokens has none and refuses max_tokens.
    if ctx.max_tokens_clamp is not None and ctx.upstream_path != "/v1/messages/count_tokens":
        absent = "max_output_tokens" if ctx.upstream_path == "/v1/responses" else "max_tokens"
        payload = clamp_body(payload, ctx.max_tokens_clamp, absent)
        changed = True
    if ctx.stream and ctx.upstream_path in ("/v1/chat/completions", "/v1/completions"):
        opts = payload.get("stream_options")
        ctx.client_wants_usage = isinstance(opts, dict) and opts.get("include_usage") is True
        if stream_usage and not ctx.client_wants_usage:
            payload = {**payload, "stream_options": {**(opts or {}), "include_usage": True}}
            changed = True
    return dumps_kept(payload) if changed else body
