"""`/v1/messages/count_tokens`: relayed to Anthropic itself (an exact count), estimated otherwise.

Anthropic's API counts a prompt exactly (its tokenizer is not public); the gateway's offline
tokenizer only estimates. So for a model whose upstreams are all Anthropic's own API the request goes
there as sent (the official SDK's `messages.count_tokens`), and for any other upstream (here the
Gemini stand-in and an Anthropic-compatible endpoint, which documents no count_tokens) the gateway
answers with its estimate and sends nothing upstream.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import anthropic
import pytest
from support.anthropic_spec import anthropic_spec
from support.anthropic_upstream import COUNTED, PROVIDER_KEY, AnthropicUpstream
from support.gateway import Gateway, start_gateway
from support.gemini_upstream import API_KEY, GeminiUpstream

MESSAGES = [{"role": "user", "content": "How many tokens is this sentence, exactly?"}]


@pytest.fixture(scope="module")
def env() -> Iterator[tuple[Gateway, AnthropicUpstream, GeminiUpstream]]:
    claude, gemini = AnthropicUpstream(), GeminiUpstream()
    gateway = start_gateway(
        {
            "upstreams": {
                "claude": {"preset": "anthropic", "base_url": claude.root, "api_key": PROVIDER_KEY},
                "kimi": {"preset": "moonshot-anthropic", "base_url": claude.root, "api_key": PROVIDER_KEY},
                "gem": {"preset": "gemini", "base_url": gemini.root, "api_key": API_KEY},
            },
            "models": {
                "claude-sonnet-4-5": "claude/claude-sonnet-4-5-20250929",
                "kimi-k2": "kimi",
                "gemini-2.5-flash": "gem",
            },
        }
    )
    try:
        yield gateway, claude, gemini
    finally:
        gateway.stop()
        claude.close()
        gemini.close()


def client(gateway: Gateway) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=gateway.url, api_key="sk-client", max_retries=0)


def test_count_tokens_on_anthropic_is_the_upstreams_exact_count(env: Any) -> None:
    gateway, claude, _ = env
    claude.received.clear()
    counted = client(gateway).messages.count_tokens(
        model="claude-sonnet-4-5", messages=MESSAGES, system="Be exact."
    )
    assert counted.input_tokens == COUNTED
    anthropic_spec().validate("CountMessageTokensResponse", counted.model_dump())
    assert len(claude.received) == 1, "count_tokens did not reach the Anthropic upstream exactly once"
    sent = claude.received[0]
    assert sent.body == {"model": "claude-sonnet-4-5-20250929", "messages": MESSAGES, "system": "Be exact."}
    assert sent.headers["x-api-key"] == PROVIDER_KEY and sent.headers.get("anthropic-version")


@pytest.mark.parametrize("model", ["gemini-2.5-flash", "kimi-k2"])
def test_count_tokens_elsewhere_is_the_gateways_estimate(env: Any, model: str) -> None:
    gateway, claude, gemini = env
    claude.received.clear()
    gemini.received.clear()
    counted = client(gateway).messages.count_tokens(model=model, messages=MESSAGES)
    assert 5 < counted.input_tokens < 40, counted
    assert counted.input_tokens != COUNTED
    assert not claude.received and not gemini.received, "an estimate must not call the upstream"
