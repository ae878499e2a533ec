"""The native Anthropic adapter: the Messages API (`/v1/messages`), `x-api-key`, `anthropic-version`.

Two ways in. A `/v1/messages` client (same wire: the Anthropic codec's edge is SAME_WIRE here) has
its bytes sent as they are, so thinking signatures and `cache_control` reach Claude untouched and its
answer (cache hits, signatures) comes back untouched. Every other client arrives as a canonical chat
request, translated here (`chat_to_anthropic`), and the answer, stream and errors are translated back
(`anthropic_to_chat`). Anthropic-compatible endpoints of other providers (DeepSeek, Kimi, GLM, Qwen,
MiniMax publish them for Claude Code) use this adapter with their own base URL.
"""

from __future__ import annotations

from sluicegate.protocol.errors import BadRequest
from sluicegate.providers.adapter import StreamDecoder, UpstreamRequest
from sluicegate.providers.anthropic_to_chat import MessagesToChatStream, error_to_openai, message_to_chat
from sluicegate.providers.chat_to_anthropic import chat_to_messages
from sluicegate.providers.native_common import native_body, whole_answer

ANTHROPIC_VERSION = "2023-06-01"
MESSAGES = "/v1/messages"
COUNT_TOKENS = "/v1/messages/count_tokens"


class AnthropicNative:
    api = "anthropic"
    wire = "anthropic"  # the client wire this upstream speaks as it is (see inbound codecs' edge_for)
    # Client headers Anthropic reads: the API version and the opt-in betas (prompt caching variants,
    # interleaved thinking, 1M context...), passed on as the client sent them.
    forwarded_headers = frozenset({"anthropic-version", "anthropic-beta"})
    openai_fallback = False  # no embeddings or completions on a Messages API

    def build(
        self,
        base_url: str,
        path: str,
        query: str,
        model: str | None,
        headers: dict[str, str],
        body: bytes | None,
    ) -> UpstreamRequest:
        headers.setdefault("anthropic-version", ANTHROPIC_VERSION)
        headers.pop("openai-beta", None)
        # The base URL is the API root (https://api.anthropic.com, https://api.deepseek.com/anthropic),
        # as Claude Code's ANTHROPIC_BASE_URL is: the Messages path goes under it.
        url = base_url + MESSAGES
        if path == MESSAGES:
            return UpstreamRequest(url, headers, body)
        if path == COUNT_TOKENS:  # relayed only to providers that serve it (Preset.count_tokens)
            return UpstreamRequest(base_url + COUNT_TOKENS, headers, body)
        if path != "/v1/chat/completions" or body is None:
            raise BadRequest(f"{path} is not served by an Anthropic upstream.")
        return UpstreamRequest(url, headers, native_body(body, chat_to_messages)[1])

    def stream_decoder(self) -> StreamDecoder:
        return MessagesToChatStream()

    def answer(self, data: bytes) -> bytes:
        """A whole Messages answer as a chat.completion (for translated edges)."""
        return whole_answer(data, message_to_chat)

    def error(self, status: int, body: bytes) -> bytes:
        """An Anthropic error body in OpenAI's shape (for translated edges)."""
        return error_to_openai(status, body)
