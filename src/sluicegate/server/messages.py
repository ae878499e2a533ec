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
    error_body,
    messages_to_chat,
    openai_error_to_anthropic,
)
from sluicegate.providers.anthropic_stream import ChatToMessageStream
from sluicegate.server.relay import CLIENT_GONE, EndStream, StreamObserver
from sluicegate.server.upstream_client import map_error

if TYPE_CHECKING:
    from sluicegate.config.model import Timeouts
    from sluicegate.server.context import RequestContext

log = logging.getLogger("sluicegate.messages")

MESSAGES_PATH = "/v1/messages"
COUNT_TOKENS_PATH = "/v1/messages/count_tokens"
CHAT_PATH = "/v1/chat/completions"


def to_chat(payload: dict[str, Any], model: str) -> dict[str, Any]:
    try:
        return messages_to_chat(payload, model)
    except ValueError as exc:
        raise BadRequest(str(exc)) from None


def error_answer(exc: GatewayError) -> bytes:
    return error_body(exc.status, exc.message)


def upstream_error_answer(status: int, body: bytes) -> bytes:
    return openai_error_to_anthropic(status, body)


def whole_answer(ctx: RequestContext, data: bytes) -> bytes:
    """A chat.completion as an Anthropic message (the client's own model name)."""
    try:
        chat = orjson.loads(data)
    except orjson.JSONDecodeError:
        raise GatewayError(
            "The upstream sent an answer that is not JSON.", code="bad_upstream_response"
        ) from None
    return orjson.dumps(chat_to_message(chat, ctx.model or ctx.served_model or ""))


async def relay_stream(
    transport: Any,
    resp: aiohttp.ClientResponse,
    timeouts: Timeouts,
    observer: StreamObserver,
    ctx: RequestContext,
) -> str | None:
    """Each upstream event goes to metering and to the translator; the translator's frames go out."""
    translator = ChatToMessageStream(ctx.model or ctx.served_model or "")
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
        tail = translator.finish()
        if tail:
            await transport.send_bytes(tail)
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
