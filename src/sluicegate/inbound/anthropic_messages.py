"""`/v1/messages` (and `count_tokens`): Anthropic's Messages API as an inbound codec.

A wrapper, not a rewrite: the translation itself lives in providers/anthropic*.py (requests, answers,
stream events, errors), and this module puts it behind the codec interface. To an upstream that speaks
Messages itself (the native Anthropic adapter: Anthropic, and the Anthropic-compatible endpoints of
DeepSeek, Kimi, GLM, Qwen, MiniMax) the edge is SAME_WIRE: bytes pass as they are, so thinking
signatures and cache hits survive; to every other upstream it is a translation onto chat.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import orjson

from sluicegate.inbound.base import (
    CHAT_PATH,
    SAME_WIRE,
    SameWire,
    StreamEncoder,
    StreamEnd,
    Translation,
    parse_answer,
)
from sluicegate.protocol.errors import BadRequest, GatewayError
from sluicegate.providers.anthropic import (
    chat_to_message,
    dropped_fields,
    error_body,
    messages_to_chat,
    openai_error_to_anthropic,
    stop_sequences,
    thinking_mode,
)
from sluicegate.providers.anthropic_stream import ChatToMessageStream, error_event

if TYPE_CHECKING:
    from sluicegate.providers.upstream import Upstream

log = logging.getLogger("sluicegate.messages")

MESSAGES_PATH = "/v1/messages"
COUNT_TOKENS_PATH = "/v1/messages/count_tokens"


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


def _client(ctx: Any) -> dict[str, Any]:
    """The client's own Messages request (kept by `MessagesToChat.request`): what the answer honours."""
    found = getattr(ctx, "client_payload", None)
    return found if isinstance(found, dict) else {}


def whole_answer(ctx: Any, data: bytes) -> bytes:
    """A chat.completion as an Anthropic message (the client's own model name)."""
    client = _client(ctx)
    return orjson.dumps(
        chat_to_message(
            parse_answer(data),
            ctx.model or ctx.served_model or "",
            thinking=thinking_mode(client),
            stops=stop_sequences(client),
            usage=ctx.usage,  # the gateway's count (observe_body ran first) when the upstream sent none
        )
    )


def count_tokens(counter: Any, payload: dict[str, Any], model: str) -> bytes:
    """`/v1/messages/count_tokens`: the prompt counted with the gateway's offline tokenizer."""
    chat = to_chat({**payload, "max_tokens": payload.get("max_tokens") or 1}, model)
    return orjson.dumps({"input_tokens": counter.count_request(chat, model)})


class MessagesToChat:
    """The translation edge: Messages in, chat to the upstream, Messages (and its events) back."""

    __slots__ = ()
    upstream_path = CHAT_PATH

    async def prepare(self, ctx: Any, payload: dict[str, Any]) -> dict[str, Any]:
        return payload

    def request(self, ctx: Any, payload: dict[str, Any], model: str) -> dict[str, Any]:
        ctx.client_payload = payload  # thinking, stop sequences: what the answer must honour
        return to_chat(payload, model)

    def answer(self, ctx: Any, data: bytes) -> bytes:
        return whole_answer(ctx, data)

    def stream(self, ctx: Any) -> StreamEncoder:
        client = _client(ctx)
        return ChatToMessageStream(
            ctx.model or ctx.served_model or "",
            thinking=thinking_mode(client),
            stop_sequences=stop_sequences(client),
            estimate=getattr(ctx, "estimate_usage", None),  # set with the stream's meter (recording.py)
            request_id=ctx.request_id,
        )

    def upstream_error(self, status: int, body: bytes, request_id: str | None = None) -> bytes:
        return upstream_error_answer(status, body, request_id)

    async def before_end(self, ctx: Any) -> None:
        return None

    def stopped(self, encoder: Any, stop: Any) -> bytes:
        result: bytes = encoder.finish(stop.message, "rate_limit_error")
        return result


class MessagesStreamEnd:
    """A same-wire Messages stream is complete at `message_stop`; a cut one ends with an `error` event."""

    __slots__ = ()

    def is_final(self, data: bytes) -> bool:
        # `message_stop` is a tiny event: parse only what could be it, never a long delta.
        if len(data) > 256 or b"message_stop" not in data:
            return False
        try:
            doc = orjson.loads(data)
        except orjson.JSONDecodeError:
            return False
        return isinstance(doc, dict) and doc.get("type") == "message_stop"

    def failure(self, message: str, code: str, events_seen: int) -> bytes:
        return error_event(message, "overloaded_error" if code == "overloaded_error" else "api_error")


class AnthropicMessages:
    """The codec. A translated stream is complete when the encoder wrote `message_stop`; a same-wire
    one when the upstream's `message_stop` went out (`stream_end`)."""

    name = "anthropic_messages"
    _edge = MessagesToChat()

    def edge_for(self, upstream: Upstream) -> SameWire | Translation:
        return SAME_WIRE if upstream.adapter.wire == "anthropic" else self._edge

    local_answer: Any = None
    stream_end: StreamEnd | None = MessagesStreamEnd()

    def error_body(self, exc: GatewayError, request_id: str | None = None) -> bytes:
        return error_answer(exc, request_id)


class AnthropicCountTokens(AnthropicMessages):
    """`/v1/messages/count_tokens`: answered by the gateway with its tokenizer, never relayed."""

    name = "anthropic_count_tokens"

    local_answer: Any = staticmethod(
        lambda counter_for, payload, model: count_tokens(counter_for(model), payload, model)
    )
