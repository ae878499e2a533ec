"""A configured upstream, resolved once at start into what the hot path needs: URLs and headers.

Sans-IO: no sockets here. The shell asks an Upstream for the URL and headers of a request and does the
HTTP itself. Per-upstream work (preset lookup, auth header, timeouts) is done at construction so that
building a request is a string join and a dict copy.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from itertools import count

from sluicegate.config.model import Settings, Timeouts, UpstreamConfig
from sluicegate.providers.adapter import UpstreamRequest, build_adapter
from sluicegate.providers.presets import PRESETS, Auth, Kind, Preset

# Headers a client sends that are meaningful to the provider and safe to forward.
FORWARDED_REQUEST_HEADERS = frozenset({"content-type", "accept", "openai-beta", "idempotency-key"})
# Every client header any adapter may pass on (each adapter takes its own `forwarded_headers`).
CLIENT_HEADERS_READ = FORWARDED_REQUEST_HEADERS | {"anthropic-version", "anthropic-beta"}

# Hop-by-hop and framing headers never copied from an upstream response (the server sets its own).
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "transfer-encoding",
        "content-length",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "upgrade",
        "date",
        "server",
        "set-cookie",
        "access-control-allow-origin",
        "access-control-allow-credentials",
        "access-control-expose-headers",
        "access-control-allow-methods",
        "access-control-allow-headers",
        "vary",
        # These name the provider account or deployment behind the gateway: not the client's business.
        "openai-organization",
        "openai-project",
        "x-ms-region",
        "apim-request-id",
        "x-ms-deployment-name",
        "azureml-model-session",
        "x-envoy-upstream-service-time",
    }
)


class Upstream:
    """One provider account or self-hosted server, ready to address."""

    __slots__ = (
        "_extra",
        "_forwarded",
        "_keys",
        "_pending",
        "_turn",
        "adapter",
        "api_version",
        "auth",
        "base_url",
        "content_as_string",
        "counts_tokens",
        "kind",
        "max_output_tokens",
        "missing_key",
        "name",
        "preset",
        "reasoning_effort",
        "reasoning_history",
        "responses_native",
        "rpm",
        "stream_usage",
        "timeouts",
        "tpm",
    )

    def __init__(self, name: str, cfg: UpstreamConfig, default_timeouts: Timeouts) -> None:
        preset: Preset | None = PRESETS.get(resolved_preset(cfg) or "") if cfg.preset else None
        self.name = name
        self.preset = cfg.preset
        self.kind: Kind = preset.kind if preset else "openai"
        self.base_url = (cfg.base_url or (preset.base_url if preset else None) or "").rstrip("/")
        if "{region}-" in self.base_url:  # Vertex AI's regional endpoint; `global` has none
            region = cfg.region or "us-central1"
            self.base_url = self.base_url.replace("{region}-", "" if region == "global" else f"{region}-")
        elif "{region}" in self.base_url:  # Bedrock's
            self.base_url = self.base_url.replace("{region}", cfg.region or "us-east-1")
        self.auth: Auth = cfg.auth or (preset.auth if preset else "bearer")
        self.timeouts = cfg.timeouts.over(default_timeouts)
        self.stream_usage = preset.stream_usage if preset else True
        # A server with no preset is most likely vLLM, SGLang or similar, which accept reasoning_effort.
        # Native adapters (Anthropic, Gemini, Bedrock, Vertex) map the canonical request's reasoning
        # fields onto their own API themselves: nothing is dropped for them.
        native = self.kind not in ("openai", "azure", "mock")
        self.reasoning_effort = _pick(
            cfg.reasoning_effort, native or (preset.reasoning_effort if preset else True)
        )
        self.content_as_string = _pick(cfg.content_as_string, preset.content_as_string if preset else False)
        self.max_output_tokens = cfg.max_output_tokens
        self.reasoning_history = _pick(
            cfg.reasoning_history, native or (preset.reasoning_history if preset else False)
        )
        self.api_version = cfg.api_version or "2024-10-21"
        self.adapter = build_adapter(self.kind, self.api_version, cfg)
        self._forwarded = FORWARDED_REQUEST_HEADERS | self.adapter.forwarded_headers
        # An adapter that needs something before its first request (Vertex: an OAuth token) says so.
        self._pending: Callable[[float], Awaitable[None] | None] | None = getattr(
            self.adapter, "pending", None
        )
        # Whether /v1/responses goes to this upstream as it is (it serves the Responses API itself) or
        # is translated onto chat completions by the gateway (inbound/openai_responses.py).
        responses = cfg.responses or ("native" if preset is not None and preset.responses else "translate")
        self.responses_native = responses == "native"
        self.rpm, self.tpm = cfg.rpm, cfg.tpm
        self.counts_tokens = preset.count_tokens if preset else False
        keys = [k for k in ([cfg.api_key] if cfg.api_key else []) + list(cfg.api_keys) if k]
        self._keys: tuple[dict[str, str], ...] = tuple(self._auth_headers(k, cfg.headers) for k in keys)
        if not self._keys:
            self._keys = (self._auth_headers(None, cfg.headers),)
        # A provider that needs a key but has none (an unset ${ENV}) answers 503, and says which.
        self.missing_key = (
            not keys
            and self.auth not in ("none", "google-oauth", "aws-sigv4")
            and self.kind not in ("mock",)
            and not _is_local(self.base_url)
        )
        self._turn = count()

    def _auth_headers(self, key: str | None, extra: dict[str, str]) -> dict[str, str]:
        headers = {"accept-encoding": "identity"}  # relay bytes as sent; streams must not be gzipped
        headers.update({k.lower(): v for k, v in extra.items()})
        if key and key.lower() != "none":
            if self.auth == "bearer":
                headers["authorization"] = f"Bearer {key}"
            elif self.auth == "api-key":
                headers["api-key"] = key
            elif self.auth == "x-api-key":
                headers["x-api-key"] = key
            elif self.auth == "x-goog-api-key":
                headers["x-goog-api-key"] = key
        return headers

    @property
    def auth_style(self) -> str:
        """How this upstream is authenticated, for `check-config` (never the secret itself)."""
        header = {
            "bearer": "Authorization: Bearer",
            "api-key": "api-key",
            "x-api-key": "x-api-key",
            "x-goog-api-key": "x-goog-api-key",
            "google-oauth": "OAuth (service account, google-auth)",
            "aws-sigv4": "AWS SigV4 (botocore)",
        }
        style = header.get(self.auth, "none")
        if self.adapter.wire == "anthropic":
            style += " + anthropic-version"
        return style

    @property
    def key_count(self) -> int:
        return len(self._keys)

    def pending(self) -> Awaitable[None] | None:
        """What to await before `request()`, or None (every upstream once it is ready: no await).

        Why: building a request is synchronous, and an adapter whose credentials are still being
        fetched (Vertex's first token) must not block the event loop; the wait is bounded by the
        connect timeout and fails as UpstreamUnavailable, like a connect failure.
        """
        return self._pending(self.timeouts.connect) if self._pending is not None else None

    def request(
        self,
        path: str,
        query: str,
        model: str | None,
        client_headers: dict[str, str],
        key_index: int | None = None,
        body: bytes | None = None,
    ) -> UpstreamRequest:
        """URL, headers and body for `path` (the gateway's own, e.g. /v1/chat/completions), built by
        the upstream's adapter (which may sign them)."""
        if key_index is None:
            key_index = next(self._turn) % len(self._keys) if len(self._keys) > 1 else 0
        headers = dict(self._keys[key_index])
        for name, value in client_headers.items():
            if name in self._forwarded:
                headers[name] = value
        return self.adapter.build(self.base_url, path, query, model, headers, body)


def _pick(configured: bool | None, default: bool) -> bool:
    return default if configured is None else configured


def resolved_preset(cfg: UpstreamConfig) -> str | None:
    """The preset a config line means. `gemini` named Google's OpenAI-compatible endpoint before the
    native adapter; a config that still points `preset: gemini` at that endpoint (a base_url ending in
    /openai) keeps it, as `gemini-openai`."""
    if cfg.preset == "gemini" and cfg.base_url and cfg.base_url.rstrip("/").endswith("/openai"):
        return "gemini-openai"
    return cfg.preset


def _is_local(url: str) -> bool:
    host = url.split("://", 1)[-1].split("/", 1)[0].rsplit(":", 1)[0]
    return host in ("127.0.0.1", "localhost", "[::1]", "0.0.0.0") or host.startswith("127.")


def build_upstreams(settings: Settings) -> dict[str, Upstream]:
    ups = {name: Upstream(name, cfg, settings.timeouts) for name, cfg in settings.upstreams.items()}
    if "mock" not in ups:
        ups["mock"] = Upstream("mock", UpstreamConfig(preset="mock"), settings.timeouts)
    return ups
