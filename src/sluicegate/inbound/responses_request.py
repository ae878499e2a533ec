"""A Responses API request as a canonical chat completions request (pure).

Input items become chat messages in order: consecutive `function_call`/`custom_tool_call` items join one
assistant message's `tool_calls`, their outputs become `tool` messages. Custom (free-form) tools become
function tools with one string parameter `input`, since most chat-only upstreams know only functions;
the answer side turns such calls back into `custom_tool_call` items. Tools a chat upstream cannot run
(hosted ones such as `web_search`, and Codex's sub-agent `namespace` groups) are not offered to it.
Fields that only tune OpenAI's own machinery (`store`, `include`, `prompt_cache_key`, `metadata`,
`truncation`, `service_tier`, ...) are accepted and not sent on. Anything that would silently change the
conversation (an unknown item type, a file part) is refused with a 400 naming it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from sluicegate.protocol.errors import BadRequest

CUSTOM_INPUT = "input"  # the one parameter of a custom tool offered as a function
HOSTED_TOOLS = frozenset(
    {
        "web_search",
        "web_search_preview",
        "file_search",
        "code_interpreter",
        "image_generation",
        "computer_use_preview",
        "computer_use",
        "mcp",
        "local_shell",
        "shell",
        "apply_patch",
        "namespace",
        "tool_search",
    }
)
_TEXT_PARTS = frozenset({"input_text", "output_text", "text", "summary_text", "reasoning_text"})
# Items that carry nothing a chat upstream can use: reasoning is the model's own, and encrypted.
_DROPPED_ITEMS = frozenset({"reasoning", "compaction", "compaction_summary"})


def _bad(message: str, param: str) -> BadRequest:
    return BadRequest(message, param=param)


def _text(content: Any, where: str) -> str:
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise _bad(f"{where} must be a string or a list of content parts.", where)
    out = []
    for i, part in enumerate(content):
        kind = part.get("type") if isinstance(part, Mapping) else None
        if kind in _TEXT_PARTS:
            out.append(str(part.get("text") or ""))
        elif kind == "refusal":
            out.append(str(part.get("refusal") or ""))
        else:
            raise _bad(f"{where}[{i}] of type {kind!r} cannot be sent to this model's upstream.", where)
    return "".join(out)


def _user_content(content: Any, where: str) -> str | list[dict[str, Any]]:
    """User or system content: a string when it is only text (accepted everywhere), else chat parts."""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise _bad(f"{where} must be a string or a list of content parts.", where)
    parts: list[dict[str, Any]] = []
    only_text = True
    for i, part in enumerate(content):
        kind = part.get("type") if isinstance(part, Mapping) else None
        if kind in _TEXT_PARTS:
            parts.append({"type": "text", "text": str(part.get("text") or "")})
        elif kind == "input_image":
            url = part.get("image_url")
            if not isinstance(url, str):
                raise _bad(f"{where}[{i}]: only images given by image_url can be sent upstream.", where)
            image: dict[str, Any] = {"url": url}
            if part.get("detail") in ("low", "high", "auto"):
                image["detail"] = part["detail"]
            parts.append({"type": "image_url", "image_url": image})
            only_text = False
        else:
            raise _bad(f"{where}[{i}] of type {kind!r} cannot be sent to this model's upstream.", where)
    return "".join(p["text"] for p in parts) if only_text else parts


def _output_text(output: Any) -> str:
    """A tool's output: a string, or content parts of which the text is kept."""
    if isinstance(output, str):
        return output
    if isinstance(output, list):
        return "".join(
            str(p.get("text") or "")
            for p in output
            if isinstance(p, Mapping) and p.get("type") in _TEXT_PARTS
        )
    return orjson.dumps(output).decode() if output is not None else ""


def input_messages(items: Any) -> list[dict[str, Any]]:
    """`input` (a string or a list of items) as chat messages."""
    if isinstance(items, str):
        return [{"role": "user", "content": items}]
    if not isinstance(items, list):
        raise _bad("'input' must be a string or a list of input items.", "input")
    messages: list[dict[str, Any]] = []
    for i, item in enumerate(items):
        where = f"input[{i}]"
        if not isinstance(item, Mapping):
            raise _bad(f"{where} must be an object.", "input")
        kind = item.get("type") or ("message" if "role" in item else None)
        if kind == "message":
            role = item.get("role")
            if role == "assistant":
                messages.append(
                    {"role": "assistant", "content": _text(item.get("content"), where + ".content")}
                )
            elif role in ("user", "system", "developer"):
                # `developer` is OpenAI's newer name for system; most chat upstreams know only `system`.
                content = _user_content(item.get("content"), where + ".content")
                messages.append({"role": "user" if role == "user" else "system", "content": content})
            else:
                raise _bad(f"{where}.role must be user, assistant, system or developer.", "input")
        elif kind in ("function_call", "custom_tool_call"):
            args = (
                item.get("arguments")
                if kind == "function_call"
                else orjson.dumps({CUSTOM_INPUT: item.get("input") or ""}).decode()
            )
            call = {
                "id": str(item.get("call_id") or item.get("id") or f"call_{i}"),
                "type": "function",
                "function": {
                    "name": str(item.get("name") or ""),
                    "arguments": args if isinstance(args, str) else "{}",
                },
            }
            last = messages[-1] if messages else None
            if (
                last is not None
                and last["role"] == "assistant"
                and (last.get("tool_calls") or not last.get("content"))
            ):
                last.setdefault("tool_calls", []).append(call)
            else:
                messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
        elif kind in ("function_call_output", "custom_tool_call_output"):
            messages.append(
                {
                    "role": "tool",
                    "tool_call_id": str(item.get("call_id") or ""),
                    "content": _output_text(item.get("output")),
                }
            )
        elif kind in _DROPPED_ITEMS:
            continue
        else:
            raise _bad(f"{where} of type {kind!r} cannot be sent to this model's upstream.", "input")
    return messages


def chat_tools(tools: Any) -> tuple[list[dict[str, Any]], frozenset[str]]:
    """Function and custom tools as chat functions; also the names of the custom ones."""
    if tools is None:
        return [], frozenset()
    if not isinstance(tools, list):
        raise _bad("'tools' must be a list.", "tools")
    out: list[dict[str, Any]] = []
    custom: set[str] = set()
    for i, tool in enumerate(tools):
        kind = tool.get("type") if isinstance(tool, Mapping) else None
        if kind == "function":
            fn: dict[str, Any] = {
                "name": tool.get("name"),
                "parameters": tool.get("parameters") or {"type": "object", "properties": {}},
            }
            if tool.get("description"):
                fn["description"] = tool["description"]
            if tool.get("strict") is not None:
                fn["strict"] = tool["strict"]
            out.append({"type": "function", "function": fn})
        elif kind == "custom":
            name = str(tool.get("name") or "")
            custom.add(name)
            description = str(tool.get("description") or "")
            fmt = tool.get("format")
            if isinstance(fmt, Mapping) and fmt.get("type") == "grammar" and fmt.get("definition"):
                description += f"\n\nThe `{CUSTOM_INPUT}` must follow this {fmt.get('syntax', '')} grammar:\n{fmt['definition']}"
            out.append(
                {
                    "type": "function",
                    "function": {
                        "name": name,
                        "description": description.strip(),
                        "parameters": {
                            "type": "object",
                            "properties": {
                                CUSTOM_INPUT: {"type": "string", "description": "the tool's free-form input"}
                            },
                            "required": [CUSTOM_INPUT],
                        },
                    },
                }
            )
        elif kind in HOSTED_TOOLS:
            continue
        else:
            raise _bad(f"tools[{i}] of type {kind!r} is not supported on this model's upstream.", "tools")
    return out, frozenset(custom)


def _tool_choice(choice: Any) -> Any:
    if choice is None or isinstance(choice, str):
        return choice
    if isinstance(choice, Mapping) and choice.get("type") in ("function", "custom") and choice.get("name"):
        return {"type": "function", "function": {"name": choice["name"]}}
    return "auto"  # allowed_tools, hosted tool choices: let the model choose among what it was given


def _response_format(text: Any) -> dict[str, Any] | None:
    fmt = text.get("format") if isinstance(text, Mapping) else None
    if not isinstance(fmt, Mapping):
        return None
    kind = fmt.get("type")
    if kind == "json_schema":
        schema: dict[str, Any] = {"name": fmt.get("name") or "response", "schema": fmt.get("schema") or {}}
        for key in ("strict", "description"):
            if fmt.get(key) is not None:
                schema[key] = fmt[key]
        return {"type": "json_schema", "json_schema": schema}
    if kind == "json_object":
        return {"type": "json_object"}
    return None


def responses_to_chat(body: Mapping[str, Any], model: str) -> tuple[dict[str, Any], frozenset[str]]:
    """The chat request for a Responses request, and the names of its custom tools (for the answer)."""
    if body.get("background") is True:
        raise _bad("Background responses are not supported by this gateway's upstream.", "background")
    messages: list[dict[str, Any]] = []
    instructions = body.get("instructions")
    if isinstance(instructions, str) and instructions:
        messages.append({"role": "system", "content": instructions})
    elif isinstance(instructions, list):
        messages.extend(input_messages(instructions))
    messages.extend(input_messages(body.get("input") if body.get("input") is not None else []))
    if not messages:
        raise _bad("'input' is empty: there is nothing to answer.", "input")
    chat: dict[str, Any] = {"model": model, "messages": messages}
    tools, custom = chat_tools(body.get("tools"))
    if tools:
        chat["tools"] = tools
        choice = _tool_choice(body.get("tool_choice"))
        if choice is not None:
            chat["tool_choice"] = choice
        if isinstance(body.get("parallel_tool_calls"), bool):
            chat["parallel_tool_calls"] = body["parallel_tool_calls"]
    fmt = _response_format(body.get("text"))
    if fmt is not None:
        chat["response_format"] = fmt
    if isinstance(body.get("max_output_tokens"), int):
        chat["max_tokens"] = body["max_output_tokens"]
    reasoning = body.get("reasoning")
    if isinstance(reasoning, Mapping) and isinstance(reasoning.get("effort"), str):
        chat["reasoning_effort"] = reasoning["effort"]
    for key in ("temperature", "top_p", "user"):
        if body.get(key) is not None:
            chat[key] = body[key]
    if body.get("stream") is True:
        chat["stream"] = True
    return chat, custom
