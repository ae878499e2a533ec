"""Whether a request is cached, and how: the config's `cache:` section, its per-model overrides, the
key's own setting and the request's headers, folded into one decision. Pure: tested without a socket.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sluicegate.config.model import CacheConfig, CacheRouteConfig

# The client APIs whose answers are cached. Embeddings are cached per input (cache/embeddings.py).
CACHED_PATHS = frozenset({"/v1/chat/completions", "/v1/responses", "/v1/messages", "/v1/embeddings"})

HIT, MISS, BYPASS = "hit", "miss", "bypass"
CACHE_HEADER = "x-sluicegate-cache"


@dataclass(frozen=True, slots=True)
class SemanticPolicy:
    """The semantic stage of one public model (cache/semantic/): which embedding route, how close."""

    embedding_model: str
    threshold: float
    max_entries: int


@dataclass(frozen=True, slots=True)
class RoutePolicy:
    """The cache settings of one public model: the section's, with the model's overrides applied."""

    enabled: bool
    ttl_s: float
    scope: str
    deterministic_only: bool
    semantic: SemanticPolicy | None = None  # None: exact matches only


@dataclass(frozen=True, slots=True)
class Decision:
    """What the cache does for one request: look up (`lookup`), store the answer (`store`)."""

    lookup: bool
    store: bool
    policy: RoutePolicy


class CachePolicy:
    def __init__(self, cfg: CacheConfig) -> None:
        self.cfg = cfg
        self._default = RoutePolicy(
            cfg.enabled, cfg.ttl_s, cfg.scope, cfg.deterministic_only, semantic_policy(cfg, None)
        )
        self._explicit: dict[str, bool | None] = {m: o.enabled for m, o in cfg.models.items()}
        self._routes = {
            model: RoutePolicy(
                o.enabled if o.enabled is not None else cfg.enabled,
                o.ttl_s if o.ttl_s is not None else cfg.ttl_s,
                o.scope if o.scope is not None else cfg.scope,
                o.deterministic_only if o.deterministic_only is not None else cfg.deterministic_only,
                semantic_policy(cfg, o),
            )
            for model, o in cfg.models.items()
        }
        # Whether anything at all may be cached without a key asking for it: when not, and no key says
        # "on", the request path skips the cache with one attribute read.
        self.any_enabled = cfg.enabled or any(p.enabled for p in self._routes.values())
        # Whether any route may use the semantic stage (the gateway builds it only then).
        self.any_semantic = any(
            p.semantic is not None for p in (self._default, *self._routes.values()) if p.enabled
        )

    def route(self, model: str) -> RoutePolicy:
        return self._routes.get(model, self._default)

    def decide(
        self, path: str, model: str, payload: dict[str, Any], key_setting: str | None, headers: Any
    ) -> Decision | None:
        """None: the cache has nothing to say about this path (no header). Otherwise what to do; a
        Decision with neither lookup nor store is a bypass the client is told about (a route or key
        with the cache off, a request not deterministic enough, `x-sluicegate-cache: off`)."""
        if path not in CACHED_PATHS:
            return None
        policy = self.route(model)
        enabled = policy.enabled
        if key_setting == "off":
            enabled = False
        elif key_setting == "on" and self._explicit.get(model) is not False:
            enabled = True
        if not enabled:
            return Decision(False, False, policy)
        lookup = store = True
        asked = (headers.get(CACHE_HEADER) or "").strip().lower()
        if asked == "off":
            lookup = store = False
        elif asked == "refresh":
            lookup = False
        control = (headers.get("cache-control") or "").lower()
        if control:
            directives = {d.strip().split("=", 1)[0] for d in control.split(",")}
            if "no-cache" in directives:
                lookup = False
            if "no-store" in directives:
                store = False
        if policy.deterministic_only and path != "/v1/embeddings" and not deterministic(payload):
            lookup = store = False
        return Decision(lookup, store, policy)


def semantic_policy(cfg: CacheConfig, route: CacheRouteConfig | None) -> SemanticPolicy | None:
    """The route's semantic settings over the section's; None when the stage is off for the route."""
    top = cfg.semantic
    sem = route.semantic if route is not None else None
    # A route's own `semantic:` turns the stage on for it, unless it says `enabled: false`.
    enabled = (sem.enabled is not False) if sem is not None else top.enabled
    model = (sem.embedding_model if sem is not None else None) or top.embedding_model
    if not enabled or not model:
        return None
    return SemanticPolicy(
        embedding_model=model,
        threshold=sem.threshold if sem is not None and sem.threshold is not None else top.threshold,
        max_entries=sem.max_entries if sem is not None and sem.max_entries is not None else top.max_entries,
    )


def deterministic(payload: dict[str, Any]) -> bool:
    """Deterministic enough to cache: `temperature: 0`, or a `seed`."""
    if payload.get("seed") is not None:
        return True
    temperature = payload.get("temperature")
    return temperature is not None and not isinstance(temperature, bool) and temperature == 0


def scope_of(scope: str, key: Any) -> str:
    """The tenant part of every cache key. A key's own id by default; its owner (a team) when the
    operator says so (a key with no owner stays alone); everyone for `global`."""
    if scope == "global":
        return "*"
    if key is None:
        return "anonymous"
    record = key.record
    if scope == "owner" and record.owner:
        return "o:" + record.owner
    return "k:" + record.id
