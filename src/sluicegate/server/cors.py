"""CORS for chat UIs that call the gateway from the browser page (lobe-chat, NextChat client mode).

The headers go on the preflight and on every response, streams included, because a browser checks the
real response too. Origins are matched exactly (or "*"); headers the SDKs send are allowed, names
ending in `*` as prefixes (`x-stainless-*` covers x-stainless-os, -lang, -retry-count, ...).
"""

from __future__ import annotations

from sluicegate.config.model import CorsConfig

EXPOSED = (
    "x-request-id, request-id, openai-processing-ms, openai-version, retry-after, x-ratelimit-limit-requests, "
    "x-ratelimit-remaining-requests, x-ratelimit-reset-requests, x-ratelimit-limit-tokens, "
    "x-ratelimit-remaining-tokens, x-ratelimit-reset-tokens, x-sluicegate-max-tokens-clamped, "
    "x-sluicegate-cache, x-sluicegate-cache-inputs-hit, x-sluicegate-cache-similarity, age"
)


class Cors:
    __slots__ = ("_allow_headers", "_any", "_max_age", "_origins", "_wild_headers", "enabled")

    def __init__(self, cfg: CorsConfig) -> None:
        self._origins = frozenset(o.rstrip("/") for o in cfg.allow_origins)
        self._any = "*" in self._origins
        self.enabled = bool(self._origins)
        self._allow_headers = [h.lower() for h in cfg.allow_headers]
        self._wild_headers = any(h.endswith("*") for h in self._allow_headers)
        self._max_age = str(cfg.max_age)

    def allowed(self, origin: str | None) -> bool:
        return origin is not None and (self._any or origin in self._origins)

    def response_headers(self, origin: str | None) -> list[tuple[str, str]]:
        """Headers for an actual response; empty when the origin is not allowed."""
        if not self.enabled or not self.allowed(origin):
            return []
        assert origin is not None
        return [
            ("access-control-allow-origin", "*" if self._any else origin),
            ("access-control-expose-headers", EXPOSED),
            ("vary", "Origin"),
        ]

    def preflight(
        self, origin: str | None, method: str | None, req_headers: str | None
    ) -> list[tuple[str, str]] | None:
        """Headers for an OPTIONS preflight, or None to refuse it (403 without CORS headers)."""
        if not self.enabled or not self.allowed(origin) or not method:
            return None
        allowed = self._allowed_request_headers(req_headers)
        return [
            *self.response_headers(origin),
            ("access-control-allow-methods", "GET, POST, PUT, PATCH, DELETE, OPTIONS"),
            ("access-control-allow-headers", allowed),
            ("access-control-max-age", self._max_age),
        ]

    def _allowed_request_headers(self, requested: str | None) -> str:
        if not requested:
            return ", ".join(h for h in self._allow_headers if not h.endswith("*"))
        names = [h.strip().lower() for h in requested.split(",") if h.strip()]
        ok = [
            n
            for n in names
            if n in self._allow_headers
            or (
                self._wild_headers
                and any(p.endswith("*") and n.startswith(p[:-1]) for p in self._allow_headers)
            )
        ]
        return ", ".join(ok)
