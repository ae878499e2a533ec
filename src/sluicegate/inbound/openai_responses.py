"""`/v1/responses`: OpenAI's Responses API, passed through or translated onto chat completions.

Upstreams that serve the Responses API themselves (`responses: native`) get the request byte for byte
and their answer and events come back untouched. For all others the edge is `ResponsesToChat`: the
request becomes a chat request (responses_request.py), the answer a `Response` (responses_answer.py),
the stream Responses events (responses_stream.py). The conversation state that `previous_response_id`,
`GET` and `DELETE /v1/responses/{id}` need is kept by the gateway through a `ResponsesStateStore` the
shell injects (server/responses_state.py): this module only says what to keep and when.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

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
from sluicegate.inbound.responses_answer import chat_to_response, new_id
from sluicegate.inbound.responses_request import responses_to_chat
from sluicegate.inbound.responses_stream import ChatToResponsesStream
from sluicegate.protocol.errors import BadRequest, GatewayError

if TYPE_CHECKING:
    from sluicegate.providers.upstream import Upstream

RESPONSES_PATH = "/v1/responses"


class ResponsesStateStore(Protocol):
    """Where responses' conversations are kept (the shell's; memory plus the database)."""

    async def load(self, key_id: str, response_id: str) -> dict[str, Any] | None:
        """`{"response": Response, "items": conversation items}` of a kept response of this key, or None."""
        ...

    async def save(self, key_id: str, response: dict[str, Any], items: list[Any]) -> None:
        """Keep a finished response and the conversation that leads to it (its input items + output)."""
        ...


class Exchange:
    """One translated Responses call: what the client asked and what it got, for the state store."""

    __slots__ = ("created_at", "custom", "encoder", "items", "request", "response_id", "result")

    def __init__(self, request: Mapping[str, Any], items: list[Any]) -> None:
        self.request = request
        self.items = items  # the conversation's input items, previous responses expanded
        self.custom: frozenset[str] = frozenset()
        self.response_id = new_id("resp")
        self.created_at = int(time.time())
        self.encoder: ChatToResponsesStream | None = None
        self.result: dict[str, Any] | None = None


def conversation_items(value: Any) -> list[Any]:
    """`input` as a list of items (a string is one user message)."""
    if isinstance(value, str):
        return [{"type": "message", "role": "user", "content": value}]
    return list(value) if isinstance(value, list) else []


def key_of(ctx: Any) -> str:
    return ctx.key.record.id if ctx.key is not None else ""


class ResponsesToChat:
    """The translation edge for upstreams that serve only chat completions."""

    __slots__ = ("state",)
    upstream_path = CHAT_PATH

    def __init__(self, state: ResponsesStateStore) -> None:
        self.state = state

    async def prepare(self, ctx: Any, payload: dict[str, Any]) -> dict[str, Any]:
        """Expand `previous_response_id` into the conversation it names (read from the gateway's store)."""
        items = conversation_items(payload.get("input"))
        previous = payload.get("previous_response_id")
        if isinstance(previous, str) and previous:
            kept = await self.state.load(key_of(ctx), previous)
            if kept is None:
                raise BadRequest(
                    f"Previous response with id '{previous}' not found.",
                    param="previous_response_id",
                    code="previous_response_not_found",
                )
            items = [*kept["items"], *items]
            payload = {**payload, "input": items}
        ctx.exchange = Exchange(payload, items)
        return payload

    def request(self, ctx: Any, payload: dict[str, Any], model: str) -> dict[str, Any]:
        chat, custom = responses_to_chat(payload, model)
        if ctx.exchange is not None:
            ctx.exchange.custom = custom
        return chat

    def answer(self, ctx: Any, data: bytes) -> bytes:
        ex: Exchange = ctx.exchange
        chat = parse_answer(data)
        ex.result = chat_to_response(
            chat, ex.request, ctx.model or ctx.served_model or "", ex.custom, ex.response_id
        )
        return orjson.dumps(ex.result)

    def stream(self, ctx: Any) -> StreamEncoder:
        ex: Exchange = ctx.exchange
        ex.encoder = ChatToResponsesStream(
            ex.request, ctx.model or ctx.served_model or "", ex.custom, ex.response_id, ex.created_at
        )
        return ex.encoder

    def upstream_error(self, status: int, body: bytes, request_id: str | None = None) -> bytes:
        return body  # the upstream's error is already OpenAI's shape

    def stopped(self, encoder: Any, stop: Any) -> bytes:
        result: bytes = encoder.finish(stop.message, stop.code)
        return result

    async def before_end(self, ctx: Any) -> None:
        """Keep the response before its last byte goes out, so the next request can name it (unless
        `store: false`, as Codex sends, which keeps nothing)."""
        ex: Exchange | None = ctx.exchange
        if ex is None or ex.request.get("store") is False:
            return
        result = (
            ex.result if ex.result is not None else (ex.encoder.result if ex.encoder is not None else None)
        )
        if result is None or result.get("status") not in ("completed", "incomplete"):
            return
        await self.state.save(key_of(ctx), result, [*ex.items, *result["output"]])


_FINAL_EVENTS = (b'"response.completed"', b'"response.incomplete"', b'"response.failed"')


class ResponsesStreamEnd:
    """A Responses stream is complete when its last event is `response.completed`, `.incomplete` or
    `.failed` (the API sends no `[DONE]`). A byte search, no parse: inside JSON strings quotes are
    escaped, so an unescaped `"response.completed"` is the event's type."""

    __slots__ = ()

    def is_final(self, data: bytes) -> bool:
        return any(marker in data for marker in _FINAL_EVENTS)

    def failure(self, message: str, code: str, events_seen: int) -> bytes:
        event = {
            "type": "error",
            "code": code,
            "message": message,
            "param": None,
            "sequence_number": events_seen,
        }
        return b"event: error\ndata: " + orjson.dumps(event) + b"\n\n"


class OpenAIResponses:
    """The codec: same wire to upstreams with `responses: native`, translated for the others."""

    name = "openai_responses"
    local_answer = None
    stream_end: StreamEnd | None = ResponsesStreamEnd()

    def __init__(self, state: ResponsesStateStore) -> None:
        self._translate = ResponsesToChat(state)

    def edge_for(self, upstream: Upstream) -> SameWire | Translation:
        return SAME_WIRE if upstream.responses_native else self._translate

    def error_body(self, exc: GatewayError, request_id: str | None = None) -> bytes:
        return exc.body()
