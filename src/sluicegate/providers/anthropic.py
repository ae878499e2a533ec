"""Anthropic's Messages API in front of OpenAI-compatible upstreams: requests, answers and errors.

The gateway serves `POST /v1/messages` so that the official `anthropic` SDK and Claude-style clients
can use any upstream it routes to. Every upstream speaks OpenAI's Chat Completions, so this module
translates a Messages request into a chat.completions request, a chat.completion back into a
`message`, and OpenAI-style errors into Anthropic's error body. The streaming side is in
`anthropic_stream`. Everything is pure: dicts in, dicts (or bytes) out; `ValueError` for a request
that cannot be translated, which the shell answers with `error_body(400, str(exc))`.

Request fields with no OpenAI counterpart are dropped, not refused, so that clients which always
send them keep working: see `IGNORED_FIELDS`. Content the upstream could not be given faithfully
(server tools, documents, file references) is refused, because a silently different conversation is
worse than a clear 400.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping
from typing import Any

import orjson

from sluicegate.metering.usage import Usage, usage_from_mapping
from sluicegate.providers.anthropic_errors import (
    ERROR_TYPES,
    error_body,
    error_type,
    openai_error_to_anthropic,
)

# Accepted and dropped: they tune Anthropic-only machinery (prompt caching, extended thinking,
# server-side containers, tiers) that an OpenAI-compatible upstream has no switch for.
IGNORED_FIELDS = frozenset({
    "top_k", "thinking", "service_tier", "container", "inference_geo", "cache_control",
    "mcp_servers", "context_management",
})

# Block types in a conversation that carry no meaning for another model: Claude's own reasoning,
# which only Claude can verify (signatures) and which Anthropic itself strips from earlier turns.
_DROPPED_BLOCKS = frozenset({"thinking", "redacted_thinking"})

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

# -- requests -----------------------------------------------------------------------------------


def messages_to_chat(body: Mapping[str, Any], model: str) -> dict[str, Any]:
    """An Anthropic Messages request as an OpenAI chat.completions request for `model`.

    `model` is the upstream's model name (the route decides it, not the client). Raises ValueError
    with a message fit for the client when the request is malformed or uses what cannot be carried.
    """
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise ValueError("messages: must be a non-empty list")
    max_tokens = body.get("max_tokens")
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
        raise ValueError("max_tokens: required, an integer of at least 1")

    chat: dict[str, Any] = {"model": model, "messages": _chat_messages(body.get("system"), messages),
                            "max_tokens": max_tokens}
    for name in ("temperature", "top_p"):
        if body.get(name) is not None:
            chat[name] = body[name]
    stops = body.get("stop_sequences")
    if stops:
        if not isinstance(stops, list) or not all(isinstance(s, str) for s in stops):
            raise ValueError("stop_sequences: must be a list of strings")
        chat["stop"] = stops
    if body.get("stream") is True:
        # Anthropic always reports usage at the end of a stream; OpenAI only when asked.
        chat["stream"] = True
        chat["stream_options"] = {"include_usage": True}
    tools = body.get("tools")
    if tools:
        chat["tools"] = [_chat_tool(tool, i) for i, tool in enumerate(_list(tools, "tools"))]
    if body.get("tool_choice") is not None:
        _apply_tool_choice(chat, body["tool_choice"])
    metadata = body.get("metadata")
    if isinstance(metadata, Mapping) and isinstance(metadata.get("user_id"), str):
        chat["user"] = metadata["user_id"]
    output_format = (body.get("output_config") or {}).get("format") if isinstance(
        body.get("output_config"), Mapping) else None
    if isinstance(output_format, Mapping) and output_format.get("type") == "json_schema":
        chat["response_format"] = {"type": "json_schema", "json_schema": {
            "name": "output", "schema": output_format.get("schema") or {}, "strict": True}}
    return chat


def _list(value: Any, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise ValueError(f"{where}: must be a list")  # noqa: TRY004 (ValueError is the 400 contract)
    return value


def _system_text(system: Any) -> str:
    if isinstance(system, str):
        return system
    parts = []
    for i, block in enumerate(_list(system, "system")):
        if not isinstance(block, Mapping) or block.get("type") != "text":
            raise ValueError(f"system.{i}: only text blocks are supported in the system prompt")
        parts.append(str(block.get("text", "")))
    # Separate blocks are separate sections (clients split them for cache breakpoints).
    return "\n\n".join(parts)


def _chat_messages(system: Any, messages: list[Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    if system:
        out.append({"role": "system", "content": _system_text(system)})
    for i, message in enumerate(messages):
        if not isinstance(message, Mapping):
            raise ValueError(f"messages.{i}: must be an object")  # noqa: TRY004 (ValueError is the 400 contract)
        role = message.get("role")
        content = message.get("content")
        if role == "user":
            out.extend(_user_messages(content, i))
        elif role == "assistant":
            translated = _assistant_message(content, i)
            if translated is not None:
                out.append(translated)
        else:
            raise ValueError(f"messages.{i}.role: must be 'user' or 'assistant', not {role!r}")
    return out


def _blocks(content: Any, where: str) -> list[Mapping[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    blocks = _list(content, f"{where}.content")
    for j, block in enumerate(blocks):
        if not isinstance(block, Mapping) or not isinstance(block.get("type"), str):
            raise ValueError(f"{where}.content.{j}: must be a content block with a type")  # noqa: TRY004 (ValueError is the 400 contract)
    return blocks


def _image_part(block: Mapping[str, Any], where: str) -> dict[str, Any]:
    source = block.get("source")
    if isinstance(source, Mapping) and source.get("type") == "base64":
        url = f"data:{source.get('media_type', 'image/png')};base64,{source.get('data', '')}"
    elif isinstance(source, Mapping) and source.get("type") == "url":
        url = str(source.get("url", ""))
    else:
        kind = source.get("type") if isinstance(source, Mapping) else None
        raise ValueError(f"{where}.source: image source {kind!r} is not supported (use base64 or url)")
    return {"type": "image_url", "image_url": {"url": url}}


def tool_id(value: Any, fallback: str) -> str:
    """An id Anthropic accepts (`^[a-zA-Z0-9_-]+$`); the same on the way in and out."""
    text = _TOOL_ID_UNSAFE.sub("_", value) if isinstance(value, str) else ""
    return text or fallback


def _tool_result_text(block: Mapping[str, Any], where: str, images: list[dict[str, Any]]) -> str:
    content = block.get("content")
    if content is None:
        text = ""
    elif isinstance(content, str):
        text = content
    else:
        texts = []
        for k, part in enumerate(_blocks(content, where)):
            if part["type"] == "text":
                texts.append(str(part.get("text", "")))
            elif part["type"] == "image":
                # OpenAI tool messages carry text only: the image goes to the user turn after them.
                images.append(_image_part(part, f"{where}.content.{k}"))
            else:
                raise ValueError(f"{where}.content.{k}: {part['type']!r} blocks are not supported "
                                 "in tool results")
        text = "\n".join(texts)
    if block.get("is_error") is True:
        # OpenAI has no error flag on tool messages; without this the model would read a failure
        # as a result.
        text = f"Error: {text}" if text else "Error"
    return text


def _user_messages(content: Any, i: int) -> list[dict[str, Any]]:
    """One Anthropic user turn: its tool results (OpenAI `tool` messages, which must come right
    after the assistant's tool calls) then whatever else it says, as one user message."""
    where = f"messages.{i}"
    if isinstance(content, str):
        return [{"role": "user", "content": content}]
    tools: list[dict[str, Any]] = []
    parts: list[dict[str, Any]] = []
    for j, block in enumerate(_blocks(content, where)):
        kind = block["type"]
        at = f"{where}.content.{j}"
        if kind == "text":
            parts.append({"type": "text", "text": str(block.get("text", ""))})
        elif kind == "image":
            parts.append(_image_part(block, at))
        elif kind == "tool_result":
            call_id = tool_id(block.get("tool_use_id"), "")
            if not call_id:
                raise ValueError(f"{at}.tool_use_id: required")
            tools.append({"role": "tool", "tool_call_id": call_id,
                          "content": _tool_result_text(block, at, parts)})
        elif kind in _DROPPED_BLOCKS:
            continue
        else:
            raise ValueError(f"{at}: {kind!r} blocks are not supported by this gateway")
    if not parts:
        return tools
    if len(parts) == 1 and parts[0]["type"] == "text":
        return [*tools, {"role": "user", "content": parts[0]["text"]}]
    return [*tools, {"role": "user", "content": parts}]


def _assistant_message(content: Any, i: int) -> dict[str, Any] | None:
    where = f"messages.{i}"
    if isinstance(content, str):
        return {"role": "assistant", "content": content}
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    for j, block in enumerate(_blocks(content, where)):
        kind = block["type"]
        if kind == "text":
            texts.append(str(block.get("text", "")))
        elif kind == "tool_use":
            name = block.get("name")
            if not isinstance(name, str) or not name:
                raise ValueError(f"{where}.content.{j}.name: required")
            arguments = orjson.dumps(block.get("input") or {}).decode()
            calls.append({"id": tool_id(block.get("id"), f"toolu_{i}_{j}"), "type": "function",
                          "function": {"name": name, "arguments": arguments}})
        elif kind in _DROPPED_BLOCKS:
            continue
        else:
            raise ValueError(f"{where}.content.{j}: {kind!r} blocks are not supported by this gateway")
    if not texts and not calls:
        return None  # only thinking: nothing another model can use
    message: dict[str, Any] = {"role": "assistant", "content": "".join(texts) if texts else None}
    if calls:
        message["tool_calls"] = calls
    return message


def _chat_tool(tool: Any, i: int) -> dict[str, Any]:
    if not isinstance(tool, Mapping):
        raise ValueError(f"tools.{i}: must be an object")  # noqa: TRY004 (ValueError is the 400 contract)
    kind = tool.get("type")
    if kind not in (None, "custom"):
        # Server tools (web_search_..., bash_..., text_editor_...) run inside Anthropic's API.
        raise ValueError(f"tools.{i}: Anthropic server tool {kind!r} is not supported by this gateway")
    name = tool.get("name")
    if not isinstance(name, str) or not name:
        raise ValueError(f"tools.{i}.name: required")
    function: dict[str, Any] = {"name": name,
                                "parameters": tool.get("input_schema") or {"type": "object"}}
    if isinstance(tool.get("description"), str):
        function["description"] = tool["description"]
    return {"type": "function", "function": function}


def _apply_tool_choice(chat: dict[str, Any], choice: Any) -> None:
    kind = choice.get("type") if isinstance(choice, Mapping) else None
    if kind == "auto":
        chat["tool_choice"] = "auto"
    elif kind == "any":
        chat["tool_choice"] = "required"
    elif kind == "none":
        chat["tool_choice"] = "none"
    elif kind == "tool" and isinstance(choice.get("name"), str):
        chat["tool_choice"] = {"type": "function", "function": {"name": choice["name"]}}
    else:
        raise ValueError("tool_choice: type must be 'auto', 'any', 'none', or 'tool' with a name")
    if choice.get("disable_parallel_tool_use") is True and chat.get("tools"):
        chat["parallel_tool_calls"] = False


# -- answers ------------------------------------------------------------------------------------


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
        "output_tokens_details": ({"thinking_tokens": usage.reasoning_tokens}
                                  if usage.reasoning_tokens else None),
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
    reply = choice.get("message") if isinstance(choice.get("message"), Mapping) else {}
    msg_id = message_id(chat.get("id"))
    content: list[dict[str, Any]] = []
    text = _text_of(reply.get("content")) or _text_of(reply.get("refusal"))
    if text:
        content.append({"type": "text", "text": text, "citations": None})
    calls = reply.get("tool_calls") if isinstance(reply.get("tool_calls"), list) else []
    for i, call in enumerate(calls):
        function = call.get("function") if isinstance(call, Mapping) else None
        if not isinstance(function, Mapping):
            continue
        content.append({
            "type": "tool_use",
            "id": tool_id(call.get("id"), f"toolu_{msg_id[4:]}_{i}"),
            "name": str(function.get("name") or "unknown"),
            "input": parse_arguments(function.get("arguments")),
            "caller": {"type": "direct"},
        })
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


__all__ = [
    "ERROR_TYPES", "IGNORED_FIELDS", "STOP_REASONS", "anthropic_usage", "chat_to_message", "error_body",
    "error_type", "message_id", "messages_to_chat", "openai_error_to_anthropic", "openai_usage",
    "parse_arguments", "stop_details", "stop_reason", "tool_id",
]
