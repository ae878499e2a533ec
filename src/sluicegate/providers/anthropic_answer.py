"""An OpenAI chat.completion answer as an Anthropic `message`: content blocks, stop reason, usage.

Shared with the stream translator (`anthropic_stream`), which builds the same message piece by
piece: the stop-reason table, the usage conversion and the id rules live here once.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Mapping, Sequence
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


# Thinking blocks need a `signature` (the spec requires the field; Anthropic's own is an opaque proof
# only its API can check). The gateway signs with a recognisable prefix and a digest of the text:
# never mistaken for Anthropic's, and a later turn can tell the gateway's thinking from Claude's.
SIGNATURE_PREFIX = "sluicegate.v1."


def thinking_signature(digest: Any) -> str:
    """The gateway's signature for a thinking block, from a sha256 object fed with its text."""
    return SIGNATURE_PREFIX + str(digest.hexdigest()[:32])


def reasoning_text(delta: Mapping[str, Any]) -> str | None:
    """An upstream's reasoning in a message or delta: `reasoning_content` (DeepSeek, Kimi, Qwen,
    vLLM) or `reasoning` (OpenRouter, Ollama, newer vLLM)."""
    text = delta.get("reasoning_content")
    if not isinstance(text, str) or not text:
        text = delta.get("reasoning")
    return text if isinstance(text, str) and text else None


def matched_stop(finish_reason: Any, upstream_said: Any, text_tail: str, stops: Sequence[str]) -> str | None:
    """The stop sequence that ended the answer, or None when it ended for another reason.

    OpenAI's API does not say which stop string matched (nor whether one did). The gateway believes
    the upstream when it names one (vLLM's choice-level `stop_reason`), and otherwise only the text:
    an answer that ends with one of the request's stop sequences (servers that keep the matched
    string, as llama.cpp can). Anything else is a natural end, `end_turn`: a guess would be wrong
    half the time, and an honest end_turn costs a client little.
    """
    if finish_reason != "stop":
        return None
    if isinstance(upstream_said, str) and upstream_said and (not stops or upstream_said in stops):
        return upstream_said
    for stop in stops:
        if stop and text_tail.endswith(stop):
            return stop
    return None


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


def chat_to_message(
    chat: Mapping[str, Any],
    model: str,
    *,
    thinking: str = "drop",
    stops: Sequence[str] = (),
    usage: Usage | None = None,
) -> dict[str, Any]:
    """An OpenAI chat.completion as an Anthropic `message`, named `model` (what the client asked for).

    Only the first choice is used: Anthropic has no `n`, and the request never asks for more.
    `thinking` ("show", "omit", "drop": see `anthropic.thinking_mode`) says what becomes of the
    upstream's reasoning; `stops` are the request's stop sequences; `usage` stands in when the
    answer reports none (the gateway's own count).
    """
    choices = chat.get("choices")
    choice = choices[0] if isinstance(choices, list) and choices and isinstance(choices[0], Mapping) else {}
    message = choice.get("message")
    reply: Mapping[str, Any] = message if isinstance(message, Mapping) else {}
    msg_id = message_id(chat.get("id"))
    content: list[dict[str, Any]] = []
    reasoning = reasoning_text(reply) if thinking != "drop" and isinstance(reply, Mapping) else None
    if reasoning is not None:
        shown = reasoning if thinking == "show" else ""
        content.append(
            {
                "type": "thinking",
                "thinking": shown,
                "signature": thinking_signature(hashlib.sha256(shown.encode())),
            }
        )
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
    matched = matched_stop(choice.get("finish_reason"), choice.get("stop_reason"), text, stops)
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
        "usage": anthropic_usage(openai_usage(chat) or usage),
    }
