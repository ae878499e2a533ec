"""The native Gemini adapter end to end: a real gateway in front of a stand-in Gemini API.

OpenAI clients (the official SDK) reach `generateContent` / `streamGenerateContent?alt=sse` with
`x-goog-api-key`, every request checked by the stand-in against Google's published discovery schema;
answers and chunks are checked against OpenAI's spec; function calls keep their thought signatures;
thinking, system instructions, inline images and usage metadata are translated; safety blocks are
`content_filter`; Anthropic clients reach Gemini through the Messages codec; errors come back in
the client's shape, and Google's invalid-key 400 takes the channel out of service.
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
from support.gateway import Gateway, start_gateway
from support.gemini_upstream import (
    API_KEY,
    CACHED,
    CANDIDATES,
    PROMPT,
    TEXT,
    THOUGHT,
    THOUGHT_SIGNATURE,
    THOUGHTS,
    GeminiUpstream,
)
from support.schema import SpecValidator, assert_stream, parse_sse

MODEL = "gemini-2.5-flash"
PRICE = {"input": 0.30, "cached_input": 0.03, "output": 2.50, "currency": "USD"}
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather of a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
PIXEL = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="


class Env:
    def __init__(self, gateway: Gateway, upstream: GeminiUpstream, table: LogTable) -> None:
        self.gateway, self.upstream, self.table = gateway, upstream, table

    def openai(self) -> openai.OpenAI:
        return openai.OpenAI(base_url=self.gateway.base_url, api_key="sk-client", max_retries=0)

    def chat(self, **body: Any) -> httpx.Response:
        return httpx.post(f"{self.gateway.base_url}/chat/completions", json=body, timeout=30)

    def stream(self, **body: Any) -> list[str]:
        with httpx.stream(
            "POST", f"{self.gateway.base_url}/chat/completions", json={**body, "stream": True}, timeout=30
        ) as resp:
            assert resp.status_code == 200
            return parse_sse(resp.read())


@pytest.fixture(scope="module")
def env() -> Iterator[Env]:
    upstream = GeminiUpstream()
    db = Path(tempfile.mkdtemp(prefix="sg-gemini-")) / "log.db"
    gem = {"preset": "gemini", "base_url": upstream.root, "api_key": API_KEY}
    config = {
        "database": f"sqlite:///{db}",
        "metering": {"flush_interval_s": 0.2},
        "upstreams": {"gem": gem, "gem-busy": gem, "gem-badkey": {**gem, "api_key": "AIza-revoked"}},
        "models": {
            MODEL: "gem",
            "blocked-model": "gem/blocked",
            "unsafe-model": "gem/unsafe",
            "busy-model": "gem-busy/overloaded",
            "badkey-model": f"gem-badkey/{MODEL}",
        },
        "prices": {MODEL: PRICE},
        "routing": {"max_attempts": 1},
        "timeouts": {"connect": 2, "first_byte": 10, "idle": 10, "total": 30},
    }
    gateway = start_gateway(config)
    try:
        yield Env(gateway, upstream, LogTable(f"sqlite:///{db}"))
    finally:
        gateway.stop()
        upstream.close()


def test_chat_goes_to_generate_content_with_the_goog_api_key(env: Env, spec: SpecValidator) -> None:
    answer = env.openai().chat.completions.create(
        model=MODEL, messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
    )
    got = env.upstream.last
    assert got.path == f"/v1beta/models/{MODEL}:generateContent"
    assert got.headers["x-goog-api-key"] == API_KEY and "Authorization" not in got.headers
    assert got.body["systemInstruction"] == {"parts": [{"text": "Be brief."}]}
    assert got.body["contents"] == [{"role": "user", "parts": [{"text": "Hi"}]}]
    spec.validate("CreateChatCompletionResponse", answer.model_dump(exclude_unset=True))
    assert answer.choices[0].message.content == TEXT and answer.choices[0].finish_reason == "stop"
    assert answer.usage.prompt_tokens == PROMPT and answer.usage.completion_tokens == CANDIDATES
    assert answer.usage.prompt_tokens_details.cached_tokens == CACHED


def test_stream_goes_to_stream_generate_content_over_sse(env: Env, spec: SpecValidator) -> None:
    events = env.stream(
        model=MODEL, stream_options={"include_usage": True}, messages=[{"role": "user", "content": "Hi"}]
    )
    got = env.upstream.last
    assert got.path == f"/v1beta/models/{MODEL}:streamGenerateContent" and got.query == "alt=sse"
    chunks = assert_stream(events, include_usage=True, spec=spec)
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"]) == TEXT
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["usage"]["prompt_tokens"] == PROMPT


def test_function_calls_round_trip_with_their_thought_signature(env: Env, spec: SpecValidator) -> None:
    messages: list[Any] = [{"role": "user", "content": "What is the weather in Paris?"}]
    first = env.chat(model=MODEL, messages=messages, tools=[WEATHER_TOOL]).json()
    spec.validate("CreateChatCompletionResponse", first)
    message = first["choices"][0]["message"]
    call = message["tool_calls"][0]
    assert first["choices"][0]["finish_reason"] == "tool_calls"
    assert call["function"]["name"] == "get_weather" and orjson.loads(call["function"]["arguments"]) == {
        "city": "Paris"
    }
    assert call["extra_content"] == {"google": {"thought_signature": THOUGHT_SIGNATURE}}
    declared = env.upstream.last.body["tools"][0]["functionDeclarations"][0]
    assert declared["name"] == "get_weather" and declared["parametersJsonSchema"]["required"] == ["city"]
    messages += [message, {"role": "tool", "tool_call_id": call["id"], "content": "Sunny"}]
    env.chat(model=MODEL, messages=messages, tools=[WEATHER_TOOL]).raise_for_status()
    contents = env.upstream.last.body["contents"]
    assert contents[1] == {
        "role": "model",
        "parts": [
            {
                "functionCall": {"name": "get_weather", "args": {"city": "Paris"}},
                "thoughtSignature": THOUGHT_SIGNATURE,
            }
        ],
    }
    assert contents[2]["parts"][0]["functionResponse"]["name"] == "get_weather"
    assert contents[2]["parts"][0]["functionResponse"]["response"] == {"content": "Sunny"}


def test_thinking_is_reasoning_content_and_priced_as_output(env: Env, spec: SpecValidator) -> None:
    resp = env.openai().chat.completions.with_raw_response.create(
        model=MODEL, reasoning_effort="low", messages=[{"role": "user", "content": "Hi"}]
    )
    assert env.upstream.last.body["generationConfig"]["thinkingConfig"] == {
        "thinkingBudget": 1024,
        "includeThoughts": True,
    }
    body = orjson.loads(resp.http_response.content)
    spec.validate("CreateChatCompletionResponse", body)
    assert body["choices"][0]["message"]["reasoning_content"] == THOUGHT
    assert body["choices"][0]["message"]["content"] == TEXT
    usage = body["usage"]
    assert usage["completion_tokens"] == CANDIDATES + THOUGHTS
    assert usage["completion_tokens_details"]["reasoning_tokens"] == THOUGHTS
    row = wait_for_request(env.table, resp.headers["x-request-id"])
    assert row["prompt_tokens"] == PROMPT and row["cached_tokens"] == CACHED
    assert row["completion_tokens"] == CANDIDATES + THOUGHTS and row["reasoning_tokens"] == THOUGHTS
    expected = ((PROMPT - CACHED) * 0.30 + CACHED * 0.03 + (CANDIDATES + THOUGHTS) * 2.50) / 1e6
    assert row["cost"] == pytest.approx(expected, rel=1e-9)


def test_streamed_thoughts_are_reasoning_content_deltas(env: Env, spec: SpecValidator) -> None:
    chunks = assert_stream(
        env.stream(model=MODEL, reasoning_effort="high", messages=[{"role": "user", "content": "Hi"}]),
        include_usage=False,
        spec=spec,
    )
    deltas = [c["choices"][0]["delta"] for c in chunks]
    assert "".join(d.get("reasoning_content") or "" for d in deltas) == THOUGHT
    assert "".join(d.get("content") or "" for d in deltas) == TEXT


def test_an_inline_image_is_sent_as_inline_data(env: Env) -> None:
    content = [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PIXEL}"}},
    ]
    answer = env.chat(model=MODEL, messages=[{"role": "user", "content": content}]).json()
    assert env.upstream.last.body["contents"][0]["parts"][1] == {
        "inlineData": {"mimeType": "image/png", "data": PIXEL}
    }
    assert answer["choices"][0]["message"]["content"] == "saw image/png"


def test_a_blocked_prompt_is_a_content_filter_answer_with_a_refusal(env: Env, spec: SpecValidator) -> None:
    body = env.chat(model="blocked-model", messages=[{"role": "user", "content": "Hi"}]).json()
    spec.validate("CreateChatCompletionResponse", body)
    choice = body["choices"][0]
    assert choice["finish_reason"] == "content_filter" and "SAFETY" in choice["message"]["refusal"]


def test_a_safety_stop_is_a_content_filter_finish_in_a_stream(env: Env, spec: SpecValidator) -> None:
    chunks = assert_stream(
        env.stream(model="unsafe-model", messages=[{"role": "user", "content": "Hi"}]),
        include_usage=False,
        spec=spec,
    )
    assert chunks[-1]["choices"][0]["finish_reason"] == "content_filter"


def test_anthropic_clients_reach_gemini_through_the_messages_codec(env: Env) -> None:
    client = anthropic.Anthropic(base_url=env.gateway.url, api_key="sk-client", max_retries=0)
    message = client.messages.create(
        model=MODEL, max_tokens=64, system="Be brief.", messages=[{"role": "user", "content": "Hi"}]
    )
    anthropic_spec().validate("Message", message.model_dump(mode="json"))
    assert message.content[0].text == TEXT
    assert env.upstream.last.body["systemInstruction"] == {"parts": [{"text": "Be brief."}]}
    assert env.upstream.last.body["generationConfig"]["maxOutputTokens"] == 64


def test_a_provider_overload_is_an_openai_error_with_its_status(env: Env) -> None:
    with pytest.raises(openai.APIStatusError) as caught:
        env.openai().chat.completions.create(model="busy-model", messages=[{"role": "user", "content": "Hi"}])
    assert caught.value.status_code == 503
    assert caught.value.body["code"] == "UNAVAILABLE" and "overloaded" in caught.value.body["message"]


def test_embeddings_on_a_native_gemini_upstream_use_googles_openai_endpoint(env: Env) -> None:
    resp = env.openai().embeddings.create(model=MODEL, input="x")
    got = env.upstream.last
    assert got.path == "/v1beta/openai/embeddings"
    assert got.headers["Authorization"] == f"Bearer {API_KEY}" and "x-goog-api-key" not in got.headers
    assert resp.data[0].embedding == [0.1, 0.2]


def test_googles_invalid_key_takes_the_channel_out_of_service(env: Env) -> None:
    client = env.openai()
    with pytest.raises(openai.APIStatusError) as first:
        client.chat.completions.create(model="badkey-model", messages=[{"role": "user", "content": "Hi"}])
    assert first.value.body["code"] == "upstream_auth_error"
    seen = len(env.upstream.received)
    with pytest.raises(openai.APIStatusError) as second:
        client.chat.completions.create(model="badkey-model", messages=[{"role": "user", "content": "Hi"}])
    assert second.value.status_code == 503
    assert len(env.upstream.received) == seen
