"""An OpenAI chat.completion answer as an Anthropic `message`: content blocks, stop reason, usage.

Shared with the stream translator (`anthropic_stream`), which builds the same message piece by
piece: the stop-reason table, the usage conversion and the id rules live here once.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping
from typing import Any

import orjson

from sluicegate.metering.usage import Usage, usage_from_mapping

_TOOL_ID_UNSAFE = re.compile(r"[^a-zA-Z0-9_-]")

STOP_REASONS: Mapping[str, str] = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    # Anthropic: "refusal" is "when streaming classifiers intervene to handle potential policy
    # violations", which is what OpenAI's content_filter reports.
    "content_filter": "refusal",
}


def tool_id(value: Any, fallback: str) -> str:
    """An id Anthropic accepts (`^[a-zA-Z0-9_-]+$`); the same on the way in and out."""
    text = _TOOL_ID_UNSAFE.sub("_", value) if isinstance(value, str) else ""
    return text or fallback


def message_id(chat_id: Any) -> str:
    """`msg_...` from a chat completion id, so logs on both sides can be matched up."""
    if isinstance(chat_id, str) and chat_id:
        return "msg_" + _TOOL_ID_UNSAFE.sub("_", chat_id.removeprefix("chatcmpl-"))
    return "msg_" + secrets.token_hex(12)


def parse_arguments(raw: Any) -> dict[str, Any]:
    """A tool call's `arguments` string as Anthropic's `input` object, whatever the model wrote.

    Models do emit broken JSON. An empty string is no arguments; anything that is not a JSON
    object is kept verbatim under `_raw_arguments`, so the client's tool validation (and then the
    model) sees what went wrong instead of a silent `{}`.
    """
    if isinstance(raw, Mapping):
        return dict(raw)
    if not isinstance(raw, str) or not raw.strip():
        return {}
    try:
        parsed = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return {"_raw_arguments": raw}
    return parsed if isinstance(parsed, dict) else {"_raw_arguments": raw}


def stop_reason(finish_reason: Any, matched_stop: Any = None, has_tool_calls: bool = False) -> str:
    """Anthropic's stop_reason for an OpenAI finish_reason.

    `matched_stop` is vLLM's choice-level `stop_reason` (the stop string that ended the text), the
    only way an OpenAI-compatible answer tells a stop sequence from a natural end. Some servers
    (Ollama among them) finish a tool-calling turn with "stop": tool calls still mean tool_use.
    """
    if has_tool_calls and finish_reason in (None, "stop", "tool_calls", "function_call"):
        return "tool_use"
    if finish_reason == "stop" and isinstance(matched_stop, str):
        return "stop_sequence"
    return STOP_REASONS.get(finish_reason, "end_turn") if isinstance(finish_reason, str) else "end_turn"


def stop_details(reason: str) -> dict[str, Any] | None:
    return {"type": "refusal", "category": None, "explanation": None} if reason == "refusal" else None


def anthropic_usage(usage: Usage | None, *, full: bool = True) -> dict[str, Any]:
    """Anthropic's usage object for OpenAI-meaning `usage`.

    Anthropic's input_tokens excludes cache reads, OpenAI's prompt_tokens includes them. OpenAI-
    style caching has no write charge, so cache_creation_input_tokens is truly 0. `full` is the
    Message shape; otherwise the message_delta shape (no tier, geo or cache breakdown).
    """
    usage = usage or Usage()
    out: dict[str, Any] = {
        "input_tokens": max(0, usage.prompt_tokens - usage.cached_tokens),
        "output_tokens": usage.completion_tokens,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": usage.cached_tokens,
        "server_tool_use": None,
        "output_tokens_details": (
            {"thinking_tokens": usage.reasoning_tokens} if usage.reasoning_tokens else None
        ),
    }
    if full:
        out.update(cache_creation=None, inference_geo=None, service_tier=None)
    return out


def openai_usage(chat: Mapping[str, Any]) -> Usage | None:
    found = chat.get("usage")
    return usage_from_mapping(found) if isinstance(found, Mapping) else None


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # some servers answer with content parts
        return "".join(str(p.get("text", "")) for p in content if isinstance(p, Mapping))
    return ""


def chat_to_message(chat: Mapping[str, Any], model: str) -> dict[str, Any]:
    """An OpenAI chat.completion as an Anthropic `message`, named `model` (what the client asked for).

    Only the first choice is used: Anthropic has no `n`, and the request never asks for more.
    """
    choices = chat.get("choices")
    choice = choices[0] if isinstance(choices, list) and choices and isinstance(choices[0], Mapping) else {}
    message = choice.get("message")
    reply: Mapping[str, Any] = message if isinstance(message, Mapping) else {}
    msg_id = message_id(chat.get("id"))
    content: list[dict[str, Any]] = []
    text = _text_of(reply.get("content")) or _text_of(reply.get("refusal"))
    if text:
        content.append({"type": "text", "text": text, "citations": None})
    raw_calls = reply.get("tool_calls")
    calls: list[Any] = raw_calls if isinstance(raw_calls, list) else []
    for i, call in enumerate(calls):
        function = call.get("function") if isinstance(call, Mapping) else None
        if not isinstance(function, Mapping):
            continue
        content.append(
            {
                "type": "tool_use",
                "id": tool_id(call.get("id"), f"toolu_{msg_id[4:]}_{i}"),
                "name": str(function.get("name") or "unknown"),
                "input": parse_arguments(function.get("arguments")),
                "caller": {"type": "direct"},
            }
        )
    matched = choice.get("stop_reason")
    reason = stop_reason(choice.get("finish_reason"), matched, bool(calls))
    return {
        "id": msg_id,
        "type": "message",
        "role": "assistant",
        "content": content,
        "model": model,
        "stop_reason": reason,
        "stop_sequence": matched if reason == "stop_sequence" else None,
        "stop_details": stop_details(reason),
        "container": None,
        "usage": anthropic_usage(openai_usage(chat)),
    }
