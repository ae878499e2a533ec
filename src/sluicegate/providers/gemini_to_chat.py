"""Gemini `GenerateContentResponse` (whole or streamed) and errors → canonical chat.

Thought parts (`thought: true`) become `reasoning_content`; a function call's `thoughtSignature`
rides on its tool call as `extra_content.google.thought_signature` (the name Google's own
OpenAI-compatible endpoint uses), so it goes back on the next turn. Usage: `completion_tokens`
includes thoughts (billed as output), `reasoning_tokens` are the thoughts, `cached_tokens` the
context-cache hits. A safety block is a `content_filter` finish; a prompt blocked before any
candidate is a `content_filter` answer with the block reason as its refusal.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import orjson

from sluicegate.protocol.errors import GatewayError
from sluicegate.protocol.sse import DONE, Event, SSEDecoder
from sluicegate.providers.chat_pieces import count
from sluicegate.providers.native_common import chat_chunk, stream_event, usage_chunk

_FILTERED = frozenset(
    {
        "SAFETY",
        "RECITATION",
        "BLOCKLIST",
        "PROHIBITED_CONTENT",
        "SPII",
        "IMAGE_SAFETY",
        "IMAGE_PROHIBITED_CONTENT",
    }
)


def finish_reason(reason: Any, has_calls: bool) -> str | None:
    if not isinstance(reason, str) or reason == "FINISH_REASON_UNSPECIFIED":
        return None
    if reason in _FILTERED:
        return "content_filter"
    if reason == "MAX_TOKENS":
        return "length"
    return "tool_calls" if has_calls else "stop"


def chat_usage(meta: Mapping[str, Any]) -> dict[str, Any]:
    prompt = count(meta.get("promptTokenCount")) + count(meta.get("toolUsePromptTokenCount"))
    thoughts = count(meta.get("thoughtsTokenCount"))
    completion = count(meta.get("candidatesTokenCount")) + thoughts
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": count(meta.get("cachedContentTokenCount"))},
        "completion_tokens_details": {"reasoning_tokens": thoughts},
    }


def _parts(candidate: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    content = candidate.get("content")
    parts = content.get("parts") if isinstance(content, Mapping) else None
    return [p for p in parts if isinstance(p, Mapping)] if isinstance(parts, list) else []


def _tool_call(part: Mapping[str, Any], n: int, response_id: str) -> dict[str, Any]:
    call = part["functionCall"]
    out: dict[str, Any] = {
        "id": call.get("id") or f"call_{response_id}_{n}",
        "type": "function",
        "function": {
            "name": call.get("name") or "",
            "arguments": orjson.dumps(call.get("args") or {}).decode(),
        },
    }
    if isinstance(part.get("thoughtSignature"), str):
        out["extra_content"] = {"google": {"thought_signature": part["thoughtSignature"]}}
    return out


def gemini_to_chat(doc: Mapping[str, Any], model: str = "") -> dict[str, Any]:
    """A whole GenerateContentResponse as a `chat.completion` (one choice per candidate)."""
    response_id = str(doc.get("responseId") or "gemini")
    choices = []
    for i, cand in enumerate(doc.get("candidates") or []):
        if not isinstance(cand, Mapping):
            continue
        text: list[str] = []
        thoughts: list[str] = []
        calls: list[dict[str, Any]] = []
        for part in _parts(cand):
            if isinstance(part.get("functionCall"), Mapping):
                calls.append(_tool_call(part, len(calls), response_id))
            elif isinstance(part.get("text"), str):
                (thoughts if part.get("thought") else text).append(part["text"])
        message: dict[str, Any] = {
            "role": "assistant",
            "content": "".join(text) if text or not calls else None,
            "refusal": None,
        }
        if calls:
            message["tool_calls"] = calls
        if thoughts:
            message["reasoning_content"] = "".join(thoughts)
        reason = finish_reason(cand.get("finishReason"), bool(calls)) or "stop"
        choices.append(
            {"index": cand.get("index", i), "message": message, "finish_reason": reason, "logprobs": None}
        )
    if not choices:  # the prompt itself was blocked: no candidate at all
        block = (doc.get("promptFeedback") or {}).get("blockReason") or "OTHER"
        refusal = f"The prompt was blocked by the provider's safety filters ({block})."
        message = {"role": "assistant", "content": None, "refusal": refusal}
        choices.append({"index": 0, "message": message, "finish_reason": "content_filter", "logprobs": None})
    answer: dict[str, Any] = {
        "id": f"chatcmpl-{response_id}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": doc.get("modelVersion") or model,
        "choices": choices,
    }
    if isinstance(doc.get("usageMetadata"), Mapping):
        answer["usage"] = chat_usage(doc["usageMetadata"])
    return answer


_STATUS_TYPES = {
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    429: "rate_limit_error",
}


def error_to_openai(status: int, body: bytes) -> bytes:
    """Google's error body (`{"error": {code, message, status}}`, or a list of them) as OpenAI's."""
    message, code = "", None
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        doc = None
    if isinstance(doc, list) and doc:  # streamGenerateContent without alt=sse answers a list
        doc = doc[0]
    if isinstance(doc, Mapping) and isinstance(doc.get("error"), Mapping):
        error = doc["error"]
        message = error.get("message") if isinstance(error.get("message"), str) else ""
        code = error.get("status") if isinstance(error.get("status"), str) else None
    if not message:
        message = body.decode("utf-8", "replace").strip()[:2000] or f"upstream answered HTTP {status}"
    type_ = _STATUS_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")
    return orjson.dumps({"error": {"message": message, "type": type_, "param": None, "code": code}})


class GeminiToChatStream:
    """`streamGenerateContent?alt=sse` bytes in, chat chunk payloads (and `[DONE]` at a clean end) out.

    Each SSE event is a GenerateContentResponse holding the next parts; usage is cumulative and
    repeated, so the last one seen is the answer's. The usage chunk and `[DONE]` are written when
    the stream ends after a finish reason; a stream cut before one ends without them (the encoder
    then reports the cut)."""

    __slots__ = ("_calls", "_created", "_finished", "_id", "_model", "_sse", "_started", "_usage")

    def __init__(self) -> None:
        self._sse = SSEDecoder()
        self._id = "chatcmpl-gemini"
        self._model = ""
        self._created = int(time.time())
        self._usage: Mapping[str, Any] | None = None
        self._calls = 0
        self._started = False
        self._finished = False

    def feed(self, chunk: bytes) -> list[Event]:
        out: list[Event] = []
        for ev in self._sse.feed(chunk):
            out.extend(Event(b"", data) for data in self._event(ev.data))
        return out

    def flush(self) -> list[Event]:
        out: list[Event] = []
        for ev in self._sse.flush():
            out.extend(Event(b"", data) for data in self._event(ev.data))
        if self._finished:
            if self._usage is not None:
                usage = chat_usage(self._usage)
                out.append(Event(b"", usage_chunk(self._id, self._created, self._model, usage)))
            out.append(Event(b"", DONE))
        return out

    def _chunk(self, delta: dict[str, Any], finish: str | None = None) -> bytes:
        return chat_chunk(self._id, self._created, self._model, delta, finish)

    def _event(self, data: bytes) -> list[bytes]:
        if not data:
            return []
        doc = stream_event(data)
        if not isinstance(doc, Mapping):
            return []
        if isinstance(doc.get("error"), Mapping):
            raise GatewayError(
                str(doc["error"].get("message") or "The upstream failed mid-stream."),
                code=str(doc["error"].get("status") or "upstream_error"),
            )
        out: list[bytes] = []
        if not self._started:
            self._started = True
            self._id = f"chatcmpl-{doc.get('responseId') or 'gemini'}"
            self._model = str(doc.get("modelVersion") or "")
            out.append(self._chunk({"role": "assistant", "content": ""}))
        if isinstance(doc.get("usageMetadata"), Mapping):
            self._usage = doc["usageMetadata"]
        candidates = doc.get("candidates") or []
        if not candidates and (doc.get("promptFeedback") or {}).get("blockReason"):
            self._finished = True
            block = doc["promptFeedback"]["blockReason"]
            out.append(
                self._chunk(
                    {"refusal": f"The prompt was blocked by the provider's safety filters ({block})."},
                    "content_filter",
                )
            )
            return out
        cand = candidates[0] if candidates and isinstance(candidates[0], Mapping) else {}
        for part in _parts(cand):
            if isinstance(part.get("functionCall"), Mapping):
                call = _tool_call(part, self._calls, self._id.removeprefix("chatcmpl-"))
                out.append(self._chunk({"tool_calls": [{"index": self._calls, **call}]}))
                self._calls += 1
            elif isinstance(part.get("text"), str):
                key = "reasoning_content" if part.get("thought") else "content"
                out.append(self._chunk({key: part["text"]}))
        reason = finish_reason(cand.get("finishReason"), self._calls > 0)
        if reason is not None:
            self._finished = True
            out.append(self._chunk({}, reason))
        return out
