"""A cached whole answer replayed as a stream in the client's own protocol.

Chat Completions: a role chunk, the content (and tool calls) per choice, the finish chunk, a usage
chunk when the client asked for one (`stream_options.include_usage`), then `[DONE]`. Responses: the
lifecycle events from `response.created` to `response.completed`. Anthropic Messages: `message_start`
to `message_stop`. Each is what an SDK's stream reader expects, so a streamed request is served from
an answer that was fetched whole, and the other way round (cache/assemble.py).
"""

from __future__ import annotations

from typing import Any

import orjson

DONE = b"data: [DONE]\n\n"


def _data(payload: Any) -> bytes:
    return b"data: " + orjson.dumps(payload) + b"\n\n"


def _event(name: str, payload: dict[str, Any]) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(payload) + b"\n\n"


def chat_stream(answer: dict[str, Any], include_usage: bool) -> bytes:
    """A `chat.completion` as `chat.completion.chunk` events."""
    head = {
        "id": answer.get("id", ""),
        "object": "chat.completion.chunk",
        "created": answer.get("created", 0),
        "model": answer.get("model", ""),
    }
    if answer.get("system_fingerprint") is not None:
        head["system_fingerprint"] = answer["system_fingerprint"]
    extra: dict[str, Any] = {"usage": None} if include_usage else {}
    out: list[bytes] = []

    def chunk(index: int, delta: dict[str, Any], finish: str | None = None) -> None:
        out.append(
            _data({**head, "choices": [{"index": index, "delta": delta, "finish_reason": finish}], **extra})
        )

    for choice in answer.get("choices") or ():
        index = choice.get("index", 0)
        message = choice.get("message") or {}
        chunk(index, {"role": message.get("role", "assistant"), "content": ""})
        for field in ("reasoning_content", "refusal"):
            if message.get(field):
                chunk(index, {field: message[field]})
        if message.get("content"):
            chunk(index, {"content": message["content"]})
        for position, call in enumerate(message.get("tool_calls") or ()):
            fn = call.get("function") or {}
            chunk(
                index,
                {
                    "tool_calls": [
                        {
                            "index": position,
                            "id": call.get("id"),
                            "type": call.get("type", "function"),
                            "function": {"name": fn.get("name", ""), "arguments": fn.get("arguments", "")},
                        }
                    ]
                },
            )
        chunk(index, {}, choice.get("finish_reason") or "stop")
    if include_usage and answer.get("usage") is not None:
        out.append(_data({**head, "choices": [], "usage": answer["usage"]}))
    out.append(DONE)
    return b"".join(out)


def responses_stream(response: dict[str, Any]) -> bytes:
    """A Response object as the Responses API's streaming events."""
    seq = 0
    out: list[bytes] = []

    def event(kind: str, fields: dict[str, Any]) -> None:
        nonlocal seq
        out.append(_event(kind, {"type": kind, **fields, "sequence_number": seq}))
        seq += 1

    pending = {**response, "status": "in_progress", "output": [], "usage": None}
    event("response.created", {"response": pending})
    event("response.in_progress", {"response": pending})
    for index, item in enumerate(response.get("output") or ()):
        kind = item.get("type")
        item_id = item.get("id", "")
        if kind == "message":
            event("response.output_item.added", {"output_index": index, "item": {**item, "content": []}})
            for part_index, part in enumerate(item.get("content") or ()):
                where = {"item_id": item_id, "output_index": index, "content_index": part_index}
                if part.get("type") == "output_text":
                    event("response.content_part.added", {**where, "part": {**part, "text": ""}})
                    text = part.get("text", "")
                    event("response.output_text.delta", {**where, "delta": text, "logprobs": []})
                    event("response.output_text.done", {**where, "text": text, "logprobs": []})
                else:
                    event("response.content_part.added", {**where, "part": part})
                event("response.content_part.done", {**where, "part": part})
        elif kind == "function_call":
            event("response.output_item.added", {"output_index": index, "item": {**item, "arguments": ""}})
            where = {"item_id": item_id, "output_index": index}
            arguments = item.get("arguments", "")
            event("response.function_call_arguments.delta", {**where, "delta": arguments})
            event("response.function_call_arguments.done", {**where, "arguments": arguments})
        else:
            event("response.output_item.added", {"output_index": index, "item": item})
        event("response.output_item.done", {"output_index": index, "item": item})
    final = (
        "response.completed" if response.get("status", "completed") == "completed" else "response.incomplete"
    )
    event(final, {"response": response})
    return b"".join(out)


def messages_stream(message: dict[str, Any]) -> bytes:
    """An Anthropic message as Messages API streaming events."""
    usage = dict(message.get("usage") or {})
    out = [
        _event(
            "message_start",
            {
                "type": "message_start",
                "message": {
                    **message,
                    "content": [],
                    "stop_reason": None,
                    "stop_sequence": None,
                    "usage": {**usage, "output_tokens": 1 if usage.get("output_tokens") else 0},
                },
            },
        )
    ]
    for index, block in enumerate(message.get("content") or ()):
        kind = block.get("type")
        delta: dict[str, Any] | None = None
        if kind == "text":
            start = {**block, "text": ""}
            delta = {"type": "text_delta", "text": block.get("text", "")}
        elif kind == "tool_use":
            start = {**block, "input": {}}
            delta = {
                "type": "input_json_delta",
                "partial_json": orjson.dumps(block.get("input", {})).decode(),
            }
        elif kind == "thinking":
            start = {**block, "thinking": "", "signature": ""}
            delta = {"type": "thinking_delta", "thinking": block.get("thinking", "")}
        else:
            start = block
        out.append(
            _event(
                "content_block_start", {"type": "content_block_start", "index": index, "content_block": start}
            )
        )
        if delta is not None:
            out.append(
                _event("content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta})
            )
        if kind == "thinking" and block.get("signature"):
            signed = {"type": "signature_delta", "signature": block["signature"]}
            out.append(
                _event(
                    "content_block_delta", {"type": "content_block_delta", "index": index, "delta": signed}
                )
            )
        out.append(_event("content_block_stop", {"type": "content_block_stop", "index": index}))
    out.append(
        _event(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {
                    "stop_reason": message.get("stop_reason"),
                    "stop_sequence": message.get("stop_sequence"),
                },
                "usage": {"output_tokens": usage.get("output_tokens", 0)},
            },
        )
    )
    out.append(_event("message_stop", {"type": "message_stop"}))
    return b"".join(out)


def replay_stream(path: str, body: bytes, include_usage: bool) -> bytes:
    """The stream a client of `path` reads for this cached answer."""
    answer = orjson.loads(body)
    if path == "/v1/responses":
        return responses_stream(answer)
    if path == "/v1/messages":
        return messages_stream(answer)
    return chat_stream(answer, include_usage)
