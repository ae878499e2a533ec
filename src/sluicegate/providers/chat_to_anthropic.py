"""Canonical chat request → Anthropic Messages request: the native Anthropic adapter's outbound half.

The inverse of `providers/anthropic.py` (which turns a Messages request into chat for chat-only
upstreams). Chat is the canonical shape, so an OpenAI client (or the Responses codec, after its own
translation) reaches Claude through here. What chat cannot say is carried in the fields other
gateways use for it: `thinking_blocks` on assistant messages (thinking with its signature, as LiteLLM
names them) and `cache_control` on messages and content parts, passed on where Anthropic takes them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sluicegate.providers.anthropic_answer import parse_arguments, tool_id

# Anthropic requires max_tokens; chat does not. The default when a chat client names none.
DEFAULT_MAX_TOKENS = 4096

_EFFORT_BUDGET = {"minimal": 1024, "low": 2048, "medium": 8192, "high": 24576}


def chat_to_messages(chat: Mapping[str, Any], default_max_tokens: int = DEFAULT_MAX_TOKENS) -> dict[str, Any]:
    """A chat request as a Messages request (raises ValueError for what cannot be sent)."""
    messages = chat.get("messages")
    if not isinstance(messages, list) or not messages:
        raise ValueError("'messages' must be a non-empty list.")
    system: list[dict[str, Any]] = []
    out: list[dict[str, Any]] = []
    for i, msg in enumerate(messages):
        if not isinstance(msg, Mapping):
            raise ValueError(f"messages[{i}] must be an object.")
        role = msg.get("role")
        if role in ("system", "developer"):
            # Messages has one system prompt: chat's system messages, wherever they are, join it.
            system.extend(_text_blocks(msg.get("content"), msg))
        elif role == "user":
            _append(out, "user", _user_blocks(msg))
        elif role == "assistant":
            blocks = _assistant_blocks(msg)
            if blocks:
                _append(out, "assistant", blocks)
        elif role in ("tool", "function"):
            _append(out, "user", [_tool_result(msg)])
        else:
            raise ValueError(f"messages[{i}].role {role!r} is not supported.")
    body: dict[str, Any] = {
        "model": chat.get("model"),
        "messages": out,
        "max_tokens": _max_tokens(chat, default_max_tokens),
    }
    if system:
        body["system"] = system
    _options(chat, body)
    return body


def _max_tokens(chat: Mapping[str, Any], default: int) -> int:
    for key in ("max_completion_tokens", "max_tokens"):
        value = chat.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return default


def _options(chat: Mapping[str, Any], body: dict[str, Any]) -> None:
    for key in ("temperature", "top_p", "top_k"):
        if isinstance(chat.get(key), (int, float)):
            body[key] = chat[key]
    stop = chat.get("stop")
    if isinstance(stop, str):
        body["stop_sequences"] = [stop]
    elif isinstance(stop, list) and stop:
        body["stop_sequences"] = [s for s in stop if isinstance(s, str)]
    if chat.get("stream") is True:
        body["stream"] = True
    user = chat.get("user")
    if isinstance(user, str) and user:
        body["metadata"] = {"user_id": user}
    thinking = chat.get("thinking")
    if isinstance(thinking, Mapping):  # Anthropic's own field, as Claude-aware chat clients send it
        body["thinking"] = dict(thinking)
    elif isinstance(chat.get("reasoning_effort"), str) and chat["reasoning_effort"] in _EFFORT_BUDGET:
        budget = _EFFORT_BUDGET[chat["reasoning_effort"]]
        body["thinking"] = {"type": "enabled", "budget_tokens": budget}
        body["max_tokens"] = max(body["max_tokens"], budget + 1024)
    tools = chat.get("tools")
    if isinstance(tools, list) and tools:
        body["tools"] = [_tool(t) for t in tools if isinstance(t, Mapping)]
    choice = chat.get("tool_choice")
    if choice is not None and body.get("tools"):
        mapped = _tool_choice(choice, chat.get("parallel_tool_calls"))
        if mapped is None:
            body.pop("tools")
        else:
            body["tool_choice"] = mapped
    elif chat.get("parallel_tool_calls") is False and body.get("tools"):
        body["tool_choice"] = {"type": "auto", "disable_parallel_tool_use": True}


def _tool(tool: Mapping[str, Any]) -> dict[str, Any]:
    fn = tool.get("function")
    if tool.get("type") != "function" or not isinstance(fn, Mapping):
        raise ValueError("Only function tools can be sent to an Anthropic upstream.")
    out: dict[str, Any] = {
        "name": fn.get("name"),
        "input_schema": fn.get("parameters") or {"type": "object", "properties": {}},
    }
    if fn.get("description"):
        out["description"] = fn["description"]
    if isinstance(tool.get("cache_control"), Mapping):
        out["cache_control"] = tool["cache_control"]
    return out


def _tool_choice(choice: Any, parallel: Any) -> dict[str, Any] | None:
    extra = {"disable_parallel_tool_use": True} if parallel is False else {}
    if choice == "none":
        return None  # Anthropic's "none" exists, but dropping the tools says the same everywhere
    if choice == "required":
        return {"type": "any", **extra}
    if isinstance(choice, Mapping) and isinstance(choice.get("function"), Mapping):
        return {"type": "tool", "name": choice["function"].get("name"), **extra}
    return {"type": "auto", **extra}


def _append(out: list[dict[str, Any]], role: str, blocks: list[dict[str, Any]]) -> None:
    # Messages alternate roles; chat's consecutive tool results (one per call) are one user turn.
    if out and out[-1]["role"] == role:
        out[-1]["content"].extend(blocks)
    else:
        out.append({"role": role, "content": blocks})


def _cache(block: dict[str, Any], source: Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(source.get("cache_control"), Mapping):
        block["cache_control"] = source["cache_control"]
    return block


def _text_blocks(content: Any, msg: Mapping[str, Any]) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [_cache({"type": "text", "text": content}, msg)] if content else []
    blocks = []
    for part in content if isinstance(content, list) else []:
        if isinstance(part, Mapping) and isinstance(part.get("text"), str):
            blocks.append(_cache({"type": "text", "text": part["text"]}, part))
    return blocks


def _image(part: Mapping[str, Any]) -> dict[str, Any]:
    ref = part.get("image_url")
    url = ref.get("url") if isinstance(ref, Mapping) else ref
    if not isinstance(url, str):
        raise ValueError("image_url.url must be a string.")
    if url.startswith("data:"):
        head, _, data = url.partition(",")
        media_type = head[5:].split(";", 1)[0] or "image/png"
        return _cache(
            {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}}, part
        )
    return _cache({"type": "image", "source": {"type": "url", "url": url}}, part)


def _user_blocks(msg: Mapping[str, Any]) -> list[dict[str, Any]]:
    content = msg.get("content")
    if isinstance(content, str) or content is None:
        return _text_blocks(content or "", msg) or [{"type": "text", "text": ""}]
    blocks: list[dict[str, Any]] = []
    for part in content if isinstance(content, list) else []:
        if not isinstance(part, Mapping):
            continue
        if part.get("type") == "text":
            blocks.append(_cache({"type": "text", "text": part.get("text") or ""}, part))
        elif part.get("type") == "image_url":
            blocks.append(_image(part))
        else:
            raise ValueError(f"Content part {part.get('type')!r} cannot be sent to an Anthropic upstream.")
    return blocks


def _assistant_blocks(msg: Mapping[str, Any]) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    thinking = msg.get("thinking_blocks")
    if isinstance(thinking, list):
        # Claude verifies its own thinking by signature; blocks without one cannot be sent back.
        for block in thinking:
            if isinstance(block, Mapping) and block.get("type") == "thinking" and block.get("signature"):
                blocks.append(
                    {
                        "type": "thinking",
                        "thinking": block.get("thinking") or "",
                        "signature": block["signature"],
                    }
                )
            elif isinstance(block, Mapping) and block.get("type") == "redacted_thinking":
                blocks.append({"type": "redacted_thinking", "data": block.get("data") or ""})
    blocks.extend(_text_blocks(msg.get("content"), msg))
    calls = msg.get("tool_calls")
    for n, call in enumerate(calls if isinstance(calls, list) else []):
        fn = call.get("function") if isinstance(call, Mapping) else None
        if isinstance(fn, Mapping):
            blocks.append(
                {
                    "type": "tool_use",
                    "id": tool_id(call.get("id"), f"toolu_{n}"),
                    "name": fn.get("name") or "",
                    "input": parse_arguments(fn.get("arguments")),
                }
            )
    return blocks


def _tool_result(msg: Mapping[str, Any]) -> dict[str, Any]:
    content = msg.get("content")
    text = content if isinstance(content, str) else "".join(b["text"] for b in _text_blocks(content, msg))
    block: dict[str, Any] = {
        "type": "tool_result",
        "tool_use_id": tool_id(msg.get("tool_call_id"), "toolu_0"),
        "content": text,
    }
    return _cache(block, msg)
