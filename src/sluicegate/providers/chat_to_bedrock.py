"""Canonical chat request → Bedrock Converse request (the native Bedrock adapter's outbound half).

Converse is Bedrock's one message API for every model family: system blocks, messages of content
blocks (text, image bytes, toolUse, toolResult, reasoningContent with its signature), an
`inferenceConfig` and a `toolConfig`. Thinking with signatures travels in chat as `thinking_blocks`,
as for the Anthropic adapter.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sluicegate.providers.anthropic_answer import parse_arguments
from sluicegate.providers.chat_pieces import texts

_IMAGE_FORMATS = {"image/png": "png", "image/jpeg": "jpeg", "image/gif": "gif", "image/webp": "webp"}


def chat_to_converse(chat: Mapping[str, Any]) -> dict[str, Any]:
    """A chat request as a Converse body (the model is in the URL); ValueError for what cannot be sent."""
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
            system.extend({"text": t} for t in texts(msg.get("content")))
        elif role == "user":
            _append(out, "user", _user_blocks(msg.get("content")))
        elif role == "assistant":
            blocks = _assistant_blocks(msg)
            if blocks:
                _append(out, "assistant", blocks)
        elif role in ("tool", "function"):
            result = {
                "toolUseId": str(msg.get("tool_call_id") or "tool"),
                "content": [{"text": "".join(texts(msg.get("content")))}],
            }
            _append(out, "user", [{"toolResult": result}])
        else:
            raise ValueError(f"messages[{i}].role {role!r} is not supported.")
    body: dict[str, Any] = {"messages": out}
    if system:
        body["system"] = system
    config: dict[str, Any] = {}
    for key in ("max_completion_tokens", "max_tokens"):
        if isinstance(chat.get(key), int) and not isinstance(chat.get(key), bool):
            config["maxTokens"] = chat[key]
            break
    for ours, theirs in (("temperature", "temperature"), ("top_p", "topP")):
        if isinstance(chat.get(ours), (int, float)) and not isinstance(chat.get(ours), bool):
            config[theirs] = chat[ours]
    stop = chat.get("stop")
    if isinstance(stop, (str, list)) and stop:
        config["stopSequences"] = [stop] if isinstance(stop, str) else [s for s in stop if isinstance(s, str)]
    if config:
        body["inferenceConfig"] = config
    if isinstance(chat.get("thinking"), Mapping):  # Claude on Bedrock: a model-specific field
        body["additionalModelRequestFields"] = {"thinking": dict(chat["thinking"])}
    tools = chat.get("tools")
    if isinstance(tools, list) and tools and chat.get("tool_choice") != "none":
        specs = []
        for tool in tools:
            fn = tool.get("function") if isinstance(tool, Mapping) else None
            if not isinstance(fn, Mapping):
                raise ValueError("Only function tools can be sent to a Bedrock upstream.")
            spec: dict[str, Any] = {
                "name": fn.get("name"),
                "inputSchema": {"json": fn.get("parameters") or {"type": "object"}},
            }
            if fn.get("description"):
                spec["description"] = fn["description"]
            specs.append({"toolSpec": spec})
        tool_config: dict[str, Any] = {"tools": specs}
        choice = chat.get("tool_choice")
        if choice == "required":
            tool_config["toolChoice"] = {"any": {}}
        elif isinstance(choice, Mapping) and isinstance(choice.get("function"), Mapping):
            tool_config["toolChoice"] = {"tool": {"name": choice["function"].get("name")}}
        body["toolConfig"] = tool_config
    return body


def _append(out: list[dict[str, Any]], role: str, blocks: list[dict[str, Any]]) -> None:
    if out and out[-1]["role"] == role:
        out[-1]["content"].extend(blocks)
    else:
        out.append({"role": role, "content": blocks})


def _user_blocks(content: Any) -> list[dict[str, Any]]:
    if isinstance(content, str) or content is None:
        return [{"text": content or ""}]
    blocks: list[dict[str, Any]] = []
    for part in content if isinstance(content, list) else []:
        if not isinstance(part, Mapping):
            continue
        if part.get("type") == "text":
            blocks.append({"text": part.get("text") or ""})
        elif part.get("type") == "image_url":
            ref = part.get("image_url")
            url = ref.get("url") if isinstance(ref, Mapping) else ref
            if not isinstance(url, str) or not url.startswith("data:"):
                raise ValueError("Bedrock takes images as data URLs only (no fetching of remote URLs).")
            head, _, data = url.partition(",")
            fmt = _IMAGE_FORMATS.get(head[5:].split(";", 1)[0], "png")
            blocks.append({"image": {"format": fmt, "source": {"bytes": data}}})
        else:
            raise ValueError(f"Content part {part.get('type')!r} cannot be sent to a Bedrock upstream.")
    return blocks or [{"text": ""}]


def _assistant_blocks(msg: Mapping[str, Any]) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    for block in msg.get("thinking_blocks") or ():
        if isinstance(block, Mapping) and block.get("type") == "thinking" and block.get("signature"):
            text = {"text": block.get("thinking") or "", "signature": block["signature"]}
            blocks.append({"reasoningContent": {"reasoningText": text}})
    blocks.extend({"text": t} for t in texts(msg.get("content")))
    for call in msg.get("tool_calls") or ():
        fn = call.get("function") if isinstance(call, Mapping) else None
        if isinstance(fn, Mapping):
            use = {
                "toolUseId": str(call.get("id") or "tool"),
                "name": fn.get("name") or "",
                "input": parse_arguments(fn.get("arguments")),
            }
            blocks.append({"toolUse": use})
    return blocks
