"""Presets: the base URL and auth style of each known provider, so a config line can be `preset: groq`.

Adding an OpenAI-compatible provider is one line here. `kind` picks the adapter that shapes the URL
and headers (see providers/adapter.py); most providers are plain OpenAI-compatible.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Kind = Literal["openai", "azure", "mock", "anthropic", "gemini", "vertex", "bedrock"]
Auth = Literal["bearer", "api-key", "x-api-key", "x-goog-api-key", "google-oauth", "aws-sigv4", "none"]


@dataclass(frozen=True, slots=True)
class Preset:
    name: str
    base_url: str | None  # None: the user must give one (Azure's resource URL)
    auth: Auth = "bearer"
    kind: Kind = "openai"
    # Whether the provider honours `stream_options.include_usage`. Where it does not (or rejects the
    # field), the gateway counts streamed tokens itself and marks the figure estimated.
    stream_usage: bool = True
    # Whether Anthropic's thinking/effort is sent as OpenAI's `reasoning_effort`. Off where the provider
    # has no such control and might refuse the field (DeepSeek, Kimi, Qwen, GLM pick reasoning by model).
    reasoning_effort: bool = False
    # Whether text-only content lists are joined into one string: llama.cpp's server fails on lists.
    content_as_string: bool = False
    # Whether the reasoning of earlier tool-call turns goes back as `reasoning_content`: DeepSeek's
    # thinking mode answers 400 without it; Kimi's thinking models work better with it.
    reasoning_history: bool = False
    # Whether the provider serves the Responses API itself, statefully (`previous_response_id`, GET,
    # DELETE): then /v1/responses passes through; else the gateway translates it onto chat (sources
    # in docs/responses.md).
    responses: bool = False
    # Whether the provider serves Anthropic's /v1/messages/count_tokens: then the gateway relays it
    # (an exact count); else it answers with its own tokenizer's estimate. Only Anthropic documents it.
    count_tokens: bool = False
    doc: str = ""


# Anthropic-compatible endpoints Chinese providers publish for Claude Code (all take `x-api-key`).
ANTHROPIC_COMPATIBLE: tuple[tuple[str, str, str], ...] = (
    ("deepseek-anthropic", "https://api.deepseek.com/anthropic", "DeepSeek, Anthropic-compatible"),
    (
        "moonshot-anthropic",
        "https://api.moonshot.cn/anthropic",
        "Moonshot (Kimi), Anthropic-compatible, mainland",
    ),
    (
        "moonshot-intl-anthropic",
        "https://api.moonshot.ai/anthropic",
        "Moonshot (Kimi), Anthropic-compatible, international",
    ),
    ("zhipu-anthropic", "https://open.bigmodel.cn/api/anthropic", "Zhipu GLM, Anthropic-compatible"),
    ("zai-anthropic", "https://api.z.ai/api/anthropic", "Z.ai GLM (international), Anthropic-compatible"),
    (
        "qwen-anthropic",
        "https://dashscope.aliyuncs.com/apps/anthropic",
        "Alibaba DashScope, Anthropic-compatible",
    ),
    (
        "qwen-intl-anthropic",
        "https://dashscope-intl.aliyuncs.com/apps/anthropic",
        "DashScope international, Anthropic-compatible",
    ),
    ("minimax-anthropic", "https://api.minimaxi.com/anthropic", "MiniMax, Anthropic-compatible, mainland"),
    (
        "minimax-intl-anthropic",
        "https://api.minimax.io/anthropic",
        "MiniMax, Anthropic-compatible, international",
    ),
)

PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset("openai", "https://api.openai.com/v1", reasoning_effort=True, responses=True, doc="OpenAI"),
        Preset("groq", "https://api.groq.com/openai/v1", doc="Groq LPU cloud"),
        Preset("deepseek", "https://api.deepseek.com/v1", reasoning_history=True, doc="DeepSeek"),
        Preset(
            "moonshot",
            "https://api.moonshot.cn/v1",
            reasoning_history=True,
            doc="Moonshot (Kimi), mainland endpoint",
        ),
        Preset(
            "moonshot-intl",
            "https://api.moonshot.ai/v1",
            reasoning_history=True,
            doc="Moonshot (Kimi), international endpoint",
        ),
        Preset(
            "qwen",
            "https://dashscope.aliyuncs.com/compatible-mode/v1",
            doc="Alibaba DashScope, compatible mode",
        ),
        Preset(
            "qwen-intl",
            "https://dashscope-intl.aliyuncs.com/compatible-mode/v1",
            doc="Alibaba DashScope international, compatible mode",
        ),
        Preset("zhipu", "https://open.bigmodel.cn/api/paas/v4", doc="Zhipu GLM (BigModel)"),
        Preset("doubao", "https://ark.cn-beijing.volces.com/api/v3", doc="Volcano Engine Ark (Doubao)"),
        Preset("siliconflow", "https://api.siliconflow.cn/v1", doc="SiliconFlow"),
        Preset("openrouter", "https://openrouter.ai/api/v1", reasoning_effort=True, doc="OpenRouter"),
        Preset("mistral", "https://api.mistral.ai/v1", stream_usage=False, doc="Mistral La Plateforme"),
        Preset("together", "https://api.together.xyz/v1", doc="Together AI"),
        Preset("xai", "https://api.x.ai/v1", responses=True, doc="xAI (Grok)"),
        Preset(
            "gemini-openai",
            "https://generativelanguage.googleapis.com/v1beta/openai",
            reasoning_effort=True,
            doc="Google Gemini, OpenAI-compatible endpoint (what `gemini` named before the native adapter)",
        ),
        Preset(
            "bedrock",
            "https://bedrock-runtime.{region}.amazonaws.com",
            auth="aws-sigv4",
            kind="bedrock",
            doc="Amazon Bedrock Converse API (SigV4): region, AWS credentials or the AWS chain",
        ),
        Preset(
            "vertex",
            "https://{region}-aiplatform.googleapis.com",
            auth="google-oauth",
            kind="vertex",
            doc="Google Vertex AI (Gemini and Claude models): project, region, credentials_file",
        ),
        Preset(
            "gemini",
            "https://generativelanguage.googleapis.com/v1beta",
            auth="x-goog-api-key",
            kind="gemini",
            doc="Google Gemini API, native generateContent (providers/gemini_native.py)",
        ),
        Preset(
            "ollama",
            "http://127.0.0.1:11434/v1",
            auth="none",
            reasoning_effort=True,
            doc="Ollama on this host",
        ),
        Preset(
            "vllm", "http://127.0.0.1:8000/v1", reasoning_effort=True, doc="vLLM's OpenAI-compatible server"
        ),
        Preset("lmstudio", "http://127.0.0.1:1234/v1", auth="none", doc="LM Studio's local server"),
        Preset(
            "llamacpp",
            "http://127.0.0.1:8080/v1",
            auth="none",
            stream_usage=False,
            content_as_string=True,
            doc="llama.cpp's llama-server (reports no usage on streams; fails on list content)",
        ),
        Preset(
            "azure",
            None,
            auth="api-key",
            kind="azure",
            reasoning_effort=True,
            responses=True,
            doc="Azure OpenAI: base_url https://RESOURCE.openai.azure.com, api_version, model = deployment",
        ),
        Preset("mock", None, auth="none", kind="mock", doc="built-in deterministic upstream, no network"),
        # Native Messages API upstreams (providers/anthropic_native.py). The base URL is the API root the
        # provider tells Claude Code users to set as ANTHROPIC_BASE_URL; sources in docs/providers.md.
        Preset(
            "anthropic",
            "https://api.anthropic.com",
            auth="x-api-key",
            kind="anthropic",
            count_tokens=True,
            doc="Anthropic Messages API",
        ),
        *(
            Preset(name, url, auth="x-api-key", kind="anthropic", doc=doc)
            for name, url, doc in ANTHROPIC_COMPATIBLE
        ),
    )
}
