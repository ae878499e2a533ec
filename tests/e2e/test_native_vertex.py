"""Vertex AI end to end: a service-account file becomes OAuth tokens (google-auth, against a stand-in
token endpoint that verifies the JWT assertion's signature with the account's public key), refreshed
before they expire, and Gemini and Claude models on Vertex are reached through the official OpenAI SDK."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest
from support import anthropic_upstream as claude
from support import gemini_upstream as gemini
from support.gateway import Gateway, start_gateway
from support.schema import SpecValidator, assert_stream, parse_sse
from support.vertex_upstream import PROJECT, REGION, VertexUpstream, service_account, trusted_vertex_config

from sluicegate.protocol.errors import UpstreamUnavailable
from sluicegate.providers.google_tokens import GoogleTokens

ROOT = f"/v1/projects/{PROJECT}/locations/{REGION}/publishers"


@pytest.fixture(scope="module")
def env() -> Iterator[tuple[Gateway, VertexUpstream]]:
    upstream = VertexUpstream()
    vertex = trusted_vertex_config(upstream, "sg-vertex-")
    config = {
        "upstreams": {"vertex": vertex},
        "models": {"gemini-2.5-pro": "vertex", "claude-sonnet-4-5": "vertex/claude-sonnet-4-5@20250929"},
        "timeouts": {"connect": 2, "first_byte": 10, "idle": 10, "total": 30},
    }
    gateway = start_gateway(config)
    try:
        yield gateway, upstream
    finally:
        gateway.stop()
        upstream.close()


def client(gateway: Gateway) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.base_url, api_key="sk-client", max_retries=0)


def test_gemini_on_vertex_is_called_with_a_token_from_the_service_account(
    env: tuple[Gateway, VertexUpstream], spec: SpecValidator
) -> None:
    gateway, upstream = env
    answer = client(gateway).chat.completions.create(
        model="gemini-2.5-pro", messages=[{"role": "user", "content": "Hi"}]
    )
    got = upstream.last
    assert got.path == f"{ROOT}/google/models/gemini-2.5-pro:generateContent"
    assert got.authorization.removeprefix("Bearer ") in upstream.tokens, "a token the token endpoint issued"
    assert answer.choices[0].message.content == gemini.TEXT
    spec.validate("CreateChatCompletionResponse", answer.model_dump(exclude_unset=True))


def test_claude_on_vertex_uses_raw_predict_with_the_vertex_anthropic_version(
    env: tuple[Gateway, VertexUpstream], spec: SpecValidator
) -> None:
    gateway, upstream = env
    answer = client(gateway).chat.completions.create(
        model="claude-sonnet-4-5", messages=[{"role": "user", "content": "Hi"}]
    )
    got = upstream.last
    assert got.path == f"{ROOT}/anthropic/models/claude-sonnet-4-5@20250929:rawPredict"
    assert got.body["anthropic_version"] == "vertex-2023-10-16" and "model" not in got.body
    assert answer.choices[0].message.content == claude.TEXT
    assert answer.usage.prompt_tokens == claude.INPUT


def test_claude_on_vertex_streams_as_chat_chunks(
    env: tuple[Gateway, VertexUpstream], spec: SpecValidator
) -> None:
    gateway, upstream = env
    with httpx.stream(
        "POST",
        f"{gateway.base_url}/chat/completions",
        timeout=30,
        json={"model": "claude-sonnet-4-5", "stream": True, "messages": [{"role": "user", "content": "Hi"}]},
    ) as resp:
        events = parse_sse(resp.read())
    assert upstream.last.path.endswith(":streamRawPredict")
    chunks = assert_stream(events, include_usage=False, spec=spec)
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks) == claude.TEXT


def test_gemini_on_vertex_streams_as_chat_chunks(
    env: tuple[Gateway, VertexUpstream], spec: SpecValidator
) -> None:
    gateway, upstream = env
    with httpx.stream(
        "POST",
        f"{gateway.base_url}/chat/completions",
        timeout=30,
        json={"model": "gemini-2.5-pro", "stream": True, "messages": [{"role": "user", "content": "Hi"}]},
    ) as resp:
        events = parse_sse(resp.read())
    assert upstream.last.path.endswith(":streamGenerateContent") and upstream.last.query == "alt=sse"
    chunks = assert_stream(events, include_usage=False, spec=spec)
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks) == gemini.TEXT


def test_tokens_are_refreshed_before_they_expire(tmp_path: Path) -> None:
    upstream = VertexUpstream(expires_in=302)  # 2 s before the 300 s refresh margin
    try:
        upstream.trust(service_account(tmp_path / "sa.json", upstream.token_uri).public_key())
        tokens = GoogleTokens(str(tmp_path / "sa.json"))
        first = tokens.current(wait_s=10)
        deadline = time.monotonic() + 20
        while tokens.current() == first and time.monotonic() < deadline:
            time.sleep(0.05)
        second = tokens.current()
        tokens.close()
        assert second != first, "a token near its expiry was replaced in the background"
        assert second in upstream.tokens and upstream.tokens[second] > upstream.tokens[first]
    finally:
        upstream.close()


def test_an_assertion_signed_by_another_key_gets_no_token(tmp_path: Path) -> None:
    upstream = VertexUpstream()
    try:
        service_account(tmp_path / "sa.json", upstream.token_uri)
        upstream.trust(service_account(tmp_path / "other.json", upstream.token_uri).public_key())
        tokens = GoogleTokens(str(tmp_path / "sa.json"))
        with pytest.raises(UpstreamUnavailable):
            tokens.current(wait_s=3)
        tokens.close()
        assert upstream.refused_assertions >= 1 and not upstream.tokens
    finally:
        upstream.close()
