"""The Responses codec's requests, pure: a Responses request onto a canonical chat request.

Every request the codec is given is first checked against OpenAI's `CreateResponse` schema (so the
tests feed what clients may send), and every chat request it makes against `CreateChatCompletionRequest`.
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from support.agent_upstream import PATCH, WEATHER
from support.schema import SpecValidator

from sluicegate.inbound.responses_request import responses_to_chat
from sluicegate.protocol.errors import BadRequest


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
