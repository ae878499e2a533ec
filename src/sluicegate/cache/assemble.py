"""A streamed answer, as the client received it, put back together as the whole answer.

The cache keeps whole answers only (cache/replay.py streams them again), so a stream that went out is
read back from its own bytes, in the client's protocol: chat chunks merged into a `chat.completion`,
the Responses API's `response.completed` (which carries the whole Response), Anthropic's events merged
into a message. A stream that carried an error, or did not end as its protocol says, gives None and
is not cached.
"""

from __future__ import annotations

from typing import Any

import orjson

from sluicegate.protocol.sse import SSEDecoder


def _events(raw: bytes) -> list[tuple[str | None, Any]]:
    decoder = SSEDecoder()
    found = decoder.feed(raw) + decoder.flush()
    out: list[tuple[str | None, Any]] = []
    for ev in found:
        if not ev.data:
            continue
        if ev.data == b"[DONE]":
            out.append(("[DONE]", None))
            continue
        try:
            out.append((ev.event.decode() if ev.event else None, orjson.loads(ev.data)))
        except orjson.JSONDecodeError:
            return []
    return out


def chat_answer(raw: bytes) -> dict[str, Any] | None:
    """`chat.completion.chunk` events merged into one `chat.completion` (None if incomplete)."""
    head: dict[str, Any] = {}
    choices: dict[int, dict[str, Any]] = {}
    usage: Any = None
    done = False
    for name, chunk in _events(raw):
        if name == "[DONE]":
            done = True
            continue
        if not isinstance(chunk, dict) or "error" in chunk:
            return None
        if not head:
            head = {k: chunk.get(k) for k in ("id", "created", "model", "system_fingerprint") if k in chunk}
        if chunk.get("usage"):
            usage = chunk["usage"]
        for c in chunk.get("choices") or ():
            index = c.get("index", 0)
            choice = choices.setdefault(
                index,
                {"index": index, "message": {"role": "assistant", "content": None}, "finish_reason": None},
            )
            message = choice["message"]
            delta = c.get("delta") or {}
            if delta.get("role"):
                message["role"] = delta["role"]
            for field in ("content", "reasoning_content", "refusal"):
                piece = delta.get(field)
                if piece:
                    message[field] = (message.get(field) or "") + piece
            for call in delta.get("tool_calls") or ():
                calls = message.setdefault("tool_calls", [])
                position = call.get("index", len(calls))
                while len(calls) <= position:
                    calls.append({"id": None, "type": "function", "function": {"name": "", "arguments": ""}})
                target = calls[position]
                if call.get("id"):
                    target["id"] = call["id"]
                fn = call.get("function") or {}
                if fn.get("name"):
                    target["function"]["name"] += fn["name"]
                if fn.get("arguments"):
                    target["function"]["arguments"] += fn["arguments"]
            if c.get("finish_reason"):
                choice["finish_reason"] = c["finish_reason"]
    if not done or not choices or any(c["finish_reason"] is None for c in choices.values()):
        return None
    answer: dict[str, Any] = {
        "id": head.get("id", ""),
        "object": "chat.completion",
        "created": head.get("created", 0),
        "model": head.get("model", ""),
        "choices": [choices[i] for i in sorted(choices)],
    }
    if head.get("system_fingerprint") is not None:
        answer["system_fingerprint"] = head["system_fingerprint"]
    if usage is not None:
        answer["usage"] = usage
    return answer


def responses_answer(raw: bytes) -> dict[str, Any] | None:
    """The Response of the stream's `response.completed` event."""
    for _name, event in _events(raw):
        if isinstance(event, dict) and event.get("type") == "response.completed":
            response = event.get("response")
            return response if isinstance(response, dict) else None
    return None


def messages_answer(raw: bytes) -> dict[str, Any] | None:
    """Anthropic stream events merged into one message (None without `message_stop`)."""
    message: dict[str, Any] | None = None
    blocks: dict[int, dict[str, Any]] = {}
    partial: dict[int, str] = {}
    stopped = False
    for _name, event in _events(raw):
        if not isinstance(event, dict):
            return None
        kind = event.get("type")
        if kind == "error":
            return None
        if kind == "message_start":
            message = dict(event.get("message") or {})
        elif kind == "content_block_start":
            blocks[event.get("index", len(blocks))] = dict(event.get("content_block") or {})
        elif kind == "content_block_delta":
            index = event.get("index", 0)
            block = blocks.setdefault(index, {"type": "text", "text": ""})
            delta = event.get("delta") or {}
            dtype = delta.get("type")
            if dtype == "text_delta":
                block["text"] = block.get("text", "") + delta.get("text", "")
            elif dtype == "input_json_delta":
                partial[index] = partial.get(index, "") + delta.get("partial_json", "")
            elif dtype == "thinking_delta":
                block["thinking"] = block.get("thinking", "") + delta.get("thinking", "")
            elif dtype == "signature_delta":
                block["signature"] = block.get("signature", "") + delta.get("signature", "")
        elif kind == "message_delta" and message is not None:
            message.update(event.get("delta") or {})
            message["usage"] = {**(message.get("usage") or {}), **(event.get("usage") or {})}
        elif kind == "message_stop":
            stopped = True
    if message is None or not stopped:
        return None
    for index, text in partial.items():
        try:
            blocks[index]["input"] = orjson.loads(text) if text else {}
        except orjson.JSONDecodeError:
            return None
    message["content"] = [blocks[i] for i in sorted(blocks)]
    return message


def whole_answer(path: str, raw: bytes) -> dict[str, Any] | None:
    """The whole answer a client of `path` would have got without `stream`."""
    if path == "/v1/responses":
        return responses_answer(raw)
    if path == "/v1/messages":
        return messages_answer(raw)
    return chat_answer(raw)
