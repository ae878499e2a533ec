"""/v1/messages: the official anthropic SDK against the real gateway, in front of an OpenAI upstream."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import anthropic
import httpx
import orjson
import pytest
from support.anthropic_spec import anthropic_spec
from support.gateway import Gateway, start_gateway
from support.schema import SpecValidator
from support.upstream import Upstream

KEY = "sk-anthropic-client-1"
PROVIDER_KEY = "sk-upstream-provider-secret"


@pytest.fixture(scope="module")
def env() -> Iterator[tuple[Gateway, Upstream]]:
    """One gateway and one upstream for the module: starting a gateway costs seconds."""
    up = Upstream()
    gateway = start_gateway(
        {
            "keys": [{"key": KEY, "name": "claude-user"}],
            "upstreams": {"up": {"base_url": up.url, "api_key": PROVIDER_KEY}},
            "models": {"claude-compatible": "up/gpt-4o-mini", "demo": "mock/mock-gpt"},
        }
    )
    try:
        yield gateway, up
    finally:
        gateway.stop()
        up.close()


@pytest.fixture
def gw(env: tuple[Gateway, Upstream]) -> Gateway:
    return env[0]


@pytest.fixture
def upstream(env: tuple[Gateway, Upstream]) -> Iterator[Upstream]:
    env[1].behaviour = "ok"
    yield env[1]
    env[1].behaviour = "ok"


@pytest.fixture(scope="module")
def aspec() -> SpecValidator:
    return anthropic_spec()


def client(gw: Gateway, key: str = KEY) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=gw.url, api_key=key, max_retries=0)


def test_create_returns_an_anthropic_message(gw: Gateway, upstream: Upstream, aspec: SpecValidator) -> None:
    raw = httpx.post(
        f"{gw.url}/v1/messages",
        headers={"x-api-key": KEY, "anthropic-version": "2023-06-01"},
        json={
            "model": "claude-compatible",
            "max_tokens": 64,
            "messages": [{"role": "user", "content": "hello"}],
        },
    )
    assert raw.status_code == 200
    body = raw.json()
    aspec.validate("Message", body)
    assert body["type"] == "message" and body["role"] == "assistant"
    assert body["model"] == "claude-compatible"
    assert body["content"][0]["text"].startswith("Echo: hello")
    assert body["stop_reason"] == "end_turn"
    sent = upstream.requests[-1]
    assert sent.path == "/v1/chat/completions"
    assert sent.model == "gpt-4o-mini"
    assert sent.authorization == f"Bearer {PROVIDER_KEY}"


def test_sdk_create_and_usage(gw: Gateway) -> None:
    msg = client(gw).messages.create(
        model="claude-compatible",
        max_tokens=64,
        system="be brief",
        messages=[{"role": "user", "content": "hi there"}],
    )
    assert msg.content[0].type == "text" and "hi there" in msg.content[0].text
    assert msg.usage.input_tokens > 0 and msg.usage.output_tokens > 0


def test_sdk_stream_accumulates_the_same_text(gw: Gateway, upstream: Upstream) -> None:
    with client(gw).messages.stream(
        model="claude-compatible", max_tokens=64, messages=[{"role": "user", "content": "stream me"}]
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text.startswith("Echo: stream me")
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens > 0
    assert upstream.requests[-1].json["stream_options"] == {"include_usage": True}


def test_stream_events_match_the_spec_and_carry_no_done(gw: Gateway, aspec: SpecValidator) -> None:
    with httpx.stream(
        "POST",
        f"{gw.url}/v1/messages",
        headers={"x-api-key": KEY},
        json={
            "model": "claude-compatible",
            "max_tokens": 64,
            "stream": True,
            "messages": [{"role": "user", "content": "events"}],
        },
    ) as r:
        raw = r.read()
    assert r.headers["content-type"].startswith("text/event-stream")
    events = [block for block in raw.decode().split("\n\n") if block.strip()]
    names = [e.splitlines()[0].removeprefix("event: ") for e in events]
    assert names[0] == "message_start" and names[-1] == "message_stop"
    assert "[DONE]" not in raw.decode()
    for event in events:
        data = orjson.loads(event.splitlines()[1].removeprefix("data: "))
        if data["type"] != "ping":  # keep-alive events sit outside the spec's MessageStreamEvent union
            aspec.validate("MessageStreamEvent", data)


def test_the_builtin_mock_serves_messages_too(gw: Gateway) -> None:
    msg = client(gw).messages.create(
        model="demo", max_tokens=32, messages=[{"role": "user", "content": "yo"}]
    )
    assert "mock upstream" in msg.content[0].text


def test_errors_come_back_in_anthropics_shape(gw: Gateway, aspec: SpecValidator) -> None:
    with pytest.raises(anthropic.AuthenticationError) as auth:
        client(gw, key="sk-wrong").messages.create(
            model="claude-compatible", max_tokens=8, messages=[{"role": "user", "content": "x"}]
        )
    aspec.validate("ErrorResponse", auth.value.body)
    with pytest.raises(anthropic.NotFoundError) as missing:
        client(gw).messages.create(
            model="no-such-model", max_tokens=8, messages=[{"role": "user", "content": "x"}]
        )
    body: Any = missing.value.body
    assert body["error"]["type"] == "not_found_error"
    assert PROVIDER_KEY not in str(body)


def test_upstream_error_is_translated(gw: Gateway, upstream: Upstream) -> None:
    upstream.behaviour = "status 400"
    with pytest.raises(anthropic.BadRequestError) as bad:
        client(gw).messages.create(
            model="claude-compatible", max_tokens=8, messages=[{"role": "user", "content": "x"}]
        )
    assert bad.value.body["type"] == "error"
    assert bad.value.body["error"]["type"] == "invalid_request_error"


def test_unsupported_content_is_a_clear_400(gw: Gateway) -> None:
    r = httpx.post(
        f"{gw.url}/v1/messages",
        headers={"x-api-key": KEY},
        json={
            "model": "claude-compatible",
            "max_tokens": 8,
            "messages": [
                {"role": "user", "content": [{"type": "image", "source": {"type": "file", "file_id": "f"}}]}
            ],
        },
    )
    assert r.status_code == 400
    assert r.json()["error"]["type"] == "invalid_request_error"
    assert "source" in r.json()["error"]["message"]


def test_count_tokens(gw: Gateway) -> None:
    r = httpx.post(
        f"{gw.url}/v1/messages/count_tokens",
        headers={"x-api-key": KEY},
        json={"model": "claude-compatible", "messages": [{"role": "user", "content": "hello world"}]},
    )
    assert r.status_code == 200
    assert r.json()["input_tokens"] > 2
