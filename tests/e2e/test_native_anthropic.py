"""The native Anthropic adapter end to end: a real gateway in front of a stand-in Messages API.

OpenAI clients (the official SDK) reach Claude translated both ways, streams included, every answer
and chunk checked against OpenAI's spec; Anthropic clients on /v1/messages pass byte for byte (thinking
signatures, cache_control and cache figures survive), checked against Anthropic's spec; cache reads
and writes are metered and priced as Anthropic prices them; provider errors come back in the
client's shape, and a refused credential takes the channel out of service.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import orjson
import pytest
from metering_kit import LogTable, wait_for_request
from support.anthropic_spec import anthropic_spec
from support.anthropic_upstream import (
    CACHE_READ,
    CACHE_WRITE,
    INPUT,
    OUTPUT,
    PROVIDER_KEY,
    SIGNATURE,
    TEXT,
    THINKING,
    AnthropicUpstream,
)
from support.gateway import Gateway, start_gateway
from support.schema import SpecValidator, assert_stream, parse_sse

MODEL = "claude-sonnet-4-5"
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather of a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


class Env:
    def __init__(self, gateway: Gateway, upstream: AnthropicUpstream, table: LogTable) -> None:
        self.gateway, self.upstream, self.table = gateway, upstream, table

    def openai(self) -> openai.OpenAI:
        return openai.OpenAI(base_url=self.gateway.base_url, api_key="sk-client", max_retries=0)

    def anthropic(self) -> anthropic.Anthropic:
        return anthropic.Anthropic(base_url=self.gateway.url, api_key="sk-client", max_retries=0)


@pytest.fixture(scope="module")
def env() -> Iterator[Env]:
    upstream = AnthropicUpstream()
    db = Path(tempfile.mkdtemp(prefix="sg-native-")) / "log.db"
    claude = {"preset": "anthropic", "base_url": upstream.root, "api_key": PROVIDER_KEY}
    config = {
        "database": f"sqlite:///{db}",
        "metering": {"flush_interval_s": 0.2},
        "upstreams": {
            "claude": claude,
            "claude-busy": claude,
            "claude-broke": claude,
            "claude-badkey": {**claude, "api_key": "sk-ant-revoked"},
        },
        "models": {
            MODEL: "claude",
            "cut-model": "claude/stream-error",
            "busy-model": "claude-busy/overloaded",
            "broke-model": "claude-broke/low-balance",
            "badkey-model": "claude-badkey/claude-sonnet-4-5",
        },
        "routing": {"max_attempts": 1},
        "timeouts": {"connect": 2, "first_byte": 10, "idle": 10, "total": 30},
    }
    gateway = start_gateway(config)
    try:
        yield Env(gateway, upstream, LogTable(f"sqlite:///{db}"))
    finally:
        gateway.stop()
        upstream.close()


@pytest.fixture(scope="module")
def aspec() -> SpecValidator:
    return anthropic_spec()


def test_openai_chat_is_sent_as_a_messages_request_with_anthropic_auth(env: Env, spec: SpecValidator) -> None:
    answer = env.openai().chat.completions.with_raw_response.create(
        model=MODEL,
        messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}],
    )
    got = env.upstream.last
    assert got.headers["x-api-key"] == PROVIDER_KEY
    assert "authorization" not in got.headers
    assert got.headers["anthropic-version"] == "2023-06-01"
    assert got.body["system"] == [{"type": "text", "text": "Be brief."}]
    assert got.body["messages"] == [{"role": "user", "content": [{"type": "text", "text": "Hi"}]}]
    assert got.body["max_tokens"] == 4096
    body = orjson.loads(answer.http_response.content)
    spec.validate("CreateChatCompletionResponse", body)
    assert body["choices"][0]["message"]["content"] == TEXT
    assert body["choices"][0]["finish_reason"] == "stop"
    assert body["usage"]["prompt_tokens"] == INPUT and body["usage"]["completion_tokens"] == OUTPUT


def test_openai_stream_from_claude_is_chat_chunks_with_usage(env: Env, spec: SpecValidator) -> None:
    with httpx.stream(
        "POST",
        f"{env.gateway.base_url}/chat/completions",
        json={
            "model": MODEL,
            "stream": True,
            "stream_options": {"include_usage": True},
            "messages": [{"role": "user", "content": "Hi"}],
        },
        timeout=30,
    ) as resp:
        assert resp.status_code == 200
        raw = resp.read()
    chunks = assert_stream(parse_sse(raw), include_usage=True, spec=spec)
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text == TEXT
    assert [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]][-1] == "stop"
    assert chunks[-1]["usage"]["prompt_tokens"] == INPUT
    assert chunks[-1]["usage"]["completion_tokens"] == OUTPUT


def test_openai_stream_without_include_usage_shows_no_usage_chunk(env: Env, spec: SpecValidator) -> None:
    stream = env.openai().chat.completions.create(
        model=MODEL, stream=True, messages=[{"role": "user", "content": "Hi"}]
    )
    chunks = list(stream)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == TEXT
    assert all(c.usage is None for c in chunks)


def test_tool_calls_round_trip_as_tool_use_and_tool_result(env: Env, spec: SpecValidator) -> None:
    client = env.openai()
    messages: list[Any] = [{"role": "user", "content": "What is the weather in Paris?"}]
    first = client.chat.completions.create(model=MODEL, messages=messages, tools=[WEATHER_TOOL])
    call = first.choices[0].message.tool_calls[0]
    assert first.choices[0].finish_reason == "tool_calls"
    assert call.id == "toolu_01A" and call.function.name == "get_weather"
    assert orjson.loads(call.function.arguments) == {"city": "Paris"}
    assert env.upstream.last.body["tools"][0]["input_schema"]["required"] == ["city"]
    messages += [
        first.choices[0].message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": "Sunny"},
    ]
    client.chat.completions.create(model=MODEL, messages=messages, tools=[WEATHER_TOOL])
    sent = env.upstream.last.body["messages"]
    assert sent[1]["content"][-1] == {
        "type": "tool_use",
        "id": "toolu_01A",
        "name": "get_weather",
        "input": {"city": "Paris"},
    }
    assert sent[2] == {
        "role": "user",
        "content": [{"type": "tool_result", "tool_use_id": "toolu_01A", "content": "Sunny"}],
    }


def test_streamed_tool_call_arrives_as_chat_tool_call_deltas(env: Env, spec: SpecValidator) -> None:
    with httpx.stream(
        "POST",
        f"{env.gateway.base_url}/chat/completions",
        json={
            "model": MODEL,
            "stream": True,
            "tools": [WEATHER_TOOL],
            "messages": [{"role": "user", "content": "weather in Paris?"}],
        },
        timeout=30,
    ) as resp:
        raw = resp.read()
    chunks = assert_stream(parse_sse(raw), include_usage=False, spec=spec)
    calls = [tc for c in chunks for tc in c["choices"][0]["delta"].get("tool_calls") or []]
    assert calls[0]["id"] == "toolu_01A" and calls[0]["function"]["name"] == "get_weather"
    assert orjson.loads("".join(tc["function"]["arguments"] for tc in calls)) == {"city": "Paris"}
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"


def test_thinking_comes_back_with_its_signature_and_goes_out_again(env: Env, spec: SpecValidator) -> None:
    thinking = {"type": "enabled", "budget_tokens": 1024}
    resp = httpx.post(
        f"{env.gateway.base_url}/chat/completions",
        json={
            "model": MODEL,
            "thinking": thinking,
            "max_tokens": 2048,
            "messages": [{"role": "user", "content": "Hi"}],
        },
        timeout=30,
    )
    body = resp.json()
    spec.validate("CreateChatCompletionResponse", body)
    message = body["choices"][0]["message"]
    assert message["reasoning_content"] == THINKING
    assert message["thinking_blocks"] == [{"type": "thinking", "thinking": THINKING, "signature": SIGNATURE}]
    httpx.post(
        f"{env.gateway.base_url}/chat/completions",
        json={
            "model": MODEL,
            "thinking": thinking,
            "max_tokens": 2048,
            "messages": [{"role": "user", "content": "Hi"}, message, {"role": "user", "content": "Again"}],
        },
        timeout=30,
    ).raise_for_status()
    sent = env.upstream.last.body["messages"][1]["content"]
    assert sent[0] == {"type": "thinking", "thinking": THINKING, "signature": SIGNATURE}


def test_streamed_thinking_is_reasoning_content_and_a_signature(env: Env, spec: SpecValidator) -> None:
    with httpx.stream(
        "POST",
        f"{env.gateway.base_url}/chat/completions",
        json={
            "model": MODEL,
            "stream": True,
            "reasoning_effort": "low",
            "messages": [{"role": "user", "content": "Hi"}],
        },
        timeout=30,
    ) as resp:
        raw = resp.read()
    chunks = assert_stream(parse_sse(raw), include_usage=False, spec=spec)
    deltas = [c["choices"][0]["delta"] for c in chunks]
    assert "".join(d.get("reasoning_content") or "" for d in deltas) == THINKING
    assert [b["signature"] for d in deltas for b in d.get("thinking_blocks") or []] == [SIGNATURE]
    assert env.upstream.last.body["thinking"] == {"type": "enabled", "budget_tokens": 2048}


def test_messages_inbound_passes_byte_for_byte_with_betas(env: Env, aspec: SpecValidator) -> None:
    body = (
        b'{"model":"claude-sonnet-4-5","max_tokens":64,"thinking":{"type":"enabled","budget_tokens":1024},'
        b'"system":[{"type":"text","text":"Long cached prompt","cache_control":{"type":"ephemeral"}}],'
        b'"messages":[{"role":"user","content":"Hi"}]}'
    )
    headers = {
        "content-type": "application/json",
        "anthropic-version": "2023-06-01",
        "anthropic-beta": "interleaved-thinking-2025-05-14",
        "x-api-key": "sk-client",
    }
    resp = httpx.post(f"{env.gateway.url}/v1/messages", content=body, headers=headers, timeout=30)
    assert resp.status_code == 200
    got = env.upstream.last
    assert got.raw == body, "the client's bytes must reach Anthropic untouched"
    assert got.headers["anthropic-beta"] == "interleaved-thinking-2025-05-14"
    assert got.headers["x-api-key"] == PROVIDER_KEY, "the client's key is never passed on"
    message = resp.json()
    aspec.validate("Message", message)
    assert message["content"][0] == {"type": "thinking", "thinking": THINKING, "signature": SIGNATURE}
    assert message["usage"]["cache_read_input_tokens"] == CACHE_READ
    assert message["usage"]["cache_creation_input_tokens"] == CACHE_WRITE


def test_messages_stream_passes_through_and_ends_at_message_stop(env: Env, aspec: SpecValidator) -> None:
    with env.anthropic().messages.stream(
        model=MODEL,
        max_tokens=64,
        messages=[{"role": "user", "content": "Hi"}],
        thinking={"type": "enabled", "budget_tokens": 1024},
    ) as stream:
        events = [
            e.model_dump(exclude_none=False)
            for e in stream
            if e.type
            in (
                "message_start",
                "content_block_start",
                "content_block_delta",
                "content_block_stop",
                "message_delta",
                "message_stop",
            )
        ]
        final = stream.get_final_message()
    assert final.content[0].type == "thinking" and final.content[0].signature == SIGNATURE
    assert final.content[1].text == TEXT
    with httpx.stream(
        "POST",
        f"{env.gateway.url}/v1/messages",
        headers={"anthropic-version": "2023-06-01"},
        json={
            "model": MODEL,
            "max_tokens": 64,
            "stream": True,
            "messages": [{"role": "user", "content": "Hi"}],
        },
        timeout=30,
    ) as resp:
        raw = resp.read()
    payloads = parse_sse(raw)
    assert "[DONE]" not in payloads
    for p in payloads:
        event = orjson.loads(p)
        if event["type"] != "ping":  # documented, but not in the spec's MessageStreamEvent union
            aspec.validate("MessageStreamEvent", event)
    assert orjson.loads(payloads[-1])["type"] == "message_stop"
    assert events[-1]["type"] == "message_stop"


def _cost(prompt_plain: int, write: int, read: int, out: int) -> float:
    # claude-sonnet-4-5: $3 input, $3.75 cache writes (1.25x), $0.30 cache reads (0.1x), $15 output.
    return (prompt_plain * 3.00 + write * 3.75 + read * 0.30 + out * 15.00) / 1e6


def test_cache_reads_and_writes_are_metered_and_priced_as_anthropic_prices_them(env: Env) -> None:
    resp = env.openai().chat.completions.with_raw_response.create(
        model=MODEL,
        messages=[
            {
                "role": "system",
                "content": [{"type": "text", "text": "Long prompt", "cache_control": {"type": "ephemeral"}}],
            },
            {"role": "user", "content": "Hi"},
        ],
    )
    assert env.upstream.last.body["system"][0]["cache_control"] == {"type": "ephemeral"}
    usage = resp.parse().usage
    assert usage.prompt_tokens == INPUT + CACHE_WRITE + CACHE_READ
    assert usage.prompt_tokens_details.cached_tokens == CACHE_READ
    row = wait_for_request(env.table, resp.headers["x-request-id"])
    assert row["prompt_tokens"] == INPUT + CACHE_WRITE + CACHE_READ and row["cached_tokens"] == CACHE_READ
    expected = _cost(INPUT, CACHE_WRITE, CACHE_READ, OUTPUT)
    assert row["cost"] == pytest.approx(expected, rel=1e-9)
    assert round(row["cost"], 2) == round(expected, 2) == 0.01


def test_same_wire_stream_is_metered_with_its_cache_figures(env: Env) -> None:
    with httpx.stream(
        "POST",
        f"{env.gateway.url}/v1/messages",
        headers={"anthropic-version": "2023-06-01"},
        json={
            "model": MODEL,
            "max_tokens": 64,
            "stream": True,
            "system": [{"type": "text", "text": "x", "cache_control": {"type": "ephemeral"}}],
            "messages": [{"role": "user", "content": "Hi"}],
        },
        timeout=30,
    ) as resp:
        resp.read()
        request_id = resp.headers["x-request-id"]
    row = wait_for_request(env.table, request_id)
    assert row["prompt_tokens"] == INPUT + CACHE_WRITE + CACHE_READ
    assert row["completion_tokens"] == OUTPUT and row["cached_tokens"] == CACHE_READ
    assert row["cost"] == pytest.approx(_cost(INPUT, CACHE_WRITE, CACHE_READ, OUTPUT), rel=1e-9)


def test_overload_is_an_openai_error_for_chat_and_an_anthropic_one_for_messages(env: Env) -> None:
    with pytest.raises(openai.APIStatusError) as caught:
        env.openai().chat.completions.create(model="busy-model", messages=[{"role": "user", "content": "Hi"}])
    assert caught.value.status_code == 529
    assert caught.value.body["type"] == "overloaded_error" and caught.value.body["message"] == "Overloaded"
    with pytest.raises(anthropic.APIStatusError) as caught2:
        env.anthropic().messages.create(
            model="busy-model", max_tokens=8, messages=[{"role": "user", "content": "Hi"}]
        )
    assert caught2.value.status_code == 529
    assert caught2.value.body["error"]["type"] == "overloaded_error"


def test_a_stream_that_fails_in_band_ends_with_an_openai_error_event(env: Env) -> None:
    with httpx.stream(
        "POST",
        f"{env.gateway.base_url}/chat/completions",
        json={"model": "cut-model", "stream": True, "messages": [{"role": "user", "content": "Hi"}]},
        timeout=30,
    ) as resp:
        payloads = parse_sse(resp.read())
    assert payloads[-1] == "[DONE]"
    error = orjson.loads(payloads[-2])["error"]
    assert error["message"] == "Overloaded"


@pytest.mark.parametrize("model", ["broke-model", "badkey-model"])
def test_balance_and_credential_refusals_take_the_channel_out_of_service(env: Env, model: str) -> None:
    client = env.openai()
    with pytest.raises(openai.APIStatusError) as first:
        client.chat.completions.create(model=model, messages=[{"role": "user", "content": "Hi"}])
    assert first.value.body["code"] == "upstream_auth_error"
    assert "credit balance" not in str(first.value.body) and "x-api-key" not in str(first.value.body)
    seen = len(env.upstream.received)
    with pytest.raises(openai.APIStatusError) as second:
        client.chat.completions.create(model=model, messages=[{"role": "user", "content": "Hi"}])
    assert second.value.status_code == 503 and second.value.body["code"] == "upstreams_unavailable"
    assert len(env.upstream.received) == seen, "a disabled channel is not tried again"
