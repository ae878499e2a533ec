"""Anthropic Messages answers, stream events and errors → canonical chat: the native adapter's way back.

The inverse of `anthropic_answer.py` / `anthropic_stream.py` (chat → Messages for /v1/messages
clients of chat upstreams). Thinking goes to `reasoning_content` (its text, as DeepSeek and vLLM
name it) plus `thinking_blocks` (text and signature, so a chat client that sends the turn back keeps
Claude's proof); usage keeps Anthropic's cache figures beside OpenAI's (`prompt_tokens` includes
cache reads and writes, `prompt_tokens_details.cached_tokens` are the reads) so metering can price
each at its own rate.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import orjson

from sluicegate.protocol.errors import GatewayError
from sluicegate.protocol.sse import DONE, Event, SSEDecoder
from sluicegate.providers.chat_pieces import cached_usage, count
from sluicegate.providers.native_common import chat_chunk, stream_event, usage_chunk

FINISH_REASONS: Mapping[str, str] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}


def finish_reason(stop_reason: Any) -> str:
    return FINISH_REASONS.get(stop_reason, "stop") if isinstance(stop_reason, str) else "stop"


def chat_usage(usage: Mapping[str, Any]) -> dict[str, Any]:
    """Anthropic's usage in OpenAI's meaning, cache figures kept by their Anthropic names."""
    return cached_usage(
        count(usage.get("input_tokens")),
        count(usage.get("output_tokens")),
        count(usage.get("cache_read_input_tokens")),
        count(usage.get("cache_creation_input_tokens")),
    )


def chat_id(message_id: Any) -> str:
    return "chatcmpl-" + (message_id.removeprefix("msg_") if isinstance(message_id, str) else "anthropic")


def message_to_chat(msg: Mapping[str, Any], model: str | None = None) -> dict[str, Any]:
    """A whole Messages answer as a `chat.completion`."""
    text: list[str] = []
    reasoning: list[str] = []
    thinking: list[dict[str, Any]] = []
    calls: list[dict[str, Any]] = []
    for block in msg.get("content") or ():
        if not isinstance(block, Mapping):
            continue
        kind = block.get("type")
        if kind == "text":
            text.append(block.get("text") or "")
        elif kind == "thinking":
            reasoning.append(block.get("thinking") or "")
            thinking.append(
                {
                    "type": "thinking",
                    "thinking": block.get("thinking") or "",
                    "signature": block.get("signature"),
                }
            )
        elif kind == "redacted_thinking":
            thinking.append({"type": "redacted_thinking", "data": block.get("data")})
        elif kind == "tool_use":
            calls.append(
                {
                    "id": block.get("id"),
                    "type": "function",
                    "function": {
                        "name": block.get("name"),
                        "arguments": orjson.dumps(block.get("input") or {}).decode(),
                    },
                }
            )
    content = "".join(text) if text or not calls else None
    message: dict[str, Any] = {"role": "assistant", "content": content, "refusal": None}
    if calls:
        message["tool_calls"] = calls
    if reasoning:
        message["reasoning_content"] = "".join(reasoning)
    if thinking:
        message["thinking_blocks"] = thinking
    if msg.get("stop_reason") == "refusal":
        message["refusal"] = message["content"] or "The model refused to answer."
    answer: dict[str, Any] = {
        "id": chat_id(msg.get("id")),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": msg.get("model") or model or "",
        "choices": [
            {
                "index": 0,
                "message": message,
                "finish_reason": finish_reason(msg.get("stop_reason")),
                "logprobs": None,
            }
        ],
    }
    if isinstance(msg.get("usage"), Mapping):
        answer["usage"] = chat_usage(msg["usage"])
    return answer


def error_to_openai(status: int, body: bytes) -> bytes:
    """An Anthropic error body (`{"type":"error","error":{type,message}}`) as OpenAI's."""
    message, type_ = "", "api_error" if status >= 500 else "invalid_request_error"
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        doc = None
    if isinstance(doc, Mapping):
        error = doc.get("error")
        if isinstance(error, Mapping):
            found, kind = error.get("message"), error.get("type")
            message = found if isinstance(found, str) else ""
            type_ = kind if isinstance(kind, str) else type_
        elif isinstance(doc.get("message"), str):
            message = doc["message"]
    if not message:
        message = body.decode("utf-8", "replace").strip()[:2000] or f"upstream answered HTTP {status}"
    return orjson.dumps({"error": {"message": message, "type": type_, "param": None, "code": None}})


class MessagesToChatStream:
    """Anthropic stream bytes in, events whose data are chat chunks (and a final `[DONE]`) out."""

    __slots__ = ("_created", "_id", "_model", "_sse", "_tool_index", "_tools", "_usage")

    def __init__(self) -> None:
        self._sse = SSEDecoder()
        self._id = "chatcmpl-anthropic"
        self._model = ""
        self._created = int(time.time())
        self._usage: dict[str, Any] = {}
        self._tools: dict[int, int] = {}  # Anthropic block index → chat tool_calls index
        self._tool_index = 0

    def feed(self, chunk: bytes) -> list[Event]:
        return self._convert(self._sse.feed(chunk))

    def flush(self) -> list[Event]:
        return self._convert(self._sse.flush())

    def _convert(self, events: list[Event]) -> list[Event]:
        out: list[Event] = []
        for ev in events:
            if not ev.data:
                continue
            doc = stream_event(ev.data)
            if isinstance(doc, dict):
                out.extend(Event(b"", data) for data in self._event(doc))
        return out

    def _chunk(self, delta: dict[str, Any], finish: str | None = None) -> bytes:
        return chat_chunk(self._id, self._created, self._model, delta, finish)

    def _event(self, doc: dict[str, Any]) -> list[bytes]:
        kind = doc.get("type")
        if kind == "message_start":
            msg = doc.get("message") or {}
            self._id = chat_id(msg.get("id"))
            self._model = msg.get("model") or ""
            self._usage.update(msg.get("usage") or {})
            return [self._chunk({"role": "assistant", "content": ""})]
        if kind == "content_block_start":
            return self._block_start(doc.get("index"), doc.get("content_block") or {})
        if kind == "content_block_delta":
            return self._block_delta(doc.get("index"), doc.get("delta") or {})
        if kind == "message_delta":
            usage = doc.get("usage")
            if isinstance(usage, Mapping):
                self._usage.update({k: v for k, v in usage.items() if v is not None})
            stop = (doc.get("delta") or {}).get("stop_reason")
            return [self._chunk({}, finish_reason(stop))] if stop else []
        if kind == "message_stop":
            usage = chat_usage(self._usage)
            return [usage_chunk(self._id, self._created, self._model, usage), DONE]
        if kind == "error":
            error = doc.get("error") or {}
            raise GatewayError(
                str(error.get("message") or "The upstream failed mid-stream."),
                code=str(error.get("type") or "upstream_error"),
            )
        return []  # ping, and event types added later

    def _block_start(self, index: Any, block: Mapping[str, Any]) -> list[bytes]:
        kind = block.get("type")
        if kind == "tool_use":
            n = self._tools[index] = self._tool_index
            self._tool_index += 1
            call = {
                "index": n,
                "id": block.get("id"),
                "type": "function",
                "function": {"name": block.get("name"), "arguments": ""},
            }
            return [self._chunk({"tool_calls": [call]})]
        if kind == "redacted_thinking":
            return [
                self._chunk({"thinking_blocks": [{"type": "redacted_thinking", "data": block.get("data")}]})
            ]
        if kind == "text" and block.get("text"):
            return [self._chunk({"content": block["text"]})]
        return []

    def _block_delta(self, index: Any, delta: Mapping[str, Any]) -> list[bytes]:
        kind = delta.get("type")
        if kind == "text_delta":
            return [self._chunk({"content": delta.get("text") or ""})]
        if kind == "thinking_delta":
            return [self._chunk({"reasoning_content": delta.get("thinking") or ""})]
        if kind == "signature_delta":
            block = {"type": "thinking", "thinking": "", "signature": delta.get("signature")}
            return [self._chunk({"thinking_blocks": [block]})]
        if kind == "input_json_delta" and index in self._tools:
            call = {"index": self._tools[index], "function": {"arguments": delta.get("partial_json") or ""}}
            return [self._chunk({"tool_calls": [call]})]
        return []
