"""Chat completion chunks as the Responses API's stream events (pure, one encoder per stream).

The order is OpenAI's: `response.created`, `response.in_progress`, then per output item
`output_item.added`, its parts and deltas, `…done`, `output_item.done`, and last `response.completed`
(or `response.incomplete` when the upstream stopped at the token limit) carrying the whole `Response`
and its usage. Every event has a `sequence_number`. Upstream `reasoning_content` becomes a reasoning
item whose text streams as a reasoning summary.

A stream is complete only when the upstream said so (a finish reason or `[DONE]`). One that ends
without either, or fails, ends with an `error` event and `response.failed`, never a `response.completed`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from sluicegate.inbound.responses_answer import (
    call_item,
    custom_input,
    incomplete_reason,
    message_item,
    new_id,
    reasoning_item,
    response_object,
)
from sluicegate.metering.usage import Usage, usage_from_mapping

_DONE = b"[DONE]"
INCOMPLETE = "upstream_stream_incomplete"


class _Call:
    __slots__ = ("args", "call_id", "item_id", "name", "output_index")

    def __init__(self, item_id: str, call_id: str, name: str, output_index: int) -> None:
        self.item_id, self.call_id, self.name, self.output_index = item_id, call_id, name, output_index
        self.args: list[str] = []


class ChatToResponsesStream:
    """Feed chat chunk payloads; get Responses SSE frames. `result` is the final Response once finished."""

    def __init__(
        self,
        request: Mapping[str, Any],
        model: str,
        custom: frozenset[str],
        response_id: str,
        created_at: int,
    ) -> None:
        self.request, self.model, self.custom = request, model, custom
        self.response_id, self.created_at = response_id, created_at
        self.result: dict[str, Any] | None = None  # the completed (or incomplete) Response
        self.incomplete = False  # finished before the upstream said it was done (no finish, no [DONE])
        self._ended = False
        self._seq = 0
        self._started = False
        self._output: list[dict[str, Any]] = []
        self._text: list[str] | None = None  # the open message's text
        self._text_item = ""
        self._thought: list[str] | None = None  # the open reasoning item's text
        self._thought_item = ""
        self._calls: dict[int, _Call] = {}
        self._open_calls: list[_Call] = []
        self._finish: Any = None
        self._done = False
        self._usage: Usage | None = None

    # -- frames ---------------------------------------------------------------------------------------

    def _event(self, kind: str, fields: dict[str, Any]) -> bytes:
        fields["type"] = kind
        fields["sequence_number"] = self._seq
        self._seq += 1
        return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps(fields) + b"\n\n"

    def _snapshot(self, status: str, **extra: Any) -> dict[str, Any]:
        return response_object(
            self.request,
            response_id=self.response_id,
            model=self.model,
            created_at=self.created_at,
            status=status,
            output=list(self._output),
            **extra,
        )

    def _start(self, out: list[bytes]) -> None:
        self._started = True
        out.append(self._event("response.created", {"response": self._snapshot("in_progress")}))
        out.append(self._event("response.in_progress", {"response": self._snapshot("in_progress")}))

    # -- items ----------------------------------------------------------------------------------------

    def _open_thought(self, out: list[bytes]) -> None:
        self._thought, self._thought_item = [], new_id("rs")
        index = len(self._output)
        self._output.append(reasoning_item(self._thought_item, None))
        out.append(
            self._event("response.output_item.added", {"output_index": index, "item": self._output[index]})
        )
        out.append(
            self._event(
                "response.reasoning_summary_part.added",
                {
                    **self._where(self._thought_item),
                    "summary_index": 0,
                    "part": {"type": "summary_text", "text": ""},
                },
            )
        )

    def _close_thought(self, out: list[bytes]) -> None:
        assert self._thought is not None
        text = "".join(self._thought)
        where = {**self._where(self._thought_item), "summary_index": 0}
        out.append(self._event("response.reasoning_summary_text.done", {**where, "text": text}))
        part = {"type": "summary_text", "text": text}
        out.append(self._event("response.reasoning_summary_part.done", {**where, "part": part}))
        index = where["output_index"]
        self._output[index] = reasoning_item(self._thought_item, text)
        out.append(
            self._event("response.output_item.done", {"output_index": index, "item": self._output[index]})
        )
        self._thought = None

    def _open_text(self, out: list[bytes]) -> None:
        self._text, self._text_item = [], new_id("msg")
        index = len(self._output)
        self._output.append(message_item(self._text_item, "", status="in_progress"))
        out.append(
            self._event("response.output_item.added", {"output_index": index, "item": self._output[index]})
        )
        part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
        out.append(
            self._event(
                "response.content_part.added",
                {**self._where(self._text_item), "content_index": 0, "part": part},
            )
        )

    def _close_text(self, out: list[bytes]) -> None:
        assert self._text is not None
        text = "".join(self._text)
        where = {**self._where(self._text_item), "content_index": 0}
        out.append(self._event("response.output_text.done", {**where, "text": text, "logprobs": []}))
        part = {"type": "output_text", "text": text, "annotations": [], "logprobs": []}
        out.append(self._event("response.content_part.done", {**where, "part": part}))
        index = where["output_index"]
        self._output[index] = message_item(self._text_item, text)
        out.append(
            self._event("response.output_item.done", {"output_index": index, "item": self._output[index]})
        )
        self._text = None

    def _open_call(self, out: list[bytes], key: int, call: Mapping[str, Any]) -> _Call:
        given = call.get("function")
        fn: Mapping[str, Any] = given if isinstance(given, Mapping) else {}
        index = len(self._output)
        found = _Call(new_id("fc"), str(call.get("id") or new_id("call")), str(fn.get("name") or ""), index)
        self._calls[key] = found
        self._open_calls.append(found)
        self._output.append(
            call_item(found.item_id, found.call_id, found.name, "", self.custom, "in_progress")
        )
        out.append(
            self._event("response.output_item.added", {"output_index": index, "item": self._output[index]})
        )
        return found

    def _close_calls(self, out: list[bytes]) -> None:
        for call in self._open_calls:
            args = "".join(call.args)
            where = {"item_id": call.item_id, "output_index": call.output_index}
            if call.name in self.custom:
                text = custom_input(args)
                out.append(self._event("response.custom_tool_call_input.delta", {**where, "delta": text}))
                out.append(self._event("response.custom_tool_call_input.done", {**where, "input": text}))
            else:
                out.append(
                    self._event(
                        "response.function_call_arguments.done",
                        {**where, "name": call.name, "arguments": args},
                    )
                )
            item = call_item(call.item_id, call.call_id, call.name, args, self.custom)
            self._output[call.output_index] = item
            out.append(
                self._event("response.output_item.done", {"output_index": call.output_index, "item": item})
            )
        self._open_calls = []

    def _where(self, item_id: str) -> dict[str, Any]:
        index = next(i for i, item in enumerate(self._output) if item["id"] == item_id)
        return {"item_id": item_id, "output_index": index}

    def _close_all(self, out: list[bytes]) -> None:
        if self._thought is not None:
            self._close_thought(out)
        if self._text is not None:
            self._close_text(out)
        self._close_calls(out)

    # -- the encoder interface -----------------------------------------------------------------------

    def feed(self, data: bytes) -> bytes:
        out: list[bytes] = []
        if not self._started:
            self._start(out)
        if data == _DONE:
            self._done = True
            return b"".join(out)
        try:
            chunk = orjson.loads(data)
        except orjson.JSONDecodeError:
            return b"".join(out)
        if not isinstance(chunk, Mapping):
            return b"".join(out)
        usage = chunk.get("usage")
        if isinstance(usage, Mapping):
            self._usage = usage_from_mapping(usage) or self._usage
        choices = chunk.get("choices")
        if isinstance(choices, list) and choices and isinstance(choices[0], Mapping):
            self._choice(choices[0], out)
        return b"".join(out)

    def _choice(self, choice: Mapping[str, Any], out: list[bytes]) -> None:
        delta = choice.get("delta")
        if isinstance(delta, Mapping):
            thought = delta.get("reasoning_content") or delta.get("reasoning")
            if isinstance(thought, str) and thought:
                if self._text is not None:
                    self._close_text(out)
                if self._thought is None:
                    self._open_thought(out)
                assert self._thought is not None
                self._thought.append(thought)
                where = {**self._where(self._thought_item), "summary_index": 0}
                out.append(self._event("response.reasoning_summary_text.delta", {**where, "delta": thought}))
            content = delta.get("content")
            if isinstance(content, str) and content:
                if self._thought is not None:
                    self._close_thought(out)
                if self._open_calls:
                    self._close_calls(out)
                if self._text is None:
                    self._open_text(out)
                assert self._text is not None
                self._text.append(content)
                where = {**self._where(self._text_item), "content_index": 0}
                out.append(
                    self._event("response.output_text.delta", {**where, "delta": content, "logprobs": []})
                )
            for call in delta.get("tool_calls") or ():
                if isinstance(call, Mapping):
                    self._tool_delta(call, out)
        if choice.get("finish_reason"):
            self._finish = choice["finish_reason"]

    def _tool_delta(self, call: Mapping[str, Any], out: list[bytes]) -> None:
        index = call.get("index")
        key = index if isinstance(index, int) else len(self._calls)
        found = self._calls.get(key)
        if found is None:
            if self._thought is not None:
                self._close_thought(out)
            if self._text is not None:
                self._close_text(out)
            found = self._open_call(out, key, call)
        fn = call.get("function")
        piece = fn.get("arguments") if isinstance(fn, Mapping) else None
        if isinstance(piece, str) and piece:
            found.args.append(piece)
            if found.name not in self.custom:
                where = {"item_id": found.item_id, "output_index": found.output_index}
                out.append(self._event("response.function_call_arguments.delta", {**where, "delta": piece}))

    def finish(self, error: str | None = None, code: str | None = None) -> bytes:
        """The end of the stream: `response.completed` if the upstream finished, else a failure.
        Only the first call writes anything."""
        if self._ended:
            return b""
        self._ended = True
        out: list[bytes] = []
        if not self._started:
            self._start(out)
        if error is None and self._finish is None and not self._done:
            error, code = "The upstream ended the stream before the answer was complete.", INCOMPLETE
            self.incomplete = True
        if error is not None:
            out.append(
                self._event("error", {"code": code or "stream_error", "message": error, "param": None})
            )
            failed = self._snapshot(
                "failed", error={"code": "server_error", "message": error}, usage=self._usage
            )
            out.append(self._event("response.failed", {"response": failed}))
            return b"".join(out)
        self._close_all(out)
        reason = incomplete_reason(self._finish)
        status = "incomplete" if reason else "completed"
        self.result = self._snapshot(status, usage=self._usage, incomplete=reason)
        out.append(self._event(f"response.{status}", {"response": self.result}))
        return b"".join(out)
