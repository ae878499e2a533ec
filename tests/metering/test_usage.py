"""Usage is read from every shape an upstream answers in, and a missing usage is None, not zero."""

from __future__ import annotations

import orjson
import pytest

from sluicegate.metering.tokens import TokenCounter
from sluicegate.metering.usage import (
    Usage,
    completion_texts,
    ensure_usage_requested,
    usage_from_body,
    usage_or_estimate,
)

OPENAI_BODY = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "model": "o4-mini-2025-04-16",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "4"}, "finish_reason": "stop"}],
    "usage": {
        "prompt_tokens": 1200,
        "completion_tokens": 340,
        "total_tokens": 1540,
        "prompt_tokens_details": {"cached_tokens": 1024, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 320, "audio_tokens": 0},
    },
}


def test_openai_body_bytes_give_all_four_counts() -> None:
    assert usage_from_body(orjson.dumps(OPENAI_BODY)) == Usage(1200, 340, 1024, 320, estimated=False)


def test_a_parsed_dict_is_accepted_as_well_as_bytes() -> None:
    assert usage_from_body(OPENAI_BODY) == usage_from_body(orjson.dumps(OPENAI_BODY))


def test_anthropic_prompt_includes_cache_reads_and_writes() -> None:
    body = {
        "type": "message",
        "content": [{"type": "text", "text": "hi"}],
        "usage": {
            "input_tokens": 50,
            "cache_read_input_tokens": 2000,
            "cache_creation_input_tokens": 300,
            "output_tokens": 80,
        },
    }
    assert usage_from_body(body) == Usage(
        prompt_tokens=2350, completion_tokens=80, cached_tokens=2000, cache_write_tokens=300
    )


def test_anthropic_usage_with_output_tokens_details_is_not_read_as_responses_usage() -> None:
    # Anthropic's current Message usage carries `output_tokens_details` (null) beside its cache fields;
    # read as the Responses API's shape, cache reads and writes were lost from prompt_tokens.
    usage = {
        "input_tokens": 21,
        "output_tokens": 7,
        "cache_creation_input_tokens": 1500,
        "cache_read_input_tokens": 3000,
        "output_tokens_details": None,
    }
    assert usage_from_body({"usage": usage}) == Usage(
        prompt_tokens=4521, completion_tokens=7, cached_tokens=3000, cache_write_tokens=1500
    )


def test_bedrock_converse_usage_adds_cache_reads_and_writes_to_the_prompt() -> None:
    usage = {"inputTokens": 30, "outputTokens": 8, "cacheReadInputTokens": 100, "cacheWriteInputTokens": 50}
    assert usage_from_body({"usage": usage}) == Usage(
        prompt_tokens=180, completion_tokens=8, cached_tokens=100, cache_write_tokens=50
    )


def test_cache_writes_are_priced_at_the_cache_write_price() -> None:
    from sluicegate.metering.prices import Price

    price = Price(input=3.0, output=15.0, cached_input=0.3, cache_write_input=3.75)
    usage = Usage(prompt_tokens=4521, completion_tokens=7, cached_tokens=3000, cache_write_tokens=1500)
    assert price.cost(usage) == pytest.approx((21 * 3.0 + 1500 * 3.75 + 3000 * 0.3 + 7 * 15.0) / 1e6)


def test_embeddings_usage_has_prompt_tokens_only() -> None:
    body = {
        "object": "list",
        "data": [],
        "model": "text-embedding-3-small",
        "usage": {"prompt_tokens": 8, "total_tokens": 8},
    }
    assert usage_from_body(body) == Usage(prompt_tokens=8)


def test_deepseek_cache_hits_reported_at_top_level_count_as_cached() -> None:
    body = {
        "usage": {
            "prompt_tokens": 100,
            "completion_tokens": 5,
            "prompt_cache_hit_tokens": 64,
            "prompt_cache_miss_tokens": 36,
        }
    }
    assert usage_from_body(body) == Usage(100, 5, cached_tokens=64)


def test_gemini_native_thoughts_are_part_of_the_completion() -> None:
    body = {
        "usageMetadata": {
            "promptTokenCount": 10,
            "candidatesTokenCount": 5,
            "thoughtsTokenCount": 40,
            "cachedContentTokenCount": 4,
        }
    }
    assert usage_from_body(body) == Usage(10, 45, cached_tokens=4, reasoning_tokens=40)


def test_a_body_without_usage_reports_none() -> None:
    assert usage_from_body({"choices": [{"message": {"content": "x"}}]}) is None
    assert usage_from_body({"usage": None}) is None
    assert usage_from_body({"usage": {}}) is None


def test_a_body_that_is_not_json_reports_none_instead_of_failing() -> None:
    assert usage_from_body(b"<html>502 Bad Gateway</html>") is None
    assert usage_from_body(b"[1, 2]") is None


def test_null_and_negative_counts_are_read_as_zero() -> None:
    assert usage_from_body({"usage": {"prompt_tokens": None, "completion_tokens": -3}}) == Usage()


def test_ensure_usage_requested_adds_include_usage_and_says_the_client_did_not_ask() -> None:
    body: dict = {"model": "m", "stream": True}
    assert ensure_usage_requested(body) is False
    assert body["stream_options"] == {"include_usage": True}


def test_ensure_usage_requested_keeps_other_stream_options_and_reports_an_explicit_ask() -> None:
    body: dict = {"stream_options": {"include_usage": True, "continuous_usage_stats": False}}
    assert ensure_usage_requested(body) is True
    assert body["stream_options"] == {"include_usage": True, "continuous_usage_stats": False}


def test_ensure_usage_requested_overrides_an_explicit_false() -> None:
    body: dict = {"stream_options": {"include_usage": False}}
    assert ensure_usage_requested(body) is False
    assert body["stream_options"]["include_usage"] is True


def test_completion_text_includes_reasoning_and_tool_call_arguments() -> None:
    doc = {
        "choices": [
            {
                "message": {
                    "content": "Let me check.",
                    "reasoning_content": "The user wants weather.",
                    "tool_calls": [
                        {
                            "id": "c1",
                            "type": "function",
                            "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                        }
                    ],
                }
            }
        ]
    }
    assert list(completion_texts(doc)) == [
        "Let me check.",
        "The user wants weather.",
        "get_weather",
        '{"city":"Paris"}',
    ]


def test_a_response_without_usage_is_counted_and_marked_estimated(counter: TokenCounter) -> None:
    request = {
        "model": "gpt-4o-mini",
        "messages": [
            {"role": "system", "content": "You are a helpful assistant."},
            {"role": "user", "content": "Hello!"},
        ],
    }
    response = {
        "choices": [{"message": {"role": "assistant", "content": "Hello! How can I help you today?"}}]
    }
    assert usage_or_estimate(orjson.dumps(response), counter, request) == Usage(19, 9, estimated=True)


def test_a_response_with_usage_is_not_counted() -> None:
    class Refuses:
        def count_text(self, text: str, model: str | None = None) -> int:
            raise AssertionError("counted although the upstream reported usage")

        def count_request(self, body: dict, model: str | None = None) -> int:
            raise AssertionError("counted although the upstream reported usage")

    assert usage_or_estimate(OPENAI_BODY, Refuses(), {"messages": []}).prompt_tokens == 1200
