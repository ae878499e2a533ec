"""Messages requests as coding agents (Claude Code 2.1.x) send them, translated for chat upstreams.

Requests are checked against Anthropic's published spec before translation and against OpenAI's
after, so a field the translation lets through is one both sides define.
"""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from support.anthropic_spec import anthropic_spec
from support.schema import SpecValidator

from sluicegate.providers.anthropic import (
    chat_to_message,
    dropped_fields,
    messages_to_chat,
    reasoning_effort,
    thinking_mode,
)
from sluicegate.providers.anthropic_answer import matched_stop, thinking_signature
from sluicegate.providers.chat_fit import fit_for_upstream


@pytest.fixture(scope="module")
def aspec() -> SpecValidator:
    return anthropic_spec()


@pytest.fixture(scope="module")
def spec() -> SpecValidator:
    return SpecValidator.load()


def translate(body: dict[str, Any], aspec: SpecValidator, spec: SpecValidator) -> dict[str, Any]:
    aspec.validate("BetaCreateMessageParams", {"model": "claude-opus-4-8", **body})  # ?beta=true
    chat = messages_to_chat(body, "served-model")
    spec.validate("CreateChatCompletionRequest", chat)
    return chat


# What Claude Code 2.1.197 sends with its default model, trimmed to the parts that matter.
CLAUDE_CODE = {
    "max_tokens": 64000,
    "stream": True,
    "system": [
        {"type": "text", "text": "x-anthropic-billing-header: cc_version=2.1.197"},
        {"type": "text", "text": "You are a Claude agent.", "cache_control": {"type": "ephemeral"}},
    ],
    "messages": [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "<system-reminder>today</system-reminder>"},
                {"type": "text", "text": "Say hi", "cache_control": {"type": "ephemeral"}},
            ],
        },
        {"role": "system", "content": "Available agent types: claude, Explore."},
    ],
    "tools": [
        {
            "name": "Bash",
            "description": "Run a command",
            "input_schema": {"type": "object", "properties": {"command": {"type": "string"}}},
            "cache_control": {"type": "ephemeral"},
        }
    ],
    "metadata": {"user_id": '{"device_id":"abc"}'},
    "thinking": {"type": "adaptive"},
    "context_management": {"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]},
    "output_config": {"effort": "high"},
}


def test_a_system_message_inside_messages_stays_in_place(aspec, spec) -> None:
    chat = translate(CLAUDE_CODE, aspec, spec)
    assert [m["role"] for m in chat["messages"]] == ["system", "user", "system"]
    assert chat["messages"][2]["content"] == "Available agent types: claude, Explore."


def test_system_message_blocks_with_cache_control_become_one_text(aspec, spec) -> None:
    body = {
        "max_tokens": 10,
        "messages": [
            {"role": "user", "content": "hi"},
            {
                "role": "system",
                "content": [
                    {"type": "text", "text": "one", "cache_control": {"type": "ephemeral"}},
                    {"type": "text", "text": "two"},
                ],
            },
        ],
    }
    chat = translate(body, aspec, spec)
    assert chat["messages"][1] == {"role": "system", "content": "one\n\ntwo"}


def test_claude_codes_request_translates_with_effort_and_without_anthropic_only_fields(aspec, spec) -> None:
    chat = translate(CLAUDE_CODE, aspec, spec)
    assert chat["reasoning_effort"] == "high"
    assert "context_management" not in chat and "output_config" not in chat and "thinking" not in chat
    assert "cache_control" not in str(chat)
    assert chat["tools"][0]["function"]["name"] == "Bash"
    assert chat["max_tokens"] == 64000


def test_fields_with_no_upstream_counterpart_are_listed_for_the_debug_log() -> None:
    body = {**CLAUDE_CODE, "service_tier": "auto", "container": "c", "mcp_servers": []}
    assert dropped_fields(body) == [
        "container",
        "context_management",
        "mcp_servers",
        "metadata",
        "service_tier",
    ]
    assert "user" not in messages_to_chat(body, "m"), "Claude Code's device id stays at the gateway"


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"output_config": {"effort": "low"}}, "low"),
        ({"output_config": {"effort": "medium"}}, "medium"),
        ({"output_config": {"effort": "high"}}, "high"),
        ({"output_config": {"effort": "xhigh"}}, "high"),
        ({"output_config": {"effort": "max"}}, "high"),
        ({"thinking": {"type": "enabled", "budget_tokens": 1024}}, "low"),
        ({"thinking": {"type": "enabled", "budget_tokens": 8000}}, "medium"),
        ({"thinking": {"type": "enabled", "budget_tokens": 32000}}, "high"),
        (
            {"thinking": {"type": "enabled", "budget_tokens": 32000}, "output_config": {"effort": "low"}},
            "low",
        ),
        ({"thinking": {"type": "adaptive"}}, None),
        ({"thinking": {"type": "disabled"}}, None),
        ({}, None),
    ],
)
def test_thinking_and_effort_map_onto_reasoning_effort(body: dict[str, Any], expected: str | None) -> None:
    assert reasoning_effort(body) == expected


@pytest.mark.parametrize(
    ("thinking", "mode"),
    [
        ({"type": "adaptive"}, "show"),
        ({"type": "enabled", "budget_tokens": 2048}, "show"),
        ({"type": "adaptive", "display": "omitted"}, "omit"),
        ({"type": "disabled"}, "drop"),
        (None, "drop"),
    ],
)
def test_thinking_mode_follows_the_request(thinking: Any, mode: str) -> None:
    assert thinking_mode({"thinking": thinking} if thinking else {}) == mode


def test_thinking_blocks_sent_back_in_later_turns_are_dropped_not_refused(aspec, spec) -> None:
    body = {
        "max_tokens": 10,
        "messages": [
            {"role": "user", "content": "q"},
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": "hmm", "signature": "sluicegate.v1.abc"},
                    {"type": "redacted_thinking", "data": "opaque"},
                    {"type": "text", "text": "a"},
                ],
            },
            {"role": "user", "content": "next"},
        ],
    }
    chat = translate(body, aspec, spec)
    assert chat["messages"][1] == {"role": "assistant", "content": "a"}
    assert "hmm" not in str(chat) and "reasoning_content" not in str(chat)


TOOL_TURN_WITH_THINKING = {
    "max_tokens": 10,
    "messages": [
        {"role": "user", "content": "list files"},
        {
            "role": "assistant",
            "content": [
                {"type": "thinking", "thinking": "I should run ls.", "signature": "sluicegate.v1.abc"},
                {"type": "tool_use", "id": "call_1", "name": "Bash", "input": {"command": "ls"}},
            ],
        },
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "call_1", "content": "a.txt"}]},
    ],
}


def test_the_reasoning_of_a_tool_call_turn_goes_back_as_reasoning_content(aspec, spec) -> None:
    # DeepSeek's thinking mode answers 400 to a tool-call turn without its reasoning_content.
    aspec.validate("CreateMessageParams", {"model": "m", **TOOL_TURN_WITH_THINKING})
    chat = messages_to_chat(TOOL_TURN_WITH_THINKING, "served-model")
    assert chat["messages"][1]["reasoning_content"] == "I should run ls."
    assert chat["messages"][1]["tool_calls"][0]["id"] == "call_1"


def test_reasoning_history_is_removed_for_upstreams_that_do_not_take_it(spec) -> None:
    chat = messages_to_chat(TOOL_TURN_WITH_THINKING, "served-model")
    fitted = fit_for_upstream(
        chat, content_as_string=False, drop_reasoning_effort=False, drop_reasoning_history=True
    )
    assert fitted is not None and "reasoning_content" not in fitted["messages"][1]
    assert fitted["messages"][1]["tool_calls"] == chat["messages"][1]["tool_calls"]
    spec.validate("CreateChatCompletionRequest", fitted)
    assert "reasoning_content" in chat["messages"][1], "the translated request itself is unchanged"


def test_tool_results_with_errors_and_images_round_trip(aspec, spec) -> None:
    body = {
        "max_tokens": 10,
        "messages": [
            {"role": "user", "content": "run it"},
            {
                "role": "assistant",
                "content": [
                    {"type": "tool_use", "id": "toolu_1", "name": "Bash", "input": {"command": "ls"}}
                ],
            },
            {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": "toolu_1",
                        "is_error": True,
                        "cache_control": {"type": "ephemeral"},
                        "content": [
                            {"type": "text", "text": "no such dir"},
                            {
                                "type": "image",
                                "source": {"type": "base64", "media_type": "image/png", "data": "iVBO"},
                            },
                        ],
                    }
                ],
            },
        ],
    }
    chat = translate(body, aspec, spec)
    assert chat["messages"][1]["tool_calls"][0]["id"] == "toolu_1"
    assert chat["messages"][2] == {"role": "tool", "tool_call_id": "toolu_1", "content": "Error: no such dir"}
    assert chat["messages"][3]["content"][0]["image_url"]["url"].startswith("data:image/png;base64,")


# -- fitting a request to one upstream ------------------------------------------------------------


def test_text_only_content_lists_become_one_string_for_upstreams_that_need_it(aspec, spec) -> None:
    chat = translate(CLAUDE_CODE, aspec, spec)
    fitted = fit_for_upstream(chat, content_as_string=True, drop_reasoning_effort=False)
    assert fitted is not None
    assert fitted["messages"][1]["content"] == "<system-reminder>today</system-reminder>\nSay hi"
    assert isinstance(chat["messages"][1]["content"], list), "the translated request itself is unchanged"
    spec.validate("CreateChatCompletionRequest", fitted)


def test_content_with_an_image_stays_a_list() -> None:
    chat = {
        "model": "m",
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "look"},
                    {"type": "image_url", "image_url": {"url": "x"}},
                ],
            }
        ],
    }
    assert fit_for_upstream(chat, content_as_string=True, drop_reasoning_effort=False) is None


def test_reasoning_effort_is_dropped_for_upstreams_without_it() -> None:
    chat = {"model": "m", "messages": [{"role": "user", "content": "x"}], "reasoning_effort": "high"}
    fitted = fit_for_upstream(chat, content_as_string=False, drop_reasoning_effort=True)
    assert fitted == {"model": "m", "messages": [{"role": "user", "content": "x"}]}


def test_max_tokens_above_the_upstreams_limit_is_lowered_to_it(aspec, spec) -> None:
    chat = translate(CLAUDE_CODE, aspec, spec)  # max_tokens 64000
    fitted = fit_for_upstream(
        chat, content_as_string=False, drop_reasoning_effort=False, max_output_tokens=8192
    )
    assert fitted is not None and fitted["max_tokens"] == 8192
    assert chat["max_tokens"] == 64000
    small = {"model": "m", "messages": [], "max_completion_tokens": 100}
    assert (
        fit_for_upstream(small, content_as_string=False, drop_reasoning_effort=False, max_output_tokens=8192)
        is None
    )
    big = {"model": "m", "messages": [], "max_completion_tokens": 100_000}
    fitted = fit_for_upstream(
        big, content_as_string=False, drop_reasoning_effort=False, max_output_tokens=8192
    )
    assert fitted == {"model": "m", "messages": [], "max_completion_tokens": 8192}


def test_a_request_that_fits_is_not_copied() -> None:
    chat = {"model": "m", "messages": [{"role": "user", "content": "x"}]}
    assert fit_for_upstream(chat, content_as_string=True, drop_reasoning_effort=True) is None


# -- answers -------------------------------------------------------------------------------------


def completion(message: dict[str, Any], finish: str = "stop", **choice: Any) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": "m",
        "choices": [
            {"index": 0, "message": {"role": "assistant", **message}, "finish_reason": finish, **choice}
        ],
    }


def test_reasoning_content_becomes_a_signed_thinking_block(aspec) -> None:
    chat = completion({"content": "42", "reasoning_content": "six times seven"})
    message = chat_to_message(chat, "claude-opus-4-8", thinking="show")
    aspec.validate("Message", message)
    assert message["content"][0] == {
        "type": "thinking",
        "thinking": "six times seven",
        "signature": thinking_signature(hashlib.sha256(b"six times seven")),
    }
    assert message["content"][1]["text"] == "42"


def test_reasoning_is_left_out_when_thinking_was_not_asked_for(aspec) -> None:
    message = chat_to_message(completion({"content": "42", "reasoning_content": "x"}), "m")
    assert [b["type"] for b in message["content"]] == ["text"]


def test_a_whole_answer_ending_with_a_stop_sequence_reports_it(aspec) -> None:
    message = chat_to_message(completion({"content": "result: END"}), "m", stops=["END"])
    aspec.validate("Message", message)
    assert (message["stop_reason"], message["stop_sequence"]) == ("stop_sequence", "END")


@pytest.mark.parametrize(
    ("finish", "said", "tail", "stops", "expected"),
    [
        ("stop", "###", "", ["###"], "###"),  # vLLM names it
        ("stop", None, "text END", ["END"], "END"),  # the text ends with it
        ("stop", None, "text", ["END"], None),  # OpenAI: no way to tell, so a natural end
        ("length", None, "text END", ["END"], None),
        ("stop", "other", "", ["END"], None),  # named but not one the client asked for
        ("stop", 128009, "", [], None),  # vLLM's stop token id is not a stop sequence
    ],
)
def test_the_matched_stop_rule(
    finish: str, said: Any, tail: str, stops: list[str], expected: str | None
) -> None:
    assert matched_stop(finish, said, tail, stops) == expected
