"""An OpenAI chat.completion stream, relayed as Anthropic's Messages stream, event by event.

The shell feeds each upstream SSE `data:` payload to `ChatToMessageStream.feed` and writes out what
it returns, at once: nothing is held back except what Anthropic's protocol cannot say yet. Two
things differ in shape, not only in names:

- Anthropic frames content in blocks (`content_block_start` / `_delta` / `_stop`, one open at a
  time), OpenAI in flat deltas. A text delta opens a text block; a tool call's first piece opens a
  `tool_use` block, and its argument pieces become `input_json_delta`s.
- Anthropic ends with `message_delta` (stop reason, usage) and `message_stop`; OpenAI sends its
  finish_reason, then usage in a last `choices: []` chunk, then `[DONE]`. So the stop reason is
  kept until `[DONE]` (or `finish()`), when usage is known, and only then is the end written.

`message_start` must carry usage too, before any is known: it says 0 input tokens (or the shell's
estimate), and the final `message_delta` gives the real figures, which the SDKs take as final. When
the upstream reports no usage at all, `estimate` (the gateway's own count) fills the message_delta.

The upstream's reasoning (`delta.reasoning_content`, or `delta.reasoning`) becomes a `thinking`
block when the client asked for thinking: `thinking_delta`s, then, as Anthropic does before the
block stops, a `signature_delta` with the gateway's signature (see `anthropic_answer`).

A stream that ends with neither `[DONE]` nor a finish_reason did not complete: `finish()` then
sends Anthropic's `error` event, never an invented `end_turn`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import orjson

from sluicegate.metering.usage import Usage, usage_from_mapping
from sluicegate.providers.anthropic_answer import (
    anthropic_usage,
    matched_stop,
    message_id,
    reasoning_text,
    stop_details,
    stop_reason,
    thinking_signature,
    tool_id,
)
from sluicegate.providers.anthropic_errors import error_body

_DONE = b"[DONE]"
INCOMPLETE_MESSAGE = (
    "The upstream ended the stream before the answer was complete (upstream_stream_incomplete)."
)


def sse_event(name: str, payload: Mapping[str, Any]) -> bytes:
    """One Anthropic SSE frame: `event: NAME`, one `data:` line of JSON, a blank line."""
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(payload) + b"\n\n"


def error_event(message: str, type_: str = "api_error", request_id: str | None = None) -> bytes:
    """The in-band error Anthropic sends when a stream fails after it began (the SDKs raise it)."""
    return b"event: error\ndata: " + error_body(500, message, type_, request_id=request_id) + b"\n\n"


class _ToolCall:
    """One OpenAI tool call (by its `index`) on its way to becoming a `tool_use` block."""

    __slots__ = ("block", "call_id", "name", "pending")

    def __init__(self) -> None:
        self.block: int | None = None  # Anthropic block index once started
        self.call_id: str | None = None
        self.name: str | None = None
        self.pending: list[str] = []  # argument pieces that came before the name


class ChatToMessageStream:
    """Translates one OpenAI chat.completion stream into one Anthropic Messages stream.

    One instance per request, fed from one task. `feed` and `finish` return the bytes to send
    (possibly b""). After the end (at `[DONE]`, an in-band upstream error, or `finish`) every call
    returns b"". `usage` is the upstream's own report, for metering; None if it sent none.
    """

    __slots__ = (
        "_blocks",
        "_calls",
        "_estimate",
        "_finish_reason",
        "_id",
        "_input_hint",
        "_matched_stop",
        "_model",
        "_open",
        "_open_kind",
        "_request_id",
        "_signing",
        "_started",
        "_stops",
        "_tail",
        "_tail_len",
        "_thinking",
        "ended",
        "usage",
    )

    def __init__(
        self,
        model: str,
        message_id: str | None = None,
        *,
        input_tokens: int = 0,
        thinking: str = "drop",
        stop_sequences: Sequence[str] = (),
        estimate: Callable[[], Usage | None] | None = None,
        request_id: str | None = None,
    ) -> None:
        """`model` is the name the client asked for; `message_id` defaults to one derived from the
        upstream's chunk id; `input_tokens` is what message_start reports before the real count;
        `thinking` is `anthropic.thinking_mode` of the request; `stop_sequences` the request's;
        `estimate` gives the gateway's own count if the upstream reports no usage."""
        self._model = model
        self._id = message_id
        self._input_hint = input_tokens
        self._thinking = thinking
        self._stops = tuple(stop_sequences)
        self._tail_len = max((len(s) for s in self._stops), default=0)
        self._tail = ""  # the last characters of the text, to see a stop sequence it ends with
        self._estimate = estimate
        self._request_id = request_id
        self._started = False
        self._blocks = 0  # blocks started so far: the next block's index
        self._open: int | None = None  # index of the open block
        self._open_kind: str | None = None  # its type
        self._signing: Any = None  # sha256 of the open thinking block's text
        self._calls: dict[int, _ToolCall] = {}
        self._finish_reason: str | None = None
        self._matched_stop: str | None = None
        self.ended = False
        self.usage: Usage | None = None

    # -- input ------------------------------------------------------------------------------

    def feed(self, data: bytes) -> bytes:
        """Translate one upstream `data:` payload (a JSON chunk or `[DONE]`)."""
        if self.ended:
            return b""
        if data.strip() == _DONE:
            return self._end()
        try:
            chunk = orjson.loads(data)
        except orjson.JSONDecodeError:
            return b""  # not an event of the chat protocol: nothing to say about it
        if not isinstance(chunk, dict):
            return b""
        if "error" in chunk and "choices" not in chunk:
            error = chunk["error"]
            message = error.get("message") if isinstance(error, Mapping) else error
            return self.finish(str(message or "the upstream stream failed"))
        out = self._start(chunk)
        usage = chunk.get("usage")
        if isinstance(usage, Mapping):
            self.usage = usage_from_mapping(usage) or self.usage
        choices = chunk.get("choices")
        if isinstance(choices, list) and choices and isinstance(choices[0], Mapping):
            out += self._choice(choices[0])
        return out

    def finish(self, error: str | None = None, error_type: str = "api_error") -> bytes:
        """The end of the upstream stream: what is still owed, or Anthropic's error event.

        Call it when the upstream stream ends or fails. With `error`, the client gets an
        `event: error` (the SDKs raise it) and no message_stop. Without, a stream that got its
        finish_reason is closed as if `[DONE]` had come (some upstreams omit `[DONE]`); one that
        got neither is incomplete, and the client gets the error event (see `incomplete`).
        """
        if self.ended:
            return b""
        if error is None and self._finish_reason is None:
            error = INCOMPLETE_MESSAGE
        if error is not None:
            self.ended = True
            return error_event(error, error_type, request_id=self._request_id)
        return self._end()

    @property
    def incomplete(self) -> bool:
        """Whether the stream ended (or stands) without `[DONE]` or a finish_reason."""
        return self._finish_reason is None

    # -- output -----------------------------------------------------------------------------

    def _start(self, chunk: Mapping[str, Any] | None) -> bytes:
        if self._started:
            return b""
        self._started = True
        if self._id is None:
            self._id = message_id(chunk.get("id") if chunk else None)
        usage = anthropic_usage(Usage(prompt_tokens=self._input_hint))
        message: dict[str, Any] = {
            "id": self._id,
            "type": "message",
            "role": "assistant",
            "content": [],
            "model": self._model,
            "stop_reason": None,
            "stop_sequence": None,
            "stop_details": None,
            "container": None,
            "usage": usage,
        }
        return sse_event("message_start", {"type": "message_start", "message": message}) + sse_event(
            "ping", {"type": "ping"}
        )

    def _choice(self, choice: Mapping[str, Any]) -> bytes:
        out = b""
        delta = choice.get("delta")
        if isinstance(delta, Mapping):
            reasoning = reasoning_text(delta)
            if reasoning is not None and self._thinking != "drop":
                out += self._think(reasoning)
            text = delta.get("content")
            if not isinstance(text, str) or not text:
                text = delta.get("refusal")
            if isinstance(text, str) and text:
                out += self._text(text)
            calls = delta.get("tool_calls")
            if isinstance(calls, list):
                for position, call in enumerate(calls):
                    if isinstance(call, Mapping):
                        out += self._tool_piece(call, position)
        reason = choice.get("finish_reason")
        if isinstance(reason, str):
            self._finish_reason = reason
            # vLLM's choice-level stop_reason names the stop string that matched.
            self._matched_stop = matched_stop(reason, choice.get("stop_reason"), self._tail, self._stops)
            out += self._close()
        return out

    def _think(self, text: str) -> bytes:
        out = b""
        if self._open is None or self._open_kind != "thinking":
            out += self._close()
            out += self._open_block({"type": "thinking", "thinking": "", "signature": ""})
            self._signing = hashlib.sha256()
        if self._thinking == "omit":
            return out  # the block, its signature, and no text (`display: omitted`)
        self._signing.update(text.encode())
        return out + sse_event(
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": self._open,
                "delta": {"type": "thinking_delta", "thinking": text},
            },
        )

    def _text(self, text: str) -> bytes:
        out = b""
        if self._tail_len:
            self._tail = (self._tail + text)[-self._tail_len :]
        if self._open is None or self._open_kind != "text":
            out += self._close()
            out += self._open_block({"type": "text", "text": "", "citations": None})
        return out + sse_event(
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": self._open,
                "delta": {"type": "text_delta", "text": text},
            },
        )

    def _tool_piece(self, piece: Mapping[str, Any], position: int) -> bytes:
        index = piece.get("index")
        key = index if isinstance(index, int) else position  # a few servers omit the index
        call = self._calls.get(key)
        if call is None:
            call = self._calls[key] = _ToolCall()
        if call.call_id is None and isinstance(piece.get("id"), str) and piece["id"]:
            call.call_id = piece["id"]
        raw_function = piece.get("function")
        function: Mapping[str, Any] = raw_function if isinstance(raw_function, Mapping) else {}
        if call.name is None and isinstance(function.get("name"), str) and function["name"]:
            call.name = function["name"]
        arguments = function.get("arguments")
        if isinstance(arguments, Mapping):  # a few servers send an object, not a JSON string
            arguments = orjson.dumps(arguments).decode()
        out = b""
        if call.block is None:
            if isinstance(arguments, str) and arguments:
                call.pending.append(arguments)
            if call.name is None:
                return b""  # a tool_use block cannot start without its name: wait for it
            out += self._start_tool(call, key)
            arguments = "".join(call.pending)
            call.pending.clear()
        if isinstance(arguments, str) and arguments:
            out += sse_event(
                "content_block_delta",
                {
                    "type": "content_block_delta",
                    "index": call.block,
                    "delta": {"type": "input_json_delta", "partial_json": arguments},
                },
            )
        return out

    def _start_tool(self, call: _ToolCall, key: int) -> bytes:
        out = self._close()
        block_id = tool_id(call.call_id, f"toolu_{(self._id or 'msg_')[4:]}_{key}")
        out += self._open_block(
            {
                "type": "tool_use",
                "id": block_id,
                "name": call.name or "unknown",
                "input": {},
                "caller": {"type": "direct"},
            }
        )
        call.block = self._open
        return out

    def _open_block(self, block: Mapping[str, Any]) -> bytes:
        self._open = self._blocks
        self._open_kind = block["type"]
        self._blocks += 1
        return sse_event(
            "content_block_start",
            {"type": "content_block_start", "index": self._open, "content_block": block},
        )

    def _close(self) -> bytes:
        if self._open is None:
            return b""
        index, self._open = self._open, None
        out = b""
        if self._open_kind == "thinking":
            # Anthropic ends every thinking block with its signature, just before the block stops.
            signature = thinking_signature(self._signing or hashlib.sha256())
            self._signing = None
            out = sse_event(
                "content_block_delta",
                {
                    "type": "content_block_delta",
                    "index": index,
                    "delta": {"type": "signature_delta", "signature": signature},
                },
            )
        self._open_kind = None
        return out + sse_event("content_block_stop", {"type": "content_block_stop", "index": index})

    def _end(self) -> bytes:
        out = self._start(None)
        for key, call in self._calls.items():
            if call.block is None:  # never got a name: still the client's tool call
                call.name = call.name or "unknown"
                pending = "".join(call.pending)
                call.pending.clear()
                out += self._start_tool(call, key)
                if pending:
                    out += sse_event(
                        "content_block_delta",
                        {
                            "type": "content_block_delta",
                            "index": call.block,
                            "delta": {"type": "input_json_delta", "partial_json": pending},
                        },
                    )
        out += self._close()
        self.ended = True
        reason = stop_reason(self._finish_reason, self._matched_stop, bool(self._calls))
        delta = {
            "stop_reason": reason,
            "stop_sequence": self._matched_stop if reason == "stop_sequence" else None,
            "stop_details": stop_details(reason),
            "container": None,
        }
        counted = self.usage
        if counted is None and self._estimate is not None:
            counted = self._estimate()
        usage = anthropic_usage(counted or Usage(prompt_tokens=self._input_hint), full=False)
        return (
            out
            + sse_event("message_delta", {"type": "message_delta", "delta": delta, "usage": usage})
            + sse_event("message_stop", {"type": "message_stop"})
        )


__all__ = ["ChatToMessageStream", "error_event", "sse_event"]
