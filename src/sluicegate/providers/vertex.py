"""Vertex AI: Gemini and Anthropic models under one Google Cloud project and region, OAuth-authorised.

The model's publisher picks the API: a `claude-*` model is Anthropic's Messages API on Vertex
(`publishers/anthropic/models/{model}:rawPredict` / `:streamRawPredict`, the body without `model` and
with `anthropic_version: vertex-2023-10-16`); any other is Gemini's `generateContent`
(`publishers/google/models/{model}`). The translations are the native Anthropic and Gemini adapters'
own; this adapter adds the URL and the OAuth bearer token (providers/google_tokens.py).
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

import orjson

from sluicegate.protocol.errors import BadRequest
from sluicegate.protocol.sse import Event
from sluicegate.providers.adapter import StreamDecoder, UpstreamRequest
from sluicegate.providers.anthropic_to_chat import MessagesToChatStream, error_to_openai, message_to_chat
from sluicegate.providers.chat_to_anthropic import chat_to_messages
from sluicegate.providers.chat_to_gemini import chat_to_gemini
from sluicegate.providers.gemini_to_chat import GeminiToChatStream, gemini_to_chat
from sluicegate.providers.gemini_to_chat import error_to_openai as gemini_error
from sluicegate.providers.google_tokens import GoogleTokens
from sluicegate.providers.native_common import native_body, whole_answer

VERTEX_ANTHROPIC_VERSION = "vertex-2023-10-16"


def is_claude(model: str) -> bool:
    return model.startswith("claude")


def _vertex_messages(chat: Any) -> dict[str, Any]:
    body = chat_to_messages(chat)
    body.pop("model", None)  # the model is in the URL on Vertex
    body["anthropic_version"] = VERTEX_ANTHROPIC_VERSION
    return body


class _EitherStream:
    """Vertex answers a stream in its publisher's framing; the first bytes tell which (SSE either way:
    Anthropic's named events, Gemini's bare `data:` lines)."""

    __slots__ = ("_inner",)

    def __init__(self) -> None:
        self._inner: StreamDecoder | None = None

    def feed(self, chunk: bytes) -> list[Event]:
        if self._inner is None:
            self._inner = MessagesToChatStream() if b"message_start" in chunk[:200] else GeminiToChatStream()
        return self._inner.feed(chunk)

    def flush(self) -> list[Event]:
        return self._inner.flush() if self._inner is not None else []


class VertexAI:
    api = "vertex"
    wire = "vertex"  # no inbound codec speaks it: every client is translated onto chat first
    forwarded_headers = frozenset({"anthropic-beta"})
    openai_fallback = False

    def __init__(self, project: str, region: str, tokens: GoogleTokens) -> None:
        self.project, self.region, self.tokens = project, region, tokens

    def pending(self, timeout_s: float) -> Awaitable[None] | None:
        """Until the first OAuth token: what a request awaits before `build` (see Upstream.pending)."""
        return self.tokens.pending(timeout_s)

    def build(
        self,
        base_url: str,
        path: str,
        query: str,
        model: str | None,
        headers: dict[str, str],
        body: bytes | None,
    ) -> UpstreamRequest:
        if path != "/v1/chat/completions" or body is None:
            raise BadRequest(f"{path} is not served by a Vertex AI upstream.")
        name = str(orjson.loads(body).get("model") or model or "")
        stream = b'"stream":true' in body
        root = f"{base_url}/v1/projects/{self.project}/locations/{self.region}/publishers"
        if is_claude(name):
            _, native = native_body(body, _vertex_messages)
            method = "streamRawPredict" if stream else "rawPredict"
            url = f"{root}/anthropic/models/{name}:{method}"
        else:
            headers.pop("anthropic-beta", None)
            _, native = native_body(body, chat_to_gemini)
            url = f"{root}/google/models/{name}:" + (
                "streamGenerateContent?alt=sse" if stream else "generateContent"
            )
        headers["authorization"] = f"Bearer {self.tokens.current()}"
        return UpstreamRequest(url, headers, native)

    def stream_decoder(self) -> StreamDecoder:
        return _EitherStream()

    def answer(self, data: bytes) -> bytes:
        if b'"type":"message"' in data or b'"type": "message"' in data:
            return whole_answer(data, message_to_chat)
        return whole_answer(data, gemini_to_chat)

    def error(self, status: int, body: bytes) -> bytes:
        return error_to_openai(status, body) if b'"type":"error"' in body else gemini_error(status, body)
