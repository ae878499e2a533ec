"""Upstreams: presets give URLs and auth headers; Azure addresses deployments."""

from sluicegate.config.model import Timeouts, UpstreamConfig
from sluicegate.providers.presets import PRESETS
from sluicegate.providers.upstream import Upstream

T = Timeouts()


def test_every_issue_preset_exists() -> None:
    for name in (
        "openai",
        "groq",
        "deepseek",
        "moonshot",
        "qwen",
        "zhipu",
        "doubao",
        "siliconflow",
        "openrouter",
        "mistral",
        "together",
        "xai",
        "gemini",
        "gemini-openai",
        "anthropic",
        "deepseek-anthropic",
        "ollama",
        "vllm",
        "lmstudio",
        "llamacpp",
        "azure",
    ):
        assert name in PRESETS


def test_preset_url_and_bearer_auth() -> None:
    up = Upstream("g", UpstreamConfig(preset="groq", api_key="gsk-1"), T)
    req = up.request("/v1/chat/completions", "", "llama", {"content-type": "application/json", "cookie": "x"})
    assert req.url == "https://api.groq.com/openai/v1/chat/completions"
    assert req.headers["authorization"] == "Bearer gsk-1"
    assert "cookie" not in req.headers and req.headers["content-type"] == "application/json"


def test_zhipu_and_gemini_paths() -> None:
    z = Upstream("z", UpstreamConfig(preset="zhipu", api_key="k"), T)
    assert (
        z.request("/v1/chat/completions", "", "glm-4", {}).url
        == "https://open.bigmodel.cn/api/paas/v4/chat/completions"
    )
    g = Upstream("g", UpstreamConfig(preset="gemini-openai", api_key="k"), T)
    assert (
        g.request("/v1/embeddings", "", "m", {}).url
        == "https://generativelanguage.googleapis.com/v1beta/openai/embeddings"
    )


def test_native_gemini_chat_goes_to_generate_content_with_the_goog_api_key() -> None:
    g = Upstream("g", UpstreamConfig(preset="gemini", api_key="AIza-k"), T)
    body = b'{"model":"gemini-2.5-flash","messages":[{"role":"user","content":"hi"}]}'
    req = g.request("/v1/chat/completions", "", "gemini-2.5-flash", {}, body=body)
    assert (
        req.url == "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:generateContent"
    )
    assert req.headers["x-goog-api-key"] == "AIza-k" and "authorization" not in req.headers


def test_native_gemini_keeps_embeddings_on_googles_openai_endpoint_with_the_same_key() -> None:
    g = Upstream("g", UpstreamConfig(preset="gemini", api_key="AIza-k"), T)
    req = g.request("/v1/embeddings", "", "m", {})
    assert req.url == "https://generativelanguage.googleapis.com/v1beta/openai/embeddings"
    assert req.headers["authorization"] == "Bearer AIza-k" and "x-goog-api-key" not in req.headers


def test_a_gemini_preset_pointed_at_the_openai_endpoint_stays_openai_compatible() -> None:
    base = "https://generativelanguage.googleapis.com/v1beta/openai"
    g = Upstream("g", UpstreamConfig(preset="gemini", base_url=base, api_key="k"), T)
    assert g.kind == "openai" and g.adapter.wire == "openai"
    assert g.request("/v1/chat/completions", "", "m", {}).url == base + "/chat/completions"
    assert g.request("/v1/chat/completions", "", "m", {}).headers["authorization"] == "Bearer k"


def test_azure_deployment_url_and_api_key_header() -> None:
    up = Upstream(
        "az",
        UpstreamConfig(
            preset="azure", base_url="https://res.openai.azure.com", api_key="azk", api_version="2024-10-21"
        ),
        T,
    )
    req = up.request("/v1/chat/completions", "", "gpt-4o-prod", {})
    assert (
        req.url == "https://res.openai.azure.com/openai/deployments/gpt-4o-prod/chat/completions"
        "?api-version=2024-10-21"
    )
    assert req.headers["api-key"] == "azk" and "authorization" not in req.headers


def test_several_keys_are_used_in_turn() -> None:
    up = Upstream("o", UpstreamConfig(preset="openai", api_keys=["k1", "k2"]), T)
    seen = [up.request("/v1/models", "", None, {}).headers["authorization"] for _ in range(4)]
    assert seen == ["Bearer k1", "Bearer k2", "Bearer k1", "Bearer k2"]


def test_missing_key_marks_cloud_upstream_not_configured_but_not_local() -> None:
    assert Upstream("o", UpstreamConfig(preset="openai"), T).missing_key
    assert not Upstream("l", UpstreamConfig(base_url="http://127.0.0.1:8000/v1"), T).missing_key
    assert not Upstream("ol", UpstreamConfig(preset="ollama"), T).missing_key


def test_per_upstream_timeouts_override_defaults() -> None:
    up = Upstream("o", UpstreamConfig(base_url="http://127.0.0.1:1", timeouts={"first_byte": 3}), T)
    assert up.timeouts.first_byte == 3 and up.timeouts.connect == T.connect
