"""`/v1/chat/completions`: the canonical wire itself, so every upstream gets it byte for byte."""

from __future__ import annotations

from sluicegate.inbound.base import OpenAIWire


class OpenAIChat(OpenAIWire):
    name = "openai_chat"
    path = "/v1/chat/completions"
