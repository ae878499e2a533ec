"""`/v1/completions` (legacy text completions): relayed on the same wire; streams end with `[DONE]`."""

from __future__ import annotations

from sluicegate.inbound.base import OpenAIWire


class OpenAICompletions(OpenAIWire):
    name = "openai_completions"
    path = "/v1/completions"
