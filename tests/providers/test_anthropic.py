"""Anthropic Messages ⇄ OpenAI Chat Completions: requests, answers and errors.

Every Anthropic shape used as input is first checked against Anthropic's published spec (so the
tests feed what real clients send), every OpenAI request produced against OpenAI's spec, and every
Anthropic answer produced against Anthropic's spec and the official SDK's own models.
"""

from __future__ import annotations

from typing import Any

import anthropic
import httpx2  # the anthropic SDK 2.x runs on httpx2, not httpx
import orjson
import pytest
from support.anthropic_spec import anthropic_spec
from support.schema import SpecValidator

from sluicegate.providers.anthropic import (
    IGNORED_FIELDS,
    chat_to_message,
    error_body,
    error_type,
    messages_to_chat,
    openai_error_to_anthropic,
)

PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
WEATHER_TOOL = {
    "name": "get_weather",
    "description": "Current weather for a city.",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


@pytest.fixture(scope="module")
def aspec() -> SpecValidator:
    return anthropic_spec()


def translate(
    body: dict[str, Any], aspec: SpecValidator, spec: SpecValidator, model: str = "gpt-4o-mini"
) -> dict[str, Any]:
    """The request as a client would send it (checked against Anthropic's spec), translated and
    checked against OpenAI's."""
    aspec.validate("CreateMessageParams", {"model": "claude-sonnet-4-6", **body})
    chat = messages_to_chat(body, model)
    spec.validate("CreateChatCompletionRequest", chat)
    return chat


def completion(
    message: dict[str, Any],
    finish_reason: str | None = "stop",
    usage: dict[str, Any] | None = None,
    **choice: Any,
) -> dict[str, Any]:
    return {
        "id": "chatcmpl-Abc123",
        "object": "chat.completion",
        "created": 1764000000,
        "model": "gpt-4o-mini",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", **message},
                "finish_reason": finish_reason,
                "logprobs": None,
                **choice,
            }
        ],
        "usage": usage or {"prompt_tokens": 12, "completion_tokens": 5, "total_tokens": 17},
    }


def answer(chat: dict[str, Any], aspec: SpecValidator, model: str = "claude-sonnet-4-6") -> dict[str, Any]:
    """chat_to_message, checked against Anthropic's spec and parsed by the official SDK's model."""
    message = chat_to_message(chat, model)
    aspec.validate("Message", message)
    anthropic.types.Message.model_validate(message)
    return message


# -- requests -----------------------------------------------------------------------------------


def test_a_minimal_request_becomes_a_chat_request_for_the_routed_model(aspec, spec) -> None:
    chat = translate(
        {"max_tokens": 256, "messages": [{"role": "user", "content": "Hello"}]},
        aspec,
        spec,
        model="upstream-model",
    )
    assert chat == {
        "model": "upstream-model",
        "max_tokens": 256,
        "messages": [{"role": "user", "content": "Hello"}],
    }


def test_a_system_string_becomes_the_first_message(aspec, spec) -> None:
    chat = translate(
        {"max_tokens": 10, "system": "Be brief.", "messages": [{"role": "user", "content": "Hi"}]},
        aspec,
        spec,
    )
    assert chat["messages"][0] == {"role": "system", "content": "Be brief."}
    assert chat["messages"][1] == {"role": "user", "content": "Hi"}


def test_system_text_blocks_are_joined_as_sections(aspec, spec) -> None:
    chat = translate(
        {
            "max_tokens": 10,
            "messages": [{"role": "user", "content": "Hi"}],
            "system": [
                {"type": "text", "text": "You are a coding agent."},
                {"type": "text", "text": "Project rules: tabs.", "cache_control": {"type": "ephemeral"}},
            ],
        },
        aspec,
        spec,
    )
    assert chat["messages"][0] == {
        "role": "system",
        "content": "You are a coding agent.\n\nProject rules: tabs.",
    }


def test_a_mid_conversation_system_message_stays_in_place(aspec, spec) -> None:
    # Claude Code (2.1.x) sends a `role: "system"` message after the user turn; the translation to
    # chat used to refuse it with a 400, so Claude Code could not use any non-Anthropic upstream.
    chat = translate(
        {
            "max_tokens": 10,
            "messages": [
                {"role": "user", "content": "Hi"},
                {"role": "system", "content": [{"type": "text", "text": "Reminder: be brief."}]},
            ],
        },
        aspec,
        spec,
    )
    assert chat["messages"] == [
        {"role": "user", "content": "Hi"},
        {"role": "system", "content": "Reminder: be brief."},
    ]


def test_sampling_stop_sequences_and_user_carry_over(aspec, spec) -> None:
    chat = translate(
        {
            "max_tokens": 50,
            "temperature": 0.2,
            "top_p": 0.9,
            "top_k": 40,
            "stop_sequences": ["\n\nHuman:", "END"],
            "metadata": {"user_id": "u-42"},
            "messages": [{"role": "user", "content": "Hi"}],
        },
        aspec,
        spec,
    )
    assert chat["temperature"] == 0.2 and chat["top_p"] == 0.9
    assert chat["stop"] == ["\n\nHuman:", "END"]
    assert "user" not in chat and "metadata" in IGNORED_FIELDS, "a client's user id stays at the gateway"
    assert "top_k" not in chat and "top_k" in IGNORED_FIELDS


def test_stream_asks_the_upstream_for_usage(aspec, spec) -> None:
    chat = translate(
        {"max_tokens": 5, "stream": True, "messages": [{"role": "user", "content": "Hi"}]}, aspec, spec
    )
    assert chat["stream"] is True
    assert chat["stream_options"] == {"include_usage": True}


def test_thinking_becomes_reasoning_effort_and_anthropic_only_fields_are_dropped(aspec, spec) -> None:
    chat = translate(
        {
            "max_tokens": 2048,
            "thinking": {"type": "enabled", "budget_tokens": 1024},
            "service_tier": "auto",
            "messages": [{"role": "user", "content": "Hi"}],
        },
        aspec,
        spec,
    )
    assert set(chat) == {"model", "max_tokens", "messages", "reasoning_effort"}
    assert chat["reasoning_effort"] == "low"


def test_user_text_and_images_become_content_parts(aspec, spec) -> None:
    chat = translate(
        {
            "max_tokens": 10,
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "Compare these:"},
                        {
                            "type": "image",
                            "source": {"type": "base64", "media_type": "image/png", "data": PNG},
                        },
                        {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}},
                    ],
                }
            ],
        },
        aspec,
        spec,
    )
    assert chat["messages"] == [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Compare these:"},
                {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
                {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}},
            ],
        }
    ]


def test_a_single_text_block_becomes_plain_content(aspec, spec) -> None:
    chat = translate(
        {
            "max_tokens": 10,
            "messages": [
                {
                    "role": "user",
                    "content": [{"type": "text", "text": "Hi", "cache_control": {"type": "ephemeral"}}],
                }
            ],
        },
        aspec,
        spec,
    )
    assert chat["messages"] == [{"role": "user", "content": "Hi"}]


def test_tool_use_becomes_assistant_tool_calls_and_thinking_their_reasoning_content(aspec, spec) -> None:
    chat = translate(
        {
            "max_tokens": 100,
            "tools": [WEATHER_TOOL],
            "messages": [
                {"role": "user", "content": "Weather in Paris?"},
                {
                    "role": "assistant",
                    "content": [
                        {"type": "thinking", "thinking": "The user wants weather.", "signature": "c2ln"},
                        {"type": "text", "text": "Let me check."},
                        {
                            "type": "tool_use",
                            "id": "toolu_01A",
                            "name": "get_weather",
                            "input": {"city": "Paris"},
                        },
                    ],
                },
                {
                    "role": "user",
                    "content": [
                        {"type": "tool_result", "tool_use_id": "toolu_01A", "content": "18°C, sunny"}
                    ],
                },
            ],
        },
        aspec,
        spec,
    )
    assert chat["messages"][1] == {
        "role": "assistant",
        "content": "Let me check.",
        "reasoning_content": "The user wants weather.",  # removed per upstream unless it wants it
        "tool_calls": [
            {
                "id": "toolu_01A",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
            }
        ],
    }
    assert chat["messages"][2] == {"role": "tool", "tool_call_id": "toolu_01A", "content": "18°C, sunny"}
    assert len(chat["messages"]) == 3


def test_an_assistant_turn_of_only_tool_calls_has_null_content(aspec, spec) -> None:
    chat = translate(
        {
            "max_tokens": 100,
            "messages": [
                {"role": "user", "content": "Weather?"},
                {
                    "role": "assistant",
                    "content": [{"type": "tool_use", "id": "t1", "name": "get_weather", "input": {}}],
                },
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1"}]},
            ],
        },
        aspec,
        spec,
    )
    assert chat["messages"][1]["content"] is None
    assert chat["messages"][1]["tool_calls"][0]["function"]["arguments"] == "{}"
    assert chat["messages"][2] == {"role": "tool", "tool_call_id": "t1", "content": ""}


def test_tool_results_come_first_then_the_rest_of_the_user_turn(aspec, spec) -> None:
    chat = translate(
        {
            "max_tokens": 100,
            "messages": [
                {"role": "user", "content": "Two cities"},
                {
                    "role": "assistant",
                    "content": [
                        {"type": "tool_use", "id": "t1", "name": "get_weather", "input": {"city": "Oslo"}},
                        {"type": "tool_use", "id": "t2", "name": "get_weather", "input": {"city": "Rome"}},
                    ],
                },
                {
                    "role": "user",
                    "content": [
                        {
                            "type": "tool_result",
                            "tool_use_id": "t1",
                            "content": [{"type": "text", "text": "-3°C"}, {"type": "text", "text": "snow"}],
                        },
                        {"type": "tool_result", "tool_use_id": "t2", "content": "timeout", "is_error": True},
                        {"type": "text", "text": "Summarise."},
                    ],
                },
            ],
        },
        aspec,
        spec,
    )
    assert chat["messages"][2:] == [
        {"role": "tool", "tool_call_id": "t1", "content": "-3°C\nsnow"},
        {"role": "tool", "tool_call_id": "t2", "content": "Error: timeout"},
        {"role": "user", "content": "Summarise."},
    ]


def test_an_image_in_a_tool_result_follows_as_a_user_message(aspec, spec) -> None:
    chat = translate(
        {
            "max_tokens": 100,
            "messages": [
                {"role": "user", "content": "Screenshot please"},
                {
                    "role": "assistant",
                    "content": [{"type": "tool_use", "id": "s1", "name": "screenshot", "input": {}}],
                },
                {
                    "role": "user",
                    "content": [
                        {
                            "type": "tool_result",
                            "tool_use_id": "s1",
                            "content": [
                                {"type": "text", "text": "captured"},
                                {
                                    "type": "image",
                                    "source": {"type": "base64", "media_type": "image/png", "data": PNG},
                                },
                            ],
                        }
                    ],
                },
            ],
        },
        aspec,
        spec,
    )
    assert chat["messages"][2] == {"role": "tool", "tool_call_id": "s1", "content": "captured"}
    assert chat["messages"][3] == {
        "role": "user",
        "content": [{"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}}],
    }


def test_text_documents_become_text_and_pdfs_become_file_parts(aspec, spec) -> None:
    chat = translate(
        {
            "max_tokens": 10,
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {
                            "type": "document",
                            "title": "Notes",
                            "source": {"type": "text", "media_type": "text/plain", "data": "Ship on Friday."},
                        },
                        {
                            "type": "document",
                            "source": {"type": "content", "content": [{"type": "text", "text": "Page 1"}]},
                        },
                        {
                            "type": "document",
                            "title": "spec.pdf",
                            "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0x"},
                        },
                        {"type": "text", "text": "Summarise."},
                    ],
                }
            ],
        },
        aspec,
        spec,
    )
    assert chat["messages"][0]["content"] == [
        {"type": "text", "text": "Notes\n\nShip on Friday."},
        {"type": "text", "text": "Page 1"},
        {
            "type": "file",
            "file": {"filename": "spec.pdf", "file_data": "data:application/pdf;base64,JVBERi0x"},
        },
        {"type": "text", "text": "Summarise."},
    ]


def test_tools_become_function_tools(aspec, spec) -> None:
    chat = translate(
        {
            "max_tokens": 10,
            "tools": [WEATHER_TOOL, {"name": "now", "input_schema": {"type": "object"}}],
            "messages": [{"role": "user", "content": "Hi"}],
        },
        aspec,
        spec,
    )
    assert chat["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Current weather for a city.",
                "parameters": WEATHER_TOOL["input_schema"],
            },
        },
        {"type": "function", "function": {"name": "now", "parameters": {"type": "object"}}},
    ]


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ({"type": "auto"}, "auto"),
        ({"type": "any"}, "required"),
        ({"type": "none"}, "none"),
        ({"type": "tool", "name": "get_weather"}, {"type": "function", "function": {"name": "get_weather"}}),
    ],
)
def test_tool_choice_maps_to_openai(choice, expected, aspec, spec) -> None:
    chat = translate(
        {
            "max_tokens": 10,
            "tools": [WEATHER_TOOL],
            "tool_choice": choice,
            "messages": [{"role": "user", "content": "Hi"}],
        },
        aspec,
        spec,
    )
    assert chat["tool_choice"] == expected
    assert "parallel_tool_calls" not in chat


def test_a_strict_tool_stays_strict(aspec, spec) -> None:
    chat = translate(
        {
            "max_tokens": 10,
            "tools": [{**WEATHER_TOOL, "strict": True}],
            "messages": [{"role": "user", "content": "Hi"}],
        },
        aspec,
        spec,
    )
    assert chat["tools"][0]["function"]["strict"] is True


def test_tool_choice_without_tools_is_not_sent(aspec, spec) -> None:
    chat = translate(
        {"max_tokens": 10, "tool_choice": {"type": "none"}, "messages": [{"role": "user", "content": "Hi"}]},
        aspec,
        spec,
    )
    assert "tool_choice" not in chat


def test_disable_parallel_tool_use_turns_parallel_calls_off(aspec, spec) -> None:
    chat = translate(
        {
            "max_tokens": 10,
            "tools": [WEATHER_TOOL],
            "tool_choice": {"type": "any", "disable_parallel_tool_use": True},
            "messages": [{"role": "user", "content": "Hi"}],
        },
        aspec,
        spec,
    )
    assert chat["parallel_tool_calls"] is False


def test_structured_output_becomes_a_json_schema_response_format(aspec, spec) -> None:
    schema = {
        "type": "object",
        "properties": {"n": {"type": "integer"}},
        "required": ["n"],
        "additionalProperties": False,
    }
    chat = translate(
        {
            "max_tokens": 10,
            "output_config": {"format": {"type": "json_schema", "schema": schema}},
            "messages": [{"role": "user", "content": "A number"}],
        },
        aspec,
        spec,
    )
    assert chat["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "output", "schema": schema, "strict": True},
    }


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"max_tokens": 10, "messages": []}, "messages: must be a non-empty list"),
        ({"messages": [{"role": "user", "content": "x"}]}, "max_tokens: required"),
        (
            {"max_tokens": 10, "messages": [{"role": "tool", "content": "x"}]},
            "messages.0.role: must be 'user', 'assistant' or 'system', not 'tool'",
        ),
        (
            {
                "max_tokens": 10,
                "messages": [
                    {
                        "role": "user",
                        "content": [{"type": "image", "source": {"type": "file", "file_id": "file_1"}}],
                    }
                ],
            },
            "messages.0.content.0.source: image source 'file' is not supported",
        ),
        (
            {
                "max_tokens": 10,
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {
                                "type": "document",
                                "source": {"type": "url", "url": "https://example.com/a.pdf"},
                            }
                        ],
                    }
                ],
            },
            "messages.0.content.0.source: document source 'url' is not supported",
        ),
        (
            {
                "max_tokens": 10,
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {
                                "type": "search_result",
                                "source": "https://example.com",
                                "title": "t",
                                "content": [{"type": "text", "text": "x"}],
                            }
                        ],
                    }
                ],
            },
            "messages.0.content.0: 'search_result' blocks are not supported",
        ),
        (
            {
                "max_tokens": 10,
                "tools": [{"type": "web_search_20250305", "name": "web_search"}],
                "messages": [{"role": "user", "content": "x"}],
            },
            "tools.0: Anthropic server tool 'web_search_20250305' is not supported",
        ),
        (
            {
                "max_tokens": 10,
                "tool_choice": {"type": "sometimes"},
                "messages": [{"role": "user", "content": "x"}],
            },
            "tool_choice: type must be",
        ),
    ],
)
def test_what_cannot_be_translated_is_refused_with_a_clear_message(body, message) -> None:
    with pytest.raises(ValueError) as caught:
        messages_to_chat(body, "m")
    assert str(caught.value).startswith(message)


# -- answers ------------------------------------------------------------------------------------


def test_a_text_answer_becomes_a_message(aspec) -> None:
    message = answer(completion({"content": "Hi there!"}), aspec)
    assert message["id"] == "msg_Abc123"
    assert message["type"] == "message" and message["role"] == "assistant"
    assert message["model"] == "claude-sonnet-4-6"
    assert message["content"] == [{"type": "text", "text": "Hi there!", "citations": None}]
    assert message["stop_reason"] == "end_turn" and message["stop_sequence"] is None
    assert message["usage"]["input_tokens"] == 12 and message["usage"]["output_tokens"] == 5
    assert message["usage"]["cache_read_input_tokens"] == 0


def test_tool_calls_become_tool_use_blocks_after_the_text(aspec) -> None:
    message = answer(
        completion(
            {
                "content": "Checking both.",
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city":"Oslo"}'},
                    },
                    {
                        "id": "call_2",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city": "Rome"}'},
                    },
                ],
            },
            finish_reason="tool_calls",
        ),
        aspec,
    )
    assert message["stop_reason"] == "tool_use"
    assert [b["type"] for b in message["content"]] == ["text", "tool_use", "tool_use"]
    assert message["content"][1] == {
        "type": "tool_use",
        "id": "call_1",
        "name": "get_weather",
        "input": {"city": "Oslo"},
        "caller": {"type": "direct"},
    }
    assert message["content"][2]["input"] == {"city": "Rome"}


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        ("", {}),
        ('{"city": "Oslo"', {"_raw_arguments": '{"city": "Oslo"'}),
        ("[1, 2]", {"_raw_arguments": "[1, 2]"}),
        ('{"n": 1}', {"n": 1}),
    ],
)
def test_tool_arguments_that_are_not_a_json_object_are_kept_not_lost(arguments, expected, aspec) -> None:
    message = answer(
        completion(
            {
                "content": None,
                "tool_calls": [
                    {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": arguments}}
                ],
            },
            finish_reason="tool_calls",
        ),
        aspec,
    )
    assert message["content"][0]["input"] == expected


def test_tool_call_ids_anthropic_would_reject_are_made_safe(aspec) -> None:
    message = answer(
        completion(
            {
                "content": None,
                "tool_calls": [
                    {"id": "call:1/a", "type": "function", "function": {"name": "f", "arguments": "{}"}},
                    {"id": "", "type": "function", "function": {"name": "g", "arguments": "{}"}},
                ],
            },
            finish_reason="tool_calls",
        ),
        aspec,
    )
    assert message["content"][0]["id"] == "call_1_a"
    assert message["content"][1]["id"] == "toolu_Abc123_1"


@pytest.mark.parametrize(
    ("finish", "stop_reason"),
    [
        ("stop", "end_turn"),
        ("length", "max_tokens"),
        ("tool_calls", "tool_use"),
        ("content_filter", "refusal"),
        (None, "end_turn"),
    ],
)
def test_finish_reasons_map_to_stop_reasons(finish, stop_reason, aspec) -> None:
    message = answer(completion({"content": "x"}, finish_reason=finish), aspec)
    assert message["stop_reason"] == stop_reason


def test_a_content_filter_stop_is_a_refusal_with_details(aspec) -> None:
    message = answer(completion({"content": ""}, finish_reason="content_filter"), aspec)
    assert message["stop_details"] == {"type": "refusal", "category": None, "explanation": None}
    assert message["content"] == []


def test_a_stop_string_reported_by_vllm_is_a_stop_sequence(aspec) -> None:
    message = answer(completion({"content": "one two"}, stop_reason="END"), aspec)
    assert message["stop_reason"] == "stop_sequence" and message["stop_sequence"] == "END"


def test_tool_calls_finished_with_stop_are_still_tool_use(aspec) -> None:
    # Ollama and some others finish a tool-calling turn with "stop".
    message = answer(
        completion(
            {
                "content": "",
                "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f", "arguments": "{}"}}],
            }
        ),
        aspec,
    )
    assert message["stop_reason"] == "tool_use"


def test_cached_prompt_tokens_are_cache_reads_not_input(aspec) -> None:
    usage = {
        "prompt_tokens": 2000,
        "completion_tokens": 40,
        "total_tokens": 2040,
        "prompt_tokens_details": {"cached_tokens": 1536},
        "completion_tokens_details": {"reasoning_tokens": 10},
    }
    message = answer(completion({"content": "x"}, usage=usage), aspec)
    assert message["usage"]["input_tokens"] == 464
    assert message["usage"]["cache_read_input_tokens"] == 1536
    assert message["usage"]["cache_creation_input_tokens"] == 0
    assert message["usage"]["output_tokens"] == 40
    assert message["usage"]["output_tokens_details"] == {"thinking_tokens": 10}


def test_an_answer_without_usage_reports_zero_tokens(aspec) -> None:
    chat = completion({"content": "x"})
    del chat["usage"]
    message = answer(chat, aspec)
    assert message["usage"]["input_tokens"] == 0 and message["usage"]["output_tokens"] == 0


def test_tool_ids_round_trip_through_the_client(aspec, spec) -> None:
    """The id of a tool_use the gateway made comes back in the client's next request, both as
    the assistant's tool_use and as the tool_result, and reaches the upstream as the same call id."""
    message = answer(
        completion(
            {
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_w1",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city":"Lima"}'},
                    }
                ],
            },
            finish_reason="tool_calls",
        ),
        aspec,
    )
    use = message["content"][0]
    next_turn = {
        "max_tokens": 100,
        "tools": [WEATHER_TOOL],
        "messages": [
            {"role": "user", "content": "Weather in Lima?"},
            {"role": "assistant", "content": [{k: use[k] for k in ("type", "id", "name", "input")}]},
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": use["id"], "content": "22°C"}],
            },
        ],
    }
    chat = translate(next_turn, aspec, spec)
    assert chat["messages"][1]["tool_calls"] == [
        {
            "id": "call_w1",
            "type": "function",
            "function": {"name": "get_weather", "arguments": '{"city":"Lima"}'},
        }
    ]
    assert chat["messages"][2] == {"role": "tool", "tool_call_id": "call_w1", "content": "22°C"}


# -- errors -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "type_"),
    [
        (400, "invalid_request_error"),
        (401, "authentication_error"),
        (403, "permission_error"),
        (404, "not_found_error"),
        (429, "rate_limit_error"),
        (500, "api_error"),
        (502, "api_error"),
        (503, "api_error"),
        (504, "timeout_error"),
        (529, "overloaded_error"),
        (418, "invalid_request_error"),
    ],
)
def test_error_bodies_take_their_type_from_the_status(status, type_, aspec) -> None:
    body = aspec.validate("ErrorResponse", error_body(status, "nope"))
    assert body == {"type": "error", "error": {"type": type_, "message": "nope"}, "request_id": None}


def test_request_too_large_has_its_documented_type() -> None:
    # Anthropic's error docs list 413 request_too_large; the OpenAPI spec's enum lacks it.
    assert error_type(413) == "request_too_large"
    assert orjson.loads(error_body(413, "big"))["error"]["type"] == "request_too_large"


def test_an_explicit_type_wins(aspec) -> None:
    body = aspec.validate("ErrorResponse", error_body(400, "overloaded upstream", "overloaded_error"))
    assert body["error"]["type"] == "overloaded_error"


def test_an_openai_error_keeps_its_message_and_takes_the_status_type(aspec) -> None:
    upstream = orjson.dumps(
        {
            "error": {
                "message": "Incorrect API key provided",
                "type": "invalid_request_error",
                "param": None,
                "code": "invalid_api_key",
            }
        }
    )
    body = aspec.validate("ErrorResponse", openai_error_to_anthropic(401, upstream))
    assert body["error"] == {"type": "authentication_error", "message": "Incorrect API key provided"}


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"<html>Bad Gateway</html>", "<html>Bad Gateway</html>"),
        (b'{"error": "model overloaded"}', "model overloaded"),
        (b'{"message": "quota"}', "quota"),
        (b"", "upstream answered HTTP 502"),
    ],
)
def test_error_bodies_that_are_not_openai_shaped_keep_their_text(raw, message, aspec) -> None:
    body = aspec.validate("ErrorResponse", openai_error_to_anthropic(502, raw))
    assert body["error"] == {"type": "api_error", "message": message}


# -- the official SDK, end to end without a socket --------------------------------------------


def sdk_client(handler) -> anthropic.Anthropic:
    return anthropic.Anthropic(
        api_key="sk-test",
        base_url="http://gateway.test",
        max_retries=0,
        http_client=httpx2.Client(transport=httpx2.MockTransport(handler)),
    )


def test_the_anthropic_sdk_gets_its_answer_through_the_translation(spec) -> None:
    seen: list[dict[str, Any]] = []

    def gateway(request: httpx2.Request) -> httpx2.Response:
        chat = messages_to_chat(orjson.loads(request.content), "gpt-4o-mini")
        spec.validate("CreateChatCompletionRequest", chat)
        seen.append(chat)
        upstream = completion(
            {
                "content": "Paris.",
                "tool_calls": [
                    {
                        "id": "call_9",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                    }
                ],
            },
            finish_reason="tool_calls",
            usage={"prompt_tokens": 30, "completion_tokens": 8, "total_tokens": 38},
        )
        return httpx2.Response(
            200,
            content=orjson.dumps(chat_to_message(upstream, "claude-sonnet-4-6")),
            headers={"content-type": "application/json"},
        )

    message = sdk_client(gateway).messages.create(
        model="claude-sonnet-4-6",
        max_tokens=64,
        system="Be brief.",
        tools=[WEATHER_TOOL],
        messages=[{"role": "user", "content": "Capital of France, and its weather?"}],
    )
    assert seen[0]["messages"][0] == {"role": "system", "content": "Be brief."}
    assert message.content[0].type == "text" and message.content[0].text == "Paris."
    assert message.content[1].type == "tool_use" and message.content[1].input == {"city": "Paris"}
    assert message.stop_reason == "tool_use"
    assert (message.usage.input_tokens, message.usage.output_tokens) == (30, 8)


@pytest.mark.parametrize(
    ("status", "exception"),
    [
        (400, anthropic.BadRequestError),
        (401, anthropic.AuthenticationError),
        (429, anthropic.RateLimitError),
        (529, anthropic.InternalServerError),
    ],
)
def test_the_anthropic_sdk_raises_the_right_exception_for_our_errors(status, exception) -> None:
    def gateway(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(
            status, content=error_body(status, "explained"), headers={"content-type": "application/json"}
        )

    with pytest.raises(exception) as caught:
        sdk_client(gateway).messages.create(
            model="m", max_tokens=5, messages=[{"role": "user", "content": "x"}]
        )
    assert caught.value.status_code == status
    assert caught.value.body["error"]["message"] == "explained"
