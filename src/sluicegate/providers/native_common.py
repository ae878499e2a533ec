"""What the native adapters share: parsing, and canonical chat chunks written once.

Each native API (Anthropic, Gemini) turns its own stream into chat chunks and its own answer into a
chat.completion; the chunk envelope, the usage chunk, and reading a whole answer or a request body
are the same for all, so they live here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import orjson

from sluicegate.protocol.errors import BadRequest, GatewayError


def chat_chunk(
    chunk_id: str, created: int, model: str, delta: dict[str, Any], finish: str | None = None
) -> bytes:
    """One `chat.completion.chunk` with a single choice."""
    return orjson.dumps(
        {
            "id": chunk_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}],
        }
    )


def usage_chunk(chunk_id: str, created: int, model: str, usage: dict[str, Any]) -> bytes:
    """The final usage chunk (`choices: []`), as OpenAI sends it with `include_usage`."""
    return orjson.dumps(
        {
            "id": chunk_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "choices": [],
            "usage": usage,
        }
    )


def stream_event(data: bytes) -> Any:
    """One upstream stream event's JSON; not JSON is the upstream's fault (502)."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        raise GatewayError(
            "The upstream sent a stream event that is not JSON.", code="bad_upstream_response"
        ) from None


def whole_answer(data: bytes, to_chat: Callable[[Mapping[str, Any]], dict[str, Any]]) -> bytes:
    """A native whole answer as a chat.completion; what is not a JSON object passes as it is."""
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError:
        return data
    return orjson.dumps(to_chat(doc)) if isinstance(doc, dict) else data


def native_body(
    body: bytes, translate: Callable[[Mapping[str, Any]], dict[str, Any]]
) -> tuple[dict[str, Any], bytes]:
    """The canonical chat body, parsed, and its translation's bytes (400 when it cannot be sent)."""
    try:
        chat = orjson.loads(body)
        return chat, orjson.dumps(translate(chat))
    except (orjson.JSONDecodeError, ValueError) as exc:
        raise BadRequest(str(exc)) from None
