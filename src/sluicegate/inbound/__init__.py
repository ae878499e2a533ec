"""Inbound codecs: one module per client API, chosen once per request by path (see base.py)."""

from __future__ import annotations

from sluicegate.inbound.anthropic_messages import (
    COUNT_TOKENS_PATH,
    MESSAGES_PATH,
    AnthropicCountTokens,
    AnthropicMessages,
)
from sluicegate.inbound.base import SAME_WIRE, InboundCodec, OpenAIWire, SameWire, StreamEncoder, Translation
from sluicegate.inbound.openai_chat import OpenAIChat
from sluicegate.inbound.openai_completions import OpenAICompletions
from sluicegate.inbound.openai_embeddings import OpenAIEmbeddings
from sluicegate.inbound.openai_responses import RESPONSES_PATH, OpenAIResponses, ResponsesStateStore

# Paths with no codec of their own (files, audio, images, moderations, batches...) are OpenAI's wire,
# relayed as they are: this codec answers their errors.
DEFAULT_CODEC: InboundCodec = OpenAIWire()


def build_codecs(responses_state: ResponsesStateStore) -> dict[str, InboundCodec]:
    """The registry, keyed by the client's path. Adding a client API is a module and a line here."""
    return {
        "/v1/chat/completions": OpenAIChat(),
        "/v1/completions": OpenAICompletions(),
        "/v1/embeddings": OpenAIEmbeddings(),
        RESPONSES_PATH: OpenAIResponses(responses_state),
        MESSAGES_PATH: AnthropicMessages(),
        COUNT_TOKENS_PATH: AnthropicCountTokens(),
    }


__all__ = [
    "DEFAULT_CODEC",
    "SAME_WIRE",
    "InboundCodec",
    "SameWire",
    "StreamEncoder",
    "Translation",
    "build_codecs",
]
