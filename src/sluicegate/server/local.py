"""Answers the gateway gives itself: the built-in mock upstream, and the model list.

No upstream is involved, but the answers go through the same metering (and, for translated APIs, the same
codec) as relayed ones, so a mock request is logged and billed like any other.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson

from sluicegate.inbound import SAME_WIRE
from sluicegate.protocol.errors import ModelNotFound, NotFound
from sluicegate.protocol.sse import DONE_EVENT, error_event
from sluicegate.providers import mock
from sluicegate.server.relay import EndStream, StreamObserver

if TYPE_CHECKING:
    from sluicegate.server.app import Gateway
    from sluicegate.server.context import RequestContext

SSE_HEADERS = [("content-type", "text/event-stream; charset=utf-8"), ("cache-control", "no-cache")]
JSON_CT = [("content-type", "application/json")]


def observer_filters(ctx: RequestContext, observer: StreamObserver) -> bool:
    """Events are split and filtered only when metering must hide the usage chunk it asked for, or may
    end the stream between two events (a budget's cap)."""
    return bool(getattr(observer, "may_drop", False))


async def respond_mock(gw: Gateway, proto: Any, ctx: RequestContext, body: bytes) -> None:
    payload = orjson.loads(body) if body else {}
    model = ctx.served_model or ctx.model or "mock-gpt"
    headers = [("x-request-id", ctx.request_id), *ctx.extra_headers, *gw.cors.response_headers(ctx.origin)]
    if ctx.codec.name.startswith("anthropic"):  # Anthropic's SDKs read `request-id`
        headers.append(("request-id", ctx.request_id))
    ctx.status = 200
    path = ctx.upstream_path
    edge = ctx.edge
    if path == "/v1/chat/completions" and ctx.stream:
        observer = gw.stream_observer(ctx)
        events = []
        try:
            if edge is not SAME_WIRE:
                encoder = edge.stream(ctx)
                try:
                    for data in mock.chat_stream(payload, model):
                        observer.on_event(data)
                        events.append(encoder.feed(data))
                except EndStream as stop:  # a budget's cap (the mock honours max_tokens: only by estimate)
                    ctx.error_type = stop.code
                    events.append(edge.stopped(encoder, stop))
                events.append(encoder.finish())
                await edge.before_end(ctx)
            else:
                for data in mock.chat_stream(payload, model):
                    if data == b"[DONE]" or observer.on_event(data) or not observer_filters(ctx, observer):
                        events.append(b"data: " + data + b"\n\n")
        except EndStream as stop:
            ctx.error_type = stop.code
            events.append(error_event(stop.message, stop.type, stop.code) + DONE_EVENT)
        ctx.ttft = ctx.elapsed_ms()
        proto.response_bytes(200, [*SSE_HEADERS, *headers], b"".join(events))
        return
    if path == "/v1/chat/completions":
        data = mock.chat_completion(payload, model)
    elif path == "/v1/completions":
        data = mock.completion(payload, model)
    elif path == "/v1/embeddings":
        data = mock.embeddings(payload, model)
    else:
        raise NotFound(f"The built-in mock upstream does not serve {ctx.path}.")
    ctx.ttft = ctx.elapsed_ms()
    gw.observe_body(ctx, data)
    if edge is not SAME_WIRE:
        data = edge.answer(ctx, data)
        await edge.before_end(ctx)
    proto.response_bytes(200, [*JSON_CT, *headers], data)


def respond_models(gw: Gateway, proto: Any, ctx: RequestContext, one: str | None) -> None:
    key = ctx.key
    names = [m for m in gw.routes if key is None or key.allows_model(m)]
    owner = key.record.balance_owner if key is not None else None
    if owner is not None and gw.tenancy is not None:  # a group sees only its models (server/tenancy.py)
        names = [m for m in names if gw.tenancy.visible(owner, m)]
    headers = [*JSON_CT, ("x-request-id", ctx.request_id), *gw.cors.response_headers(ctx.origin)]
    ctx.status = 200
    if one is not None:
        if one not in names:
            raise ModelNotFound(
                f"The model '{one}' does not exist or you do not have access to it.", param="model"
            )
        proto.response_bytes(200, headers, orjson.dumps(gw.model_object(one)))
        return
    body = {"object": "list", "data": [gw.model_object(m) for m in names]}
    proto.response_bytes(200, headers, orjson.dumps(body))
