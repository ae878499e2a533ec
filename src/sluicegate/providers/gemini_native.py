"""The native Gemini adapter: `models/{model}:generateContent` and `:streamGenerateContent?alt=sse`.

`x-goog-api-key` auth (the Gemini API key). Every client arrives as a canonical chat request
(`chat_to_gemini`); answers, streams (SSE with `alt=sse`) and errors go back as chat
(`gemini_to_chat`). The base URL is the API version root (https://generativelanguage.googleapis.com/v1beta).
"""

from __future__ import annotations

from sluicegate.protocol.errors import BadRequest
from sluicegate.providers.adapter import StreamDecoder, UpstreamRequest
from sluicegate.providers.chat_to_gemini import chat_to_gemini
from sluicegate.providers.gemini_to_chat import GeminiToChatStream, error_to_openai, gemini_to_chat
from sluicegate.providers.native_common import native_body, whole_answer


class GeminiNative:
    api = "gemini"
    wire = "gemini"  # no inbound codec speaks it: every client is translated onto chat first
    forwarded_headers: frozenset[str] = frozenset()
    # OpenAI paths other than chat go to Google's OpenAI-compatible endpoint as they are.
    openai_fallback = True

    def build(
        self,
        base_url: str,
        path: str,
        query: str,
        model: str | None,
        headers: dict[str, str],
        body: bytes | None,
    ) -> UpstreamRequest:
        if path != "/v1/chat/completions":
            # Embeddings, images, models...: Google's OpenAI-compatible endpoint under the same root
            # takes the same key as a Bearer token, so configs that used them on `gemini` keep working.
            key = headers.pop("x-goog-api-key", None)
            if key:
                headers["authorization"] = f"Bearer {key}"
            url = f"{base_url}/openai{path[3:] if path.startswith('/v1/') else path}"
            return UpstreamRequest(f"{url}?{query}" if query else url, headers, body)
        if body is None:
            raise BadRequest("A chat request needs a body.")
        chat, native = native_body(body, chat_to_gemini)
        name = str(chat.get("model") or model or "").removeprefix("models/")
        if chat.get("stream") is True:
            url = f"{base_url}/models/{name}:streamGenerateContent?alt=sse"
        else:
            url = f"{base_url}/models/{name}:generateContent"
        headers.pop("openai-beta", None)
        return UpstreamRequest(url, headers, native)

    def stream_decoder(self) -> StreamDecoder:
        return GeminiToChatStream()

    def answer(self, data: bytes) -> bytes:
        return whole_answer(data, gemini_to_chat)

    def error(self, status: int, body: bytes) -> bytes:
        return error_to_openai(status, body)
