"""The Responses codec, pure: requests onto chat, chat answers and chunks back as Responses shapes.

Every request the codec is given is first checked against OpenAI's `CreateResponse` schema (so the
tests feed what clients may send), every chat request it makes against `CreateChatCompletionRequest`,
and every `Response` and stream event it writes against `Response` and `ResponseStreamEvent`.
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from support.schema import SpecValidator, parse_sse

from sluicegate.inbound.responses_answer import chat_to_response
from sluicegate.inbound.responses_request import responses_to_chat
from sluicegate.inbound.responses_stream import INCOMPLETE, ChatToResponsesStream
from sluicegate.protocol.errors import BadRequest

WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "Weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    "strict": False,
}
PATCH = {
    "type": "custom",
    "name": "apply_patch",
    "description": "Apply a patch",
    "format": {"type": "grammar", "syntax": "lark", "definition": "start: /.+/"},
}


def _ambiguous(error: Any) -> bool:
    """The spec's quirk: a message item matches both `Item` and `EasyInputMessage` of a `oneOf`, so
    every request with `{"type": "message", ...}` items (as Codex sends them) fails `oneOf`."""
    return "is valid under each of" in error.message or any(_ambiguous(e) for e in error.context or ())


def to_chat(spec: SpecValidator, body: dict[str, Any]) -> tuple[dict[str, Any], frozenset[str]]:
    errors = [e for e in spec.errors("CreateResponse", body) if not _ambiguous(e)]
    assert not errors, (
        f"the test's request is not a valid CreateResponse: {[e.message[:200] for e in errors]}"
    )
    chat, custom = responses_to_chat(body, "up-model")
    spec.validate("CreateChatCompletionRequest", chat)
    return chat, custom


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


# -- requests -----------------------------------------------------------------------------------------


def test_string_input_and_instructions_become_system_and_user_messages(spec: SpecValidator) -> None:
    chat, _ = to_chat(
        spec, {"model": "m", "input": "Hi", "instructions": "Be brief.", "max_output_tokens": 50}
    )
    assert chat["messages"] == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
    assert chat["model"] == "up-model"
    assert chat["max_tokens"] == 50


def test_message_items_keep_their_order_and_developer_becomes_system(spec: SpecValidator) -> None:
    chat, _ = to_chat(
        spec,
        {
            "model": "m",
            "input": [
                {
                    "type": "message",
                    "role": "developer",
                    "content": [{"type": "input_text", "text": "Rules."}],
                },
                {"role": "user", "content": [{"type": "input_text", "text": "Q1"}]},
                {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "A1"}]},
                {"role": "user", "content": "Q2"},
            ],
        },
    )
    assert chat["messages"] == [
        {"role": "system", "content": "Rules."},
        {"role": "user", "content": "Q1"},
        {"role": "assistant", "content": "A1"},
        {"role": "user", "content": "Q2"},
    ]


def test_an_image_part_becomes_an_image_url_part(spec: SpecValidator) -> None:
    url = "data:image/png;base64,iVBORw0KGgo="
    chat, _ = to_chat(
        spec,
        {
            "model": "m",
            "input": [
                {
                    "role": "user",
                    "content": [
                        {"type": "input_text", "text": "What is this?"},
                        {"type": "input_image", "image_url": url, "detail": "low"},
                    ],
                }
            ],
        },
    )
    assert chat["messages"][0]["content"] == [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": url, "detail": "low"}},
    ]


def test_function_call_items_and_outputs_become_tool_calls_and_tool_messages(spec: SpecValidator) -> None:
    chat, _ = to_chat(
        spec,
        {
            "model": "m",
            "tools": [WEATHER],
            "input": [
                {"role": "user", "content": "Weather in Paris and Rome?"},
                {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": "opaque"},
                {
                    "type": "function_call",
                    "call_id": "call_a",
                    "name": "get_weather",
                    "arguments": '{"city":"Paris"}',
                },
                {
                    "type": "function_call",
                    "call_id": "call_b",
                    "name": "get_weather",
                    "arguments": '{"city":"Rome"}',
                },
                {"type": "function_call_output", "call_id": "call_a", "output": "sunny"},
                {
                    "type": "function_call_output",
                    "call_id": "call_b",
                    "output": [{"type": "input_text", "text": "rain"}],
                },
            ],
        },
    )
    assistant = chat["messages"][1]
    assert assistant["role"] == "assistant"
    assert [c["id"] for c in assistant["tool_calls"]] == ["call_a", "call_b"]
    assert assistant["tool_calls"][0]["function"] == {"name": "get_weather", "arguments": '{"city":"Paris"}'}
    assert chat["messages"][2:] == [
        {"role": "tool", "tool_call_id": "call_a", "content": "sunny"},
        {"role": "tool", "tool_call_id": "call_b", "content": "rain"},
    ]
    assert len(chat["messages"]) == 4  # the reasoning item was dropped


def test_custom_tools_become_functions_with_one_input_string(spec: SpecValidator) -> None:
    chat, custom = to_chat(
        spec,
        {
            "model": "m",
            "tools": [PATCH],
            "input": [
                {"role": "user", "content": "patch it"},
                {"type": "custom_tool_call", "call_id": "c1", "name": "apply_patch", "input": "*** Begin"},
                {"type": "custom_tool_call_output", "call_id": "c1", "output": "done"},
            ],
        },
    )
    assert custom == frozenset({"apply_patch"})
    fn = chat["tools"][0]["function"]
    assert fn["name"] == "apply_patch"
    assert fn["parameters"]["required"] == ["input"]
    assert "start: /.+/" in fn["description"]
    assert orjson.loads(chat["messages"][1]["tool_calls"][0]["function"]["arguments"]) == {
        "input": "*** Begin"
    }


def test_hosted_tools_are_not_offered_to_a_chat_upstream(spec: SpecValidator) -> None:
    chat, _ = to_chat(spec, {"model": "m", "input": "hi", "tools": [WEATHER, {"type": "web_search"}]})
    assert [t["function"]["name"] for t in chat["tools"]] == ["get_weather"]


def test_controls_map_onto_chat_fields(spec: SpecValidator) -> None:
    schema = {
        "type": "object",
        "properties": {"a": {"type": "string"}},
        "required": ["a"],
        "additionalProperties": False,
    }
    chat, _ = to_chat(
        spec,
        {
            "model": "m",
            "input": "hi",
            "tools": [WEATHER],
            "tool_choice": {"type": "function", "name": "get_weather"},
            "parallel_tool_calls": False,
            "text": {"format": {"type": "json_schema", "name": "out", "schema": schema, "strict": True}},
            "reasoning": {"effort": "high", "summary": "auto"},
            "temperature": 0.2,
            "top_p": 0.9,
            "user": "u1",
            "store": False,
            "include": ["reasoning.encrypted_content"],
            "prompt_cache_key": "k",
            "metadata": {"a": "b"},
            "stream": True,
        },
    )
    assert chat["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    assert chat["parallel_tool_calls"] is False
    assert chat["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "out", "schema": schema, "strict": True},
    }
    assert chat["reasoning_effort"] == "high"
    assert (chat["temperature"], chat["top_p"], chat["user"], chat["stream"]) == (0.2, 0.9, "u1", True)
    for dropped in ("store", "include", "prompt_cache_key", "metadata", "text", "reasoning", "input"):
        assert dropped not in chat


def test_json_object_format_becomes_json_object_response_format(spec: SpecValidator) -> None:
    chat, _ = to_chat(spec, {"model": "m", "input": "hi", "text": {"format": {"type": "json_object"}}})
    assert chat["response_format"] == {"type": "json_object"}


def test_an_unknown_item_type_is_refused_naming_it() -> None:
    with pytest.raises(BadRequest, match="item_reference"):
        responses_to_chat({"model": "m", "input": [{"type": "item_reference", "id": "x"}]}, "m")


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
