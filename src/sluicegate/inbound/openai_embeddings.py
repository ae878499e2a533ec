"""`/v1/embeddings`: relayed on the same wire (never streamed)."""

from __future__ import annotations

from sluicegate.inbound.base import OpenAIWire


class OpenAIEmbeddings(OpenAIWire):
    name = "openai_embeddings"
    path = "/v1/embeddings"
