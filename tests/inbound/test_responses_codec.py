"""The Responses codec's answers, pure: chat answers and chunks back as Responses shapes.

Every `Response` and stream event it writes is checked against OpenAI's `Response` and
`ResponseStreamEvent` schemas.
"""

from __future__ import annotations

from typing import Any

import orjson
from support.agent_upstream import PATCH, WEATHER
from support.schema import SpecValidator, parse_sse

from sluicegate.inbound.responses_answer import chat_to_response
from sluicegate.inbound.responses_stream import INCOMPLETE, ChatToResponsesStream


def chunk(
    delta: dict[str, Any] | None, finish: str | None = None, usage: dict[str, Any] | None = None
) -> bytes:
    doc: dict[str, Any] = {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m"}
    doc["choices"] = [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish}]
    if usage is not None:
        doc["usage"] = usage
    return orjson.dumps(doc)


USAGE = {
    "prompt_tokens": 11,
    "completion_tokens": 7,
    "total_tokens": 18,
    "prompt_tokens_details": {"cached_tokens": 3},
    "completion_tokens_details": {"reasoning_tokens": 2},
}


def run_stream(
    spec: SpecValidator, request: dict[str, Any], chunks: list[bytes], **kw: Any
) -> list[dict[str, Any]]:
    enc = ChatToResponsesStream(request, "my-model", kw.pop("custom", frozenset()), "resp_1", 1_700_000_000)
    raw = b"".join(enc.feed(c) for c in chunks) + enc.finish(**kw)
    events = [orjson.loads(e) for e in parse_sse(raw)]
    for i, ev in enumerate(events):
        spec.validate("ResponseStreamEvent", ev)
        assert ev["sequence_number"] == i, f"event {i} has sequence_number {ev['sequence_number']}"
    return events


# -- whole answers ----------------------------------------------------------------------------------


def test_a_chat_answer_becomes_a_response_with_usage(spec: SpecValidator) -> None:
    chat = {
        "id": "c",
        "object": "chat.completion",
        "created": 5,
        "model": "m",
        "choices": [
            {
                "index": 0,
                "finish_reason": "stop",
                "message": {"role": "assistant", "content": "Hello", "reasoning_content": "think"},
            }
        ],
        "usage": USAGE,
    }
    resp = spec.validate(
        "Response", chat_to_response(chat, {"model": "my-model"}, "my-model", frozenset(), "resp_1")
    )
    assert resp["status"] == "completed"
    assert [item["type"] for item in resp["output"]] == ["reasoning", "message"]
    assert resp["output"][1]["content"][0]["text"] == "Hello"
    assert resp["usage"] == {
        "input_tokens": 11,
        "input_tokens_details": {"cached_tokens": 3, "cache_write_tokens": 0},
        "output_tokens": 7,
        "output_tokens_details": {"reasoning_tokens": 2},
        "total_tokens": 18,
    }


def test_tool_calls_become_function_and_custom_tool_call_items(spec: SpecValidator) -> None:
    calls = [
        {
            "id": "call_1",
            "type": "function",
            "function": {"name": "get_weather", "arguments": '{"city":"Oslo"}'},
        },
        {
            "id": "call_2",
            "type": "function",
            "function": {"name": "apply_patch", "arguments": '{"input":"*** P"}'},
        },
    ]
    chat = {
        "id": "c",
        "created": 5,
        "choices": [
            {"index": 0, "finish_reason": "tool_calls", "message": {"role": "assistant", "tool_calls": calls}}
        ],
    }
    resp = spec.validate("Response", chat_to_response(chat, {}, "m", frozenset({"apply_patch"}), "resp_1"))
    fc, ctc = resp["output"]
    assert (fc["type"], fc["call_id"], fc["name"], fc["arguments"]) == (
        "function_call",
        "call_1",
        "get_weather",
        '{"city":"Oslo"}',
    )
    assert (ctc["type"], ctc["call_id"], ctc["input"]) == ("custom_tool_call", "call_2", "*** P")


def test_a_length_stop_is_an_incomplete_response(spec: SpecValidator) -> None:
    chat = {"created": 5, "choices": [{"index": 0, "finish_reason": "length", "message": {"content": "Hel"}}]}
    resp = spec.validate("Response", chat_to_response(chat, {}, "m", frozenset(), "resp_1"))
    assert resp["status"] == "incomplete"
    assert resp["incomplete_details"] == {"reason": "max_output_tokens"}


# -- streams --------------------------------------------------------------------------------------------


def test_a_text_stream_emits_the_full_event_sequence_in_order(spec: SpecValidator) -> None:
    events = run_stream(
        spec,
        {"model": "my-model"},
        [
            chunk({"role": "assistant", "content": ""}),
            chunk({"content": "Hel"}),
            chunk({"content": "lo"}),
            chunk({}, "stop"),
            chunk(None, usage=USAGE),
            b"[DONE]",
        ],
    )
    assert [e["type"] for e in events] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert "usage" not in events[0]["response"]  # the schema allows no null there: left out
    assert events[6]["text"] == "Hello"
    done = events[-1]["response"]
    assert done["output"][0]["content"][0]["text"] == "Hello"
    assert done["usage"]["output_tokens"] == 7
    assert done["usage"]["output_tokens_details"]["reasoning_tokens"] == 2


def test_reasoning_streams_as_a_reasoning_item_with_summary_events(spec: SpecValidator) -> None:
    events = run_stream(
        spec,
        {},
        [
            chunk({"reasoning_content": "Let me"}),
            chunk({"reasoning_content": " think"}),
            chunk({"content": "42"}),
            chunk({}, "stop"),
        ],
    )
    kinds = [e["type"] for e in events]
    assert kinds[2:9] == [
        "response.output_item.added",
        "response.reasoning_summary_part.added",
        "response.reasoning_summary_text.delta",
        "response.reasoning_summary_text.delta",
        "response.reasoning_summary_text.done",
        "response.reasoning_summary_part.done",
        "response.output_item.done",
    ]
    assert events[6]["text"] == "Let me think"
    assert [i["type"] for i in events[-1]["response"]["output"]] == ["reasoning", "message"]


def test_tool_call_deltas_stream_as_function_call_arguments_events(spec: SpecValidator) -> None:
    first = {
        "index": 0,
        "id": "call_1",
        "type": "function",
        "function": {"name": "get_weather", "arguments": ""},
    }
    events = run_stream(
        spec,
        {"tools": [WEATHER]},
        [
            chunk({"role": "assistant", "tool_calls": [first]}),
            chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"city":'}}]}),
            chunk({"tool_calls": [{"index": 0, "function": {"arguments": '"Oslo"}'}}]}),
            chunk({}, "tool_calls"),
            b"[DONE]",
        ],
    )
    kinds = [e["type"] for e in events]
    assert kinds[2:] == [
        "response.output_item.added",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert events[5]["arguments"] == '{"city":"Oslo"}'
    item = events[-1]["response"]["output"][0]
    assert (item["call_id"], item["name"], item["arguments"]) == ("call_1", "get_weather", '{"city":"Oslo"}')


def test_a_stream_that_stops_short_fails_and_never_completes(spec: SpecValidator) -> None:
    events = run_stream(spec, {}, [chunk({"content": "Hel"})])
    assert [e["type"] for e in events][-2:] == ["error", "response.failed"]
    assert events[-2]["code"] == INCOMPLETE
    assert not any(e["type"] == "response.completed" for e in events)


def test_a_relay_failure_ends_the_stream_with_response_failed(spec: SpecValidator) -> None:
    events = run_stream(spec, {}, [chunk({"content": "Hel"})], error="The upstream timed out.")
    assert events[-1]["type"] == "response.failed"
    assert events[-1]["response"]["error"]["message"] == "The upstream timed out."


def test_a_custom_tool_call_streams_its_input_as_custom_tool_call_events(spec: SpecValidator) -> None:
    first = {
        "index": 0,
        "id": "call_p",
        "type": "function",
        "function": {"name": "apply_patch", "arguments": ""},
    }
    events = run_stream(
        spec,
        {"tools": [PATCH]},
        [
            chunk({"tool_calls": [first]}),
            chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"input":"*** Begin'}}]}),
            chunk({"tool_calls": [{"index": 0, "function": {"arguments": ' Patch"}'}}]}),
            chunk({}, "tool_calls"),
        ],
        custom=frozenset({"apply_patch"}),
    )
    kinds = [e["type"] for e in events]
    assert kinds[2:] == [
        "response.output_item.added",
        "response.custom_tool_call_input.delta",
        "response.custom_tool_call_input.done",
        "response.output_item.done",
        "response.completed",
    ]
    item = events[-1]["response"]["output"][0]
    assert (item["type"], item["call_id"], item["input"]) == ("custom_tool_call", "call_p", "*** Begin Patch")
