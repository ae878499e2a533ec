"""Azure OpenAI: a deployment (named like the model) in the URL, the API version as a query string."""

from __future__ import annotations

from sluicegate.providers.adapter import OpenAIWireAdapter, UpstreamRequest

DEFAULT_API_VERSION = "2024-10-21"


class AzureOpenAI(OpenAIWireAdapter):
    api = "azure"

    def __init__(self, api_version: str = DEFAULT_API_VERSION) -> None:
        self.api_version = api_version

    def build(
        self,
        base_url: str,
        path: str,
        query: str,
        model: str | None,
        headers: dict[str, str],
        body: bytes | None,
    ) -> UpstreamRequest:
        suffix = path[3:] if path.startswith("/v1/") else path
        version = f"api-version={self.api_version}"
        q = f"{query}&{version}" if query else version
        if model:
            return UpstreamRequest(f"{base_url}/openai/deployments/{model}{suffix}?{q}", headers, body)
        return UpstreamRequest(f"{base_url}/openai{suffix}?{q}", headers, body)
