"""Amazon Bedrock end to end: requests SigV4-signed by botocore (the stand-in recomputes the signature
from the same secret), Converse and ConverseStream (AWS event-stream framing, parsed by botocore) turned
into chat for the official OpenAI SDK, tool use, signed reasoning, cache usage priced to the cent."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import orjson
import pytest
from metering_kit import LogTable, wait_for_request
from support.bedrock_upstream import (
    ACCESS_KEY,
    CACHE_READ,
    CACHE_WRITE,
    INPUT,
    OUTPUT,
    REASONING,
    REGION,
    SECRET_KEY,
    SIGNATURE,
    TEXT,
    BedrockUpstream,
)
from support.gateway import Gateway, start_gateway
from support.schema import SpecValidator, assert_stream, parse_sse

MODEL = "claude-sonnet-4-5"
UPSTREAM_MODEL = "anthropic.claude-sonnet-4-5-v1"
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}


@pytest.fixture(scope="module")
def env() -> Iterator[tuple[Gateway, BedrockUpstream, LogTable]]:
    upstream = BedrockUpstream()
    db = Path(tempfile.mkdtemp(prefix="sg-bedrock-")) / "log.db"
    aws = {
        "preset": "bedrock",
        "base_url": upstream.root,
        "region": REGION,
        "aws_access_key_id": ACCESS_KEY,
        "aws_secret_access_key": SECRET_KEY,
    }
    config = {
        "database": f"sqlite:///{db}",
        "metering": {"flush_interval_s": 0.2},
        "upstreams": {"aws": aws, "aws-wrong": {**aws, "aws_secret_access_key": "not-the-secret"}},
        "models": {MODEL: f"aws/{UPSTREAM_MODEL}", "wrong-model": f"aws-wrong/{UPSTREAM_MODEL}"},
        "routing": {"max_attempts": 1},
        "timeouts": {"connect": 2, "first_byte": 10, "idle": 10, "total": 30},
    }
    gateway = start_gateway(config)
    try:
        yield gateway, upstream, LogTable(f"sqlite:///{db}")
    finally:
        gateway.stop()
        upstream.close()


def client(gateway: Gateway) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.base_url, api_key="sk-client", max_retries=0)


def test_converse_is_signed_and_translated(env: Any, spec: SpecValidator) -> None:
    gateway, upstream, table = env
    resp = client(gateway).chat.completions.with_raw_response.create(
        model=MODEL, messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
    )
    got = upstream.last
    assert got.path == f"/model/{UPSTREAM_MODEL}/converse"
    assert got.headers["Authorization"].startswith(f"AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/")
    assert got.body["system"] == [{"text": "Be brief."}]
    body = orjson.loads(resp.http_response.content)
    spec.validate("CreateChatCompletionResponse", body)
    assert body["choices"][0]["message"]["content"] == TEXT
    row = wait_for_request(table, resp.headers["x-request-id"])
    assert row["prompt_tokens"] == INPUT + CACHE_READ + CACHE_WRITE and row["cached_tokens"] == CACHE_READ
    expected = (INPUT * 3.00 + CACHE_WRITE * 3.75 + CACHE_READ * 0.30 + OUTPUT * 15.00) / 1e6
    assert row["cost"] == pytest.approx(expected, rel=1e-9)


def test_converse_stream_event_frames_become_chat_chunks(env: Any, spec: SpecValidator) -> None:
    gateway, upstream, _ = env
    with httpx.stream(
        "POST",
        f"{gateway.base_url}/chat/completions",
        timeout=30,
        json={
            "model": MODEL,
            "stream": True,
            "stream_options": {"include_usage": True},
            "messages": [{"role": "user", "content": "Hi"}],
        },
    ) as resp:
        assert resp.headers["content-type"].startswith("text/event-stream")
        events = parse_sse(resp.read())
    assert upstream.last.path == f"/model/{UPSTREAM_MODEL}/converse-stream"
    chunks = assert_stream(events, include_usage=True, spec=spec)
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"]) == TEXT
    assert chunks[-1]["usage"]["prompt_tokens"] == INPUT + CACHE_READ + CACHE_WRITE


def test_tool_use_and_signed_reasoning_round_trip(env: Any, spec: SpecValidator) -> None:
    gateway, upstream, _ = env
    thinking = {"type": "enabled", "budget_tokens": 1024}
    messages: list[Any] = [{"role": "user", "content": "weather in Paris?"}]
    first = httpx.post(
        f"{gateway.base_url}/chat/completions",
        timeout=30,
        json={"model": MODEL, "thinking": thinking, "messages": messages, "tools": [WEATHER_TOOL]},
    ).json()
    spec.validate("CreateChatCompletionResponse", first)
    message = first["choices"][0]["message"]
    assert (
        message["reasoning_content"] == REASONING and message["thinking_blocks"][0]["signature"] == SIGNATURE
    )
    call = message["tool_calls"][0]
    assert call["function"]["name"] == "get_weather" and first["choices"][0]["finish_reason"] == "tool_calls"
    messages += [message, {"role": "tool", "tool_call_id": call["id"], "content": "Sunny"}]
    httpx.post(
        f"{gateway.base_url}/chat/completions",
        timeout=30,
        json={"model": MODEL, "thinking": thinking, "messages": messages, "tools": [WEATHER_TOOL]},
    ).raise_for_status()
    sent = upstream.last.body["messages"]
    assert sent[1]["content"][0] == {
        "reasoningContent": {"reasoningText": {"text": REASONING, "signature": SIGNATURE}}
    }
    assert sent[1]["content"][1]["toolUse"]["toolUseId"] == call["id"]
    assert sent[2]["content"][0]["toolResult"] == {"toolUseId": call["id"], "content": [{"text": "Sunny"}]}


def test_a_request_signed_with_the_wrong_secret_is_refused_and_the_channel_disabled(env: Any) -> None:
    gateway, upstream, _ = env
    with pytest.raises(openai.APIStatusError) as first:
        client(gateway).chat.completions.create(
            model="wrong-model", messages=[{"role": "user", "content": "Hi"}]
        )
    assert first.value.body["code"] == "upstream_auth_error"
    assert "not-the-secret" not in str(first.value.body)
