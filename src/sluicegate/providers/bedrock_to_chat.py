"""Bedrock Converse answers, ConverseStream events and errors → canonical chat.

The stream is AWS's binary event-stream framing, parsed by botocore's `EventStreamBuffer` (never by
hand); each message's `:event-type` header names the event (messageStart, contentBlockStart,
contentBlockDelta, contentBlockStop, messageStop, metadata) and its payload is JSON. An
`:message-type: exception` message is the upstream failing mid-stream.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import orjson

from sluicegate.protocol.errors import GatewayError
from sluicegate.protocol.sse import DONE, Event
from sluicegate.providers.chat_pieces import cached_usage, count
from sluicegate.providers.native_common import chat_chunk, usage_chunk

FINISH = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
    "guardrail_intervened": "content_filter",
    "content_filtered": "content_filter",
    "model_context_window_exceeded": "length",
}


def chat_usage(usage: Mapping[str, Any]) -> dict[str, Any]:
    """Converse's usage in OpenAI's meaning, cache figures kept by their Anthropic names."""
    return cached_usage(
        count(usage.get("inputTokens")),
        count(usage.get("outputTokens")),
        count(usage.get("cacheReadInputTokens")),
        count(usage.get("cacheWriteInputTokens")),
    )


def converse_to_chat(doc: Mapping[str, Any], model: str = "") -> dict[str, Any]:
    """A whole Converse answer as a chat.completion."""
    message = (doc.get("output") or {}).get("message") or {}
    text: list[str] = []
    reasoning: list[str] = []
    thinking: list[dict[str, Any]] = []
    calls: list[dict[str, Any]] = []
    for block in message.get("content") or ():
        if not isinstance(block, Mapping):
            continue
        if isinstance(block.get("text"), str):
            text.append(block["text"])
        elif isinstance(block.get("toolUse"), Mapping):
            use = block["toolUse"]
            calls.append(
                {
                    "id": use.get("toolUseId"),
                    "type": "function",
                    "function": {
                        "name": use.get("name"),
                        "arguments": orjson.dumps(use.get("input") or {}).decode(),
                    },
                }
            )
        elif isinstance(block.get("reasoningContent"), Mapping):
            rt = block["reasoningContent"].get("reasoningText") or {}
            reasoning.append(rt.get("text") or "")
            thinking.append(
                {"type": "thinking", "thinking": rt.get("text") or "", "signature": rt.get("signature")}
            )
    out: dict[str, Any] = {
        "role": "assistant",
        "content": "".join(text) if text or not calls else None,
        "refusal": None,
    }
    if calls:
        out["tool_calls"] = calls
    if reasoning:
        out["reasoning_content"] = "".join(reasoning)
        out["thinking_blocks"] = thinking
    finish = FINISH.get(str(doc.get("stopReason")), "stop")
    answer: dict[str, Any] = {
        "id": f"chatcmpl-bedrock-{int(time.time() * 1000)}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": out, "finish_reason": finish, "logprobs": None}],
    }
    if isinstance(doc.get("usage"), Mapping):
        answer["usage"] = chat_usage(doc["usage"])
    return answer


def error_to_openai(status: int, body: bytes) -> bytes:
    """Bedrock's error (`{"message": ...}`, type in the x-amzn-errortype header) as OpenAI's."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        doc = None
    message = doc.get("message") or doc.get("Message") if isinstance(doc, Mapping) else None
    if not isinstance(message, str) or not message:
        message = body.decode("utf-8", "replace").strip()[:2000] or f"upstream answered HTTP {status}"
    type_ = "api_error" if status >= 500 else "invalid_request_error"
    return orjson.dumps({"error": {"message": message, "type": type_, "param": None, "code": None}})


class ConverseToChatStream:
    """ConverseStream bytes in (AWS event-stream, via botocore), chat chunk payloads out."""

    __slots__ = ("_buffer", "_created", "_done", "_id", "_model", "_tools", "_usage")

    def __init__(self) -> None:
        from botocore.eventstream import EventStreamBuffer

        self._buffer = EventStreamBuffer()
        self._id = f"chatcmpl-bedrock-{int(time.time() * 1000)}"
        self._created = int(time.time())
        self._model = ""
        self._tools: dict[int, int] = {}
        self._usage: Mapping[str, Any] = {}
        self._done = False

    def feed(self, chunk: bytes) -> list[Event]:
        self._buffer.add_data(chunk)
        out: list[Event] = []
        for message in self._buffer:
            headers = message.headers
            payload = orjson.loads(message.payload) if message.payload else {}
            if headers.get(":message-type") == "exception":
                raise GatewayError(
                    str(payload.get("message") or "The upstream failed mid-stream."),
                    code=str(headers.get(":exception-type") or "upstream_error"),
                )
            out.extend(Event(b"", data) for data in self._event(str(headers.get(":event-type")), payload))
        return out

    def flush(self) -> list[Event]:
        if not self._done:
            return []
        return [
            Event(b"", usage_chunk(self._id, self._created, self._model, chat_usage(self._usage))),
            Event(b"", DONE),
        ]

    def _chunk(self, delta: dict[str, Any], finish: str | None = None) -> bytes:
        return chat_chunk(self._id, self._created, self._model, delta, finish)

    def _event(self, kind: str, doc: Mapping[str, Any]) -> list[bytes]:
        if kind == "messageStart":
            return [self._chunk({"role": "assistant", "content": ""})]
        index = doc.get("contentBlockIndex")
        if kind == "contentBlockStart":
            use = (doc.get("start") or {}).get("toolUse")
            if isinstance(use, Mapping) and isinstance(index, int):
                n = self._tools[index] = len(self._tools)
                call = {
                    "index": n,
                    "id": use.get("toolUseId"),
                    "type": "function",
                    "function": {"name": use.get("name"), "arguments": ""},
                }
                return [self._chunk({"tool_calls": [call]})]
            return []
        if kind == "contentBlockDelta":
            delta = doc.get("delta") or {}
            if isinstance(delta.get("text"), str):
                return [self._chunk({"content": delta["text"]})]
            if isinstance(delta.get("toolUse"), Mapping) and index in self._tools:
                call = {
                    "index": self._tools[index],
                    "function": {"arguments": delta["toolUse"].get("input") or ""},
                }
                return [self._chunk({"tool_calls": [call]})]
            reasoning = delta.get("reasoningContent")
            if isinstance(reasoning, Mapping):
                if isinstance(reasoning.get("text"), str):
                    return [self._chunk({"reasoning_content": reasoning["text"]})]
                if isinstance(reasoning.get("signature"), str):
                    block = {"type": "thinking", "thinking": "", "signature": reasoning["signature"]}
                    return [self._chunk({"thinking_blocks": [block]})]
            return []
        if kind == "messageStop":
            return [self._chunk({}, FINISH.get(str(doc.get("stopReason")), "stop"))]
        if kind == "metadata":
            self._usage = doc.get("usage") or {}
            self._done = True
        return []
