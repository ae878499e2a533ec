"""The seams' registries: a codec per client path, an edge per upstream, an adapter per API type."""

from __future__ import annotations

from typing import Any

from sluicegate.config.model import Timeouts, UpstreamConfig
from sluicegate.inbound import DEFAULT_CODEC, SAME_WIRE, build_codecs
from sluicegate.inbound.anthropic_messages import MessagesToChat
from sluicegate.inbound.openai_responses import ResponsesToChat
from sluicegate.providers.azure import AzureOpenAI
from sluicegate.providers.openai_compatible import OpenAICompatible
from sluicegate.providers.upstream import Upstream

T = Timeouts()


class NoState:
    async def load(self, key_id: str, response_id: str) -> dict[str, Any] | None:
        return None

    async def save(self, key_id: str, response: dict[str, Any], items: list[Any]) -> None:
        return None


def upstream(**cfg: Any) -> Upstream:
    return Upstream("u", UpstreamConfig(api_key="k", **cfg), T)


CODECS = build_codecs(NoState())
CHAT_ONLY = upstream(base_url="http://127.0.0.1:9/v1")
OPENAI = upstream(preset="openai")


def test_openai_wire_codecs_are_the_same_wire_to_every_upstream() -> None:
    for path in ("/v1/chat/completions", "/v1/completions", "/v1/embeddings"):
        assert CODECS[path].edge_for(CHAT_ONLY) is SAME_WIRE
        assert CODECS[path].edge_for(OPENAI) is SAME_WIRE


def test_responses_pass_through_to_native_presets_and_translate_elsewhere() -> None:
    codec = CODECS["/v1/responses"]
    assert codec.edge_for(OPENAI) is SAME_WIRE
    assert codec.edge_for(upstream(preset="xai")) is SAME_WIRE
    assert codec.edge_for(upstream(preset="azure", base_url="https://r.openai.azure.com")) is SAME_WIRE
    for preset in ("groq", "openrouter", "deepseek", "qwen", "vllm", "llamacpp"):
        assert isinstance(codec.edge_for(upstream(preset=preset)), ResponsesToChat), preset
    assert isinstance(codec.edge_for(CHAT_ONLY), ResponsesToChat)


def test_the_upstream_setting_overrides_the_presets_default() -> None:
    codec = CODECS["/v1/responses"]
    assert isinstance(codec.edge_for(upstream(preset="openai", responses="translate")), ResponsesToChat)
    assert codec.edge_for(upstream(preset="vllm", responses="native")) is SAME_WIRE


def test_anthropic_messages_always_translate_onto_chat() -> None:
    assert isinstance(CODECS["/v1/messages"].edge_for(OPENAI), MessagesToChat)
    assert CODECS["/v1/messages/count_tokens"].local_answer is not None
    assert CODECS["/v1/messages"].local_answer is None


def test_codec_errors_are_in_each_wires_shape() -> None:
    from sluicegate.protocol.errors import BadRequest

    exc = BadRequest("nope")
    assert b'"error"' in DEFAULT_CODEC.error_body(
        exc
    ) and b'"invalid_request_error"' in DEFAULT_CODEC.error_body(exc)
    assert b'"type":"error"' in CODECS["/v1/messages"].error_body(exc)


def test_adapters_are_chosen_by_api_type_and_carry_the_body() -> None:
    assert isinstance(OPENAI.adapter, OpenAICompatible)
    azure = upstream(preset="azure", base_url="https://r.openai.azure.com", api_version="2025-01-01")
    assert isinstance(azure.adapter, AzureOpenAI)
    req = azure.request("/v1/chat/completions", "", "dep", {}, None, b"{}")
    assert (
        req.url == "https://r.openai.azure.com/openai/deployments/dep/chat/completions?api-version=2025-01-01"
    )
    assert req.body == b"{}"
