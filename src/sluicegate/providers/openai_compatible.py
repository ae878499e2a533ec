"""The OpenAI-compatible wire (every preset but Azure): the gateway's path under the base URL, SSE streams."""

from __future__ import annotations

from sluicegate.providers.adapter import OpenAIWireAdapter, UpstreamRequest


class OpenAICompatible(OpenAIWireAdapter):
    api = "openai"

    def build(
        self,
        base_url: str,
        path: str,
        query: str,
        model: str | None,
        headers: dict[str, str],
        body: bytes | None,
    ) -> UpstreamRequest:
        # The base URL already ends in the provider's version segment (…/v1, …/api/paas/v4).
        url = base_url + (path[3:] if path.startswith("/v1/") else path)
        return UpstreamRequest(f"{url}?{query}" if query else url, headers, body)
