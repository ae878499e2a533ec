"""Anthropic's Messages API in front of OpenAI-compatible upstreams: the entry point, and requests.

The gateway serves `POST /v1/messages` so that the official `anthropic` SDK and Claude-style clients
can use any upstream it routes to. Every upstream speaks OpenAI's Chat Completions, so a Messages
request is translated into a chat.completions request (here), a chat.completion back into a
`message` (`anthropic_answer`), a stream event by event (`anthropic_stream`), and errors into
Anthropic's body (`anthropic_errors`). The shell imports all but the stream from this module.
Everything is pure: dicts in, dicts (or bytes) out; `ValueError` for a request that cannot be
translated, which the shell answers with `error_body(400, str(exc))`.

Request fields with no OpenAI counterpart are dropped, not refused, so that clients which always
send them keep working: see `IGNORED_FIELDS`. Content the upstream could not be given faithfully
(server tools, PDFs by URL, Files API references) is refused, because a silently different
conversation is worse than a clear 400.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from sluicegate.providers.anthropic_answer import (
    STOP_REASONS,
    anthropic_usage,
    chat_to_message,
    message_id,
    openai_usage,
    parse_arguments,
    stop_details,
    stop_reason,
    tool_id,
)
from sluicegate.providers.anthropic_errors import (
    ERROR_TYPES,
    error_body,
    error_type,
    openai_error_to_anthropic,
)

# Accepted and dropped: they tune Anthropic-only machinery (prompt caching, server-side
# containers, tiers, context editing) that an OpenAI-compatible upstream has no switch for.
# `metadata` is dropped too: Claude Code's `user_id` is a JSON blob with a device id, which is no
# business of a third-party provider, and strict upstreams (Mistral) refuse OpenAI's `user`.
# `thinking` and `output_config` are read (reasoning effort, structured output) but not forwarded.
IGNORED_FIELDS = frozenset(
    {
        "top_k",
        "service_tier",
        "container",
        "inference_geo",
        "cache_control",
        "mcp_servers",
        "context_management",
        "metadata",
    }
)
# Fields the translation reads; any other top-level field is dropped (see `dropped_fields`).
_READ_FIELDS = frozenset(
    {
        "model",
        "messages",
        "system",
        "max_tokens",
        "temperature",
        "top_p",
        "stop_sequences",
        "stream",
        "tools",
        "tool_choice",
        "thinking",
        "output_config",
    }
)

# Anthropic's effort levels onto OpenAI's `reasoning_effort`, which stops at "high" on most
# upstreams that accept it (vLLM, Groq, Gemini, Ollama); "xhigh" and "max" ask for the most there is.
EFFORTS: Mapping[str, str] = {
    "low": "low",
    "medium": "medium",
    "high": "high",
    "xhigh": "high",
    "max": "high",
}
# A `thinking.budget_tokens` (extended thinking, the older control) as an effort: Anthropic's minimum
# budget is 1,024 tokens and Claude Code's usual ones are 4K-32K.
_BUDGET_EFFORTS = ((4096, "low"), (16384, "medium"))

# Block types in a conversation that carry no meaning for another model: Claude's own reasoning,
# which only Claude can verify (signatures) and which Anthropic itself strips from earlier turns.
# (A thinking block's text does go back as `reasoning_content` on a tool-call turn: see below.)
_DROPPED_BLOCKS = frozenset({"thinking", "redacted_thinking"})


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

    chat: dict[str, Any] = {
        "model": model,
        "messages": _chat_messages(body.get("system"), messages),
        "max_tokens": max_tokens,
    }
    effort = reasoning_effort(body)
    if effort is not None:
        chat["reasoning_effort"] = effort
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
        if not tools:
            # OpenAI refuses a tool_choice without tools; Anthropic's meaning is "no tools" anyway.
            del chat["tool_choice"]
    output_config = body.get("output_config")
    output_format = output_config.get("format") if isinstance(output_config, Mapping) else None
    if isinstance(output_format, Mapping) and output_format.get("type") == "json_schema":
        chat["response_format"] = {
            "type": "json_schema",
            "json_schema": {"name": "output", "schema": output_format.get("schema") or {}, "strict": True},
        }
    return chat


def thinking_mode(body: Mapping[str, Any]) -> str:
    """How the client wants the upstream's reasoning back: "show", "omit" or "drop".

    Anthropic returns thinking blocks only when thinking is on (`enabled` or `adaptive`);
    `display: omitted` asks for the blocks without their text. A client that did not ask for
    thinking gets none, so a reasoning upstream never surprises an older client with new blocks.
    """
    thinking = body.get("thinking")
    if not isinstance(thinking, Mapping) or thinking.get("type") not in ("enabled", "adaptive"):
        return "drop"
    return "omit" if thinking.get("display") == "omitted" else "show"


def reasoning_effort(body: Mapping[str, Any]) -> str | None:
    """OpenAI's `reasoning_effort` for the request's `output_config.effort` or `thinking`, or None.

    An explicit effort wins; `thinking: enabled` with a budget maps the budget onto low/medium/high;
    `adaptive` without an effort, and `disabled`, leave the upstream's default (None): OpenAI-
    compatible upstreams have no portable "off" switch.
    """
    output_config = body.get("output_config")
    effort = output_config.get("effort") if isinstance(output_config, Mapping) else None
    if isinstance(effort, str) and effort in EFFORTS:
        return EFFORTS[effort]
    thinking = body.get("thinking")
    if isinstance(thinking, Mapping) and thinking.get("type") == "enabled":
        budget = thinking.get("budget_tokens")
        if isinstance(budget, int) and not isinstance(budget, bool):
            for limit, level in _BUDGET_EFFORTS:
                if budget < limit:
                    return level
            return "high"
    return None


def dropped_fields(body: Mapping[str, Any]) -> list[str]:
    """Top-level request fields the translation ignores, for a debug log line."""
    return sorted(k for k in body if k not in _READ_FIELDS)


def stop_sequences(body: Mapping[str, Any]) -> tuple[str, ...]:
    """The request's stop sequences (already validated by `messages_to_chat`)."""
    stops = body.get("stop_sequences")
    return tuple(s for s in stops if isinstance(s, str)) if isinstance(stops, list) else ()


def _list(value: Any, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise ValueError(f"{where}: must be a list")
    return value


def _system_text(system: Any, where: str = "system") -> str:
    if isinstance(system, str):
        return system
    parts = []
    for i, block in enumerate(_list(system, where)):
        if not isinstance(block, Mapping) or block.get("type") != "text":
            raise ValueError(f"{where}.{i}: only text blocks are supported in a system prompt")
        parts.append(str(block.get("text", "")))
    # Separate blocks are separate sections (clients split them for cache breakpoints).
    return "\n\n".join(parts)


def _chat_messages(system: Any, messages: list[Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    if system:
        out.append({"role": "system", "content": _system_text(system)})
    for i, message in enumerate(messages):
        if not isinstance(message, Mapping):
            raise ValueError(f"messages.{i}: must be an object")
        role = message.get("role")
        content = message.get("content")
        if role == "user":
            out.extend(_user_messages(content, i))
        elif role == "assistant":
            translated = _assistant_message(content, i)
            if translated is not None:
                out.append(translated)
        elif role == "system":
            # Mid-conversation system messages (beta `mid-conversation-system-2026-04-07`, which
            # Claude Code sends after the user turn): a chat system message in the same place.
            text = _system_text(content, f"messages.{i}.content")
            if text:
                out.append({"role": "system", "content": text})
        else:
            raise ValueError(f"messages.{i}.role: must be 'user', 'assistant' or 'system', not {role!r}")
    return out


def _blocks(content: Any, where: str) -> list[Mapping[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    blocks = _list(content, f"{where}.content")
    for j, block in enumerate(blocks):
        if not isinstance(block, Mapping) or not isinstance(block.get("type"), str):
            raise ValueError(f"{where}.content.{j}: must be a content block with a type")
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


def _document_parts(block: Mapping[str, Any], where: str) -> list[dict[str, Any]]:
    """A document block as OpenAI content parts: text stays text, a PDF becomes a `file` part."""
    raw_source = block.get("source")
    source: Mapping[str, Any] = raw_source if isinstance(raw_source, Mapping) else {}
    kind = source.get("type")
    title = block.get("title") if isinstance(block.get("title"), str) else None
    if kind == "text":
        text = str(source.get("data", ""))
        return [{"type": "text", "text": f"{title}\n\n{text}" if title else text}]
    if kind == "content":
        inner = source.get("content")
        if isinstance(inner, str):
            return [{"type": "text", "text": inner}]
        parts: list[dict[str, Any]] = []
        for k, part in enumerate(_blocks(inner, f"{where}.source")):
            if part["type"] == "text":
                parts.append({"type": "text", "text": str(part.get("text", ""))})
            elif part["type"] == "image":
                parts.append(_image_part(part, f"{where}.source.content.{k}"))
            else:
                raise ValueError(f"{where}.source.content.{k}: {part['type']!r} blocks are not supported")
        return parts
    if kind == "base64" and source.get("media_type", "application/pdf") == "application/pdf":
        return [
            {
                "type": "file",
                "file": {
                    "filename": title or "document.pdf",
                    "file_data": f"data:application/pdf;base64,{source.get('data', '')}",
                },
            }
        ]
    raise ValueError(
        f"{where}.source: document source {kind!r} is not supported (use base64, text or content)"
    )


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
                raise ValueError(
                    f"{where}.content.{k}: {part['type']!r} blocks are not supported in tool results"
                )
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
        elif kind == "document":
            parts.extend(_document_parts(block, at))
        elif kind == "tool_result":
            call_id = tool_id(block.get("tool_use_id"), "")
            if not call_id:
                raise ValueError(f"{at}.tool_use_id: required")
            tools.append(
                {"role": "tool", "tool_call_id": call_id, "content": _tool_result_text(block, at, parts)}
            )
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
    thoughts: list[str] = []
    for j, block in enumerate(_blocks(content, where)):
        kind = block["type"]
        if kind == "text":
            texts.append(str(block.get("text", "")))
        elif kind == "thinking":
            thought = block.get("thinking")
            if isinstance(thought, str) and thought:
                thoughts.append(thought)
        elif kind == "tool_use":
            name = block.get("name")
            if not isinstance(name, str) or not name:
                raise ValueError(f"{where}.content.{j}.name: required")
            arguments = orjson.dumps(block.get("input") or {}).decode()
            calls.append(
                {
                    "id": tool_id(block.get("id"), f"toolu_{i}_{j}"),
                    "type": "function",
                    "function": {"name": name, "arguments": arguments},
                }
            )
        elif kind in _DROPPED_BLOCKS:
            continue
        else:
            raise ValueError(f"{where}.content.{j}: {kind!r} blocks are not supported by this gateway")
    if not texts and not calls:
        return None  # only thinking: nothing another model can use
    message: dict[str, Any] = {"role": "assistant", "content": "".join(texts) if texts else None}
    if calls:
        message["tool_calls"] = calls
        if thoughts:
            # DeepSeek's thinking mode refuses (400) a tool-call turn whose reasoning is not passed
            # back, and Kimi's thinking models want it too; upstreams without `reasoning_history`
            # get it removed per attempt (providers/chat_fit.py). Turns without tool calls never
            # carry it: the older deepseek-reasoner refuses reasoning_content in input.
            message["reasoning_content"] = "".join(thoughts)
    return message


def _chat_tool(tool: Any, i: int) -> dict[str, Any]:
    if not isinstance(tool, Mapping):
        raise ValueError(f"tools.{i}: must be an object")
    kind = tool.get("type")
    if kind not in (None, "custom"):
        # Server tools (web_search_..., bash_..., text_editor_...) run inside Anthropic's API.
        raise ValueError(f"tools.{i}: Anthropic server tool {kind!r} is not supported by this gateway")
    name = tool.get("name")
    if not isinstance(name, str) or not name:
        raise ValueError(f"tools.{i}.name: required")
    function: dict[str, Any] = {"name": name, "parameters": tool.get("input_schema") or {"type": "object"}}
    if isinstance(tool.get("description"), str):
        function["description"] = tool["description"]
    if tool.get("strict") is True:
        function["strict"] = True
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


__all__ = [
    "EFFORTS",
    "ERROR_TYPES",
    "IGNORED_FIELDS",
    "STOP_REASONS",
    "anthropic_usage",
    "chat_to_message",
    "dropped_fields",
    "error_body",
    "error_type",
    "message_id",
    "messages_to_chat",
    "openai_error_to_anthropic",
    "openai_usage",
    "parse_arguments",
    "reasoning_effort",
    "stop_details",
    "stop_reason",
    "stop_sequences",
    "thinking_mode",
    "tool_id",
]
