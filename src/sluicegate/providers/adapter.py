"""The outbound seam: how the gateway addresses one kind of upstream API.

An adapter is chosen once, when an upstream is built from the config, by the upstream's API type (the
preset's `kind`); the hot path then calls it without any `if` on a flag. It is sans-IO: it builds the
whole request (URL, headers, body) the shell sends, so an API that signs requests (Bedrock's SigV4
hashes the body) signs here, and it makes the decoder of its stream framing, which yields canonical
chunk payloads (SSE `data:` for OpenAI-compatible APIs; AWS event-stream or a JSON array later).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from sluicegate.protocol.sse import Event, SSEDecoder


@dataclass(frozen=True, slots=True)
class UpstreamRequest:
    url: str
    headers: dict[str, str]
    body: bytes | None = None


class StreamDecoder(Protocol):
    """Upstream stream bytes in, events whose `.data` is a canonical chunk payload out."""

    def feed(self, chunk: bytes) -> list[Event]: ...

    def flush(self) -> list[Event]: ...


class OutboundAdapter(Protocol):
    """One upstream API type. Adding a provider API is a module and a line in `ADAPTERS`."""

    api: str
    # The client wire this upstream speaks as it is ("openai", "anthropic"): a codec whose wire it is
    # relays bytes untouched (SAME_WIRE); others translate onto chat and the adapter takes it from there.
    wire: str
    # Client headers, beyond the gateway's usual few, that this API reads (anthropic-beta...).
    forwarded_headers: frozenset[str]
    # Whether OpenAI paths other than chat (embeddings...) are served on OpenAI's wire as they are.
    openai_fallback: bool

    def build(
        self,
        base_url: str,
        path: str,
        query: str,
        model: str | None,
        headers: dict[str, str],
        body: bytes | None,
    ) -> UpstreamRequest:
        """The request for the gateway's `path` (e.g. /v1/chat/completions) with this body."""
        ...

    def stream_decoder(self) -> StreamDecoder:
        """A fresh decoder for one streamed answer."""
        ...

    def answer(self, data: bytes) -> bytes:
        """A whole upstream answer as a `chat.completion` (identity for OpenAI's wire)."""
        ...

    def error(self, status: int, body: bytes) -> bytes:
        """An upstream error body in OpenAI's error shape (identity for OpenAI's wire)."""
        ...


class OpenAIWireAdapter:
    """Base of the adapters whose upstream speaks OpenAI's wire: answers and errors need no change."""

    wire = "openai"
    forwarded_headers: frozenset[str] = frozenset()
    openai_fallback = True

    def stream_decoder(self) -> StreamDecoder:
        return sse_decoder()

    def answer(self, data: bytes) -> bytes:
        return data

    def error(self, status: int, body: bytes) -> bytes:
        return body


def sse_decoder() -> StreamDecoder:
    return SSEDecoder()


def build_adapter(kind: str, api_version: str | None, cfg: Any = None) -> OutboundAdapter:
    """The adapter for an upstream, from the registry keyed by API type (a preset's `kind`);
    `cfg` (the upstream's config) for adapters that need more than a URL and a key (Vertex)."""
    from sluicegate.providers.anthropic_native import AnthropicNative
    from sluicegate.providers.azure import AzureOpenAI
    from sluicegate.providers.gemini_native import GeminiNative
    from sluicegate.providers.openai_compatible import OpenAICompatible

    registry: dict[str, Callable[[], OutboundAdapter]] = {
        "openai": OpenAICompatible,
        "mock": OpenAICompatible,
        "azure": lambda: AzureOpenAI(api_version) if api_version else AzureOpenAI(),
        "anthropic": AnthropicNative,
        "gemini": GeminiNative,
        "vertex": lambda: vertex_adapter(cfg),
        "bedrock": lambda: bedrock_adapter(cfg),
    }
    return registry[kind]()


def vertex_adapter(cfg: Any) -> OutboundAdapter:
    """Vertex AI needs a project, a region and a service account (google-auth, the `vertex` extra)."""
    from sluicegate.providers.google_tokens import GoogleTokens
    from sluicegate.providers.vertex import VertexAI

    if cfg is None or not cfg.project or not cfg.credentials_file:
        raise ValueError("preset vertex needs project and credentials_file (and region, default us-central1)")
    return VertexAI(cfg.project, cfg.region or "us-central1", GoogleTokens(cfg.credentials_file))


def bedrock_adapter(cfg: Any) -> OutboundAdapter:
    """Bedrock signs with botocore (the `bedrock` extra); credentials from the config or the AWS chain."""
    from sluicegate.providers.bedrock import Bedrock, aws_credentials

    return Bedrock((cfg.region if cfg is not None else None) or "us-east-1", aws_credentials(cfg))
