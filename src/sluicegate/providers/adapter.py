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
from typing import Protocol

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


def sse_decoder() -> StreamDecoder:
    return SSEDecoder()


def build_adapter(kind: str, api_version: str | None) -> OutboundAdapter:
    """The adapter for an upstream, from the registry keyed by API type (a preset's `kind`)."""
    from sluicegate.providers.azure import AzureOpenAI
    from sluicegate.providers.openai_compatible import OpenAICompatible

    registry: dict[str, Callable[[], OutboundAdapter]] = {
        "openai": OpenAICompatible,
        "mock": OpenAICompatible,
        "azure": lambda: AzureOpenAI(api_version) if api_version else AzureOpenAI(),
    }
    return registry[kind]()
