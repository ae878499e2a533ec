"""`POST /v1/messages`: Anthropic's Messages API served from OpenAI-compatible upstreams.

The request is translated once to a chat completion (providers/anthropic.py) and then takes the
ordinary path: keys, limits, routing, failover, metering all see an OpenAI request. Only the edges
differ: the upstream path, and how answers and errors are written back (Anthropic's shapes, its SSE
events, and no `[DONE]`).
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

import aiohttp
import orjson

from sluicegate.protocol.errors import BadRequest, GatewayError
from sluicegate.protocol.sse import SSEDecoder
from sluicegate.providers.anthropic import (
    chat_to_message,
    dropped_fields,
    error_body,
    messages_to_chat,
    openai_error_to_anthropic,
    stop_sequences,
    thinking_mode,
)
from sluicegate.providers.anthropic_stream import ChatToMessageStream
from sluicegate.server.relay import CLIENT_GONE, INCOMPLETE, EndStream, StreamObserver
from sluicegate.server.upstream_client import map_error

if TYPE_CHECKING:
    from sluicegate.config.model import Timeouts
    from sluicegate.server.context import RequestContext

log = logging.getLogger("sluicegate.messages")

MESSAGES_PATH = "/v1/messages"
COUNT_TOKENS_PATH = "/v1/messages/count_tokens"
CHAT_PATH = "/v1/chat/completions"


def to_chat(payload: dict[str, Any], model: str) -> dict[str, Any]:
    if log.isEnabledFor(logging.DEBUG):
        dropped = dropped_fields(payload)
        if dropped:
            log.debug("/v1/messages: fields with no upstream counterpart dropped: %s", ", ".join(dropped))
    try:
        return messages_to_chat(payload, model)
    except ValueError as exc:
        raise BadRequest(str(exc)) from None


def error_answer(exc: GatewayError, request_id: str | None = None) -> bytes:
    return error_body(exc.status, exc.message, request_id=request_id)


def upstream_error_answer(status: int, body: bytes, request_id: str | None = None) -> bytes:
    return openai_error_to_anthropic(status, body, request_id=request_id)


def _client(ctx: RequestContext) -> dict[str, Any]:
    return ctx.client_payload or {}


def whole_answer(ctx: RequestContext, data: bytes) -> bytes:
    """A chat.completion as an Anthropic message (the client's own model name)."""
    try:
        chat = orjson.loads(data)
    except orjson.JSONDecodeError:
        raise GatewayError(
            "The upstream sent an answer that is not JSON.", code="bad_upstream_response"
        ) from None
    client = _client(ctx)
    return orjson.dumps(
        chat_to_message(
            chat,
            ctx.model or ctx.served_model or "",
            thinking=thinking_mode(client),
            stops=stop_sequences(client),
            usage=ctx.usage,  # the gateway's count (observe_body ran first) when the upstream sent none
        )
    )


async def relay_stream(
    transport: Any,
    resp: aiohttp.ClientResponse,
    timeouts: Timeouts,
    observer: StreamObserver,
    ctx: RequestContext,
) -> str | None:
    """Each upstream event goes to metering and to the translator; the translator's frames go out.

    Returns an error code when the stream failed or ended incomplete (no `[DONE]`, no finish_reason).
    """
    client = _client(ctx)
    translator = ChatToMessageStream(
        ctx.model or ctx.served_model or "",
        thinking=thinking_mode(client),
        stop_sequences=stop_sequences(client),
        estimate=observer.estimated_usage,
        request_id=ctx.request_id,
    )
    decoder = SSEDecoder()
    first = True
    try:
        async for chunk in resp.content.iter_any():
            if first:
                observer.on_first_byte()
                first = False
            out = []
            try:
                for ev in decoder.feed(chunk):
                    observer.on_event(ev.data)
                    frames = translator.feed(ev.data)
                    if frames:
                        out.append(frames)
            finally:  # on EndStream, what came before the refused event still goes out
                if out:
                    await transport.send_bytes(b"".join(out))
        for ev in decoder.flush():
            observer.on_event(ev.data)
            frames = translator.feed(ev.data)
            if frames:
                await transport.send_bytes(frames)
        incomplete = not translator.ended and translator.incomplete
        tail = translator.finish()
        if tail:
            await transport.send_bytes(tail)
        if incomplete:
            log.error("upstream stream ended without [DONE] or a finish_reason (%s)", INCOMPLETE)
            return INCOMPLETE
        return None
    except CLIENT_GONE:
        raise
    except EndStream as stop:  # the answer reached its budget: Anthropic's error event ends it
        tail = translator.finish(stop.message, "rate_limit_error")
        if tail:
            await transport.send_bytes(tail)
        return stop.code
    except asyncio.CancelledError:
        raise
    except BaseException as exc:
        exc.__traceback__ = None  # see relay.relay_stream: keep Granian's transport collectable
        mapped = map_error(exc, timeouts, before_headers=False)
        message = (
            mapped.message if isinstance(mapped, GatewayError) else "The stream failed inside the gateway."
        )
        await transport.send_bytes(translator.finish(message))
        return mapped.code if isinstance(mapped, GatewayError) and mapped.code else "stream_error"


def count_tokens(counter: Any, payload: dict[str, Any], model: str) -> bytes:
    """`/v1/messages/count_tokens`: the prompt counted with the gateway's offline tokenizer."""
    chat = to_chat({**payload, "max_tokens": payload.get("max_tokens") or 1}, model)
    return orjson.dumps({"input_tokens": counter.count_request(chat, model)})
