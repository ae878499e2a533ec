"""Chat completions answers as Responses API objects (pure): the `Response`, its items, its usage.

Shared by whole answers and by the stream encoder, so a streamed `response.completed` and a
non-streamed answer carry the same object. Fields whose schema allows no null (OpenAI's own examples
send `"usage": null` in `response.created`, which the `Response` schema does not allow) are left out
rather than sent null.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Mapping
from typing import Any

import orjson

from sluicegate.inbound.responses_request import CUSTOM_INPUT
from sluicegate.metering.usage import Usage, usage_from_mapping

_ECHOED = ("instructions", "max_output_tokens", "previous_response_id")


def new_id(prefix: str) -> str:
    """An id like OpenAI's (`resp_…`, `msg_…`, `fc_…`): 96 random bits, hex."""
    return f"{prefix}_{secrets.token_hex(12)}"


def responses_usage(usage: Usage | None) -> dict[str, Any] | None:
    if usage is None:
        return None
    return {
        "input_tokens": usage.prompt_tokens,
        "input_tokens_details": {"cached_tokens": usage.cached_tokens, "cache_write_tokens": 0},
        "output_tokens": usage.completion_tokens,
        "output_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
        "total_tokens": usage.total_tokens,
    }


def response_object(
    request: Mapping[str, Any],
    *,
    response_id: str,
    model: str,
    created_at: int,
    status: str,
    output: list[dict[str, Any]],
    usage: Usage | None = None,
    error: dict[str, Any] | None = None,
    incomplete: str | None = None,
) -> dict[str, Any]:
    """The `Response` as the client asked for it: its settings echoed, its output and usage."""
    obj: dict[str, Any] = {
        "id": response_id,
        "object": "response",
        "created_at": created_at,
        "status": status,
        "error": error,
        "incomplete_details": {"reason": incomplete} if incomplete else None,
        "model": model,
        "output": output,
        "parallel_tool_calls": request.get("parallel_tool_calls") is not False,
        "store": request.get("store") is not False,
        "temperature": request.get("temperature") if request.get("temperature") is not None else 1.0,
        "top_p": request.get("top_p") if request.get("top_p") is not None else 1.0,
        "text": request.get("text")
        if isinstance(request.get("text"), Mapping)
        else {"format": {"type": "text"}},
        "tool_choice": request.get("tool_choice") if request.get("tool_choice") is not None else "auto",
        "tools": request.get("tools") if isinstance(request.get("tools"), list) else [],
        "truncation": "disabled",
        "metadata": request.get("metadata") if isinstance(request.get("metadata"), Mapping) else {},
    }
    for key in _ECHOED:
        obj[key] = request.get(key)
    if isinstance(request.get("user"), str):  # a string or absent: the schema allows no null
        obj["user"] = request["user"]
    reasoning = request.get("reasoning")
    if isinstance(reasoning, Mapping):
        obj["reasoning"] = {"effort": reasoning.get("effort"), "summary": reasoning.get("summary")}
    if status == "completed":
        obj["completed_at"] = int(time.time())
    shaped = responses_usage(usage)
    if shaped is not None:
        obj["usage"] = shaped
    return obj


def message_item(item_id: str, text: str, status: str = "completed") -> dict[str, Any]:
    content = (
        [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}]
        if status == "completed"
        else []
    )
    return {"type": "message", "id": item_id, "status": status, "role": "assistant", "content": content}


def reasoning_item(item_id: str, text: str | None) -> dict[str, Any]:
    summary = [{"type": "summary_text", "text": text}] if text is not None else []
    return {"type": "reasoning", "id": item_id, "summary": summary}


def call_item(
    item_id: str, call_id: str, name: str, arguments: str, custom: frozenset[str], status: str = "completed"
) -> dict[str, Any]:
    """A chat tool call as a `function_call` item, or a `custom_tool_call` for a custom tool."""
    if name in custom:
        return {
            "type": "custom_tool_call",
            "id": item_id,
            "call_id": call_id,
            "name": name,
            "input": custom_input(arguments) if status == "completed" else "",
        }
    return {
        "type": "function_call",
        "id": item_id,
        "call_id": call_id,
        "name": name,
        "arguments": arguments,
        "status": status,
    }


def custom_input(arguments: str) -> str:
    """The free-form input of a custom tool called as a function (`{"input": ...}`), or the raw text."""
    try:
        args = orjson.loads(arguments)
    except orjson.JSONDecodeError:
        return arguments
    if isinstance(args, Mapping) and isinstance(args.get(CUSTOM_INPUT), str):
        return str(args[CUSTOM_INPUT])
    return arguments


def incomplete_reason(finish_reason: Any) -> str | None:
    if finish_reason == "length":
        return "max_output_tokens"
    if finish_reason == "content_filter":
        return "content_filter"
    return None


def chat_to_response(
    chat: Mapping[str, Any], request: Mapping[str, Any], model: str, custom: frozenset[str], response_id: str
) -> dict[str, Any]:
    """A whole `chat.completion` as a `Response`."""
    choices = chat.get("choices")
    choice: Mapping[str, Any] = (
        choices[0] if isinstance(choices, list) and choices and isinstance(choices[0], Mapping) else {}
    )
    found = choice.get("message")
    message: Mapping[str, Any] = found if isinstance(found, Mapping) else {}
    output: list[dict[str, Any]] = []
    thought = message.get("reasoning_content") or message.get("reasoning")
    if isinstance(thought, str) and thought:
        output.append(reasoning_item(new_id("rs"), thought))
    content = message.get("content")
    if isinstance(content, str) and content:
        output.append(message_item(new_id("msg"), content))
    for call in message.get("tool_calls") or []:
        fn = call.get("function") if isinstance(call, Mapping) else None
        if isinstance(fn, Mapping):
            output.append(
                call_item(
                    new_id("fc"),
                    str(call.get("id") or new_id("call")),
                    str(fn.get("name") or ""),
                    str(fn.get("arguments") or ""),
                    custom,
                )
            )
    usage = chat.get("usage")
    reason = incomplete_reason(choice.get("finish_reason"))
    created = chat.get("created")
    return response_object(
        request,
        response_id=response_id,
        model=model,
        created_at=created if isinstance(created, int) else int(time.time()),
        status="incomplete" if reason else "completed",
        output=output,
        usage=usage_from_mapping(usage) if isinstance(usage, Mapping) else None,
        incomplete=reason,
    )
