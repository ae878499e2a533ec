"""The semantic cache's wiring: its embedding call through the gateway's own route, and start-up.

The prompt is embedded by the embedding route the operator named (`cache.semantic.embedding_model`),
through the ordinary `forward`: the route's channels, failover, the upstream account's and the
channel's own rpm/tpm all apply, and the call is logged as its own usage record for the calling key
(endpoint `/v1/embeddings`, request id `<the request's>-semantic`, not the upstream's id), so what semantic caching costs
shows in usage and on the dashboard. The key's own model rules do not apply to it (the operator chose
the route, not the client), and it is not reserved against the key's token rate or budgets: the
request it serves was admitted on the key's request rate before the call (server/cached.py).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import orjson

from sluicegate.cache.entry import CacheRequest
from sluicegate.cache.semantic.index import missing_extra
from sluicegate.cache.semantic.shared import SharedLog
from sluicegate.cache.semantic.stage import SemanticStage
from sluicegate.inbound import DEFAULT_CODEC
from sluicegate.protocol.errors import GatewayError
from sluicegate.server.cached import Capture
from sluicegate.server.context import RequestContext

if TYPE_CHECKING:
    from sluicegate.server.app import Gateway

log = logging.getLogger("sluicegate.cache")

EMBEDDINGS = "/v1/embeddings"
MAX_ANSWER = 64 << 20


class _NoClient:
    """The protocol object of a call the gateway makes for itself: nothing goes to any client."""

    def response_bytes(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        return None

    def response_stream(self, status: int, headers: list[tuple[str, str]]) -> Any:
        return self

    async def send_bytes(self, data: bytes) -> None:
        return None

    async def send_str(self, data: str) -> None:
        return None

    async def client_disconnect(self) -> None:
        return None


class GatewayEmbedder:
    """`embed(req, model, text)`: the text's vector from the gateway's embedding route `model`."""

    def __init__(self, gw: Gateway) -> None:
        self.gw = gw
        self._warned: set[str] = set()

    async def __call__(self, req: CacheRequest, model: str, text: str) -> list[float] | None:
        from sluicegate.server.proxy import forward

        gw = self.gw
        channels = gw.routes.get(model)
        if not channels:
            if model not in self._warned:
                self._warned.add(model)
                log.error(
                    "semantic cache: embedding_model %r is not a model route; no semantic lookups", model
                )
            return None
        parent: RequestContext | None = req.context
        ctx = RequestContext(EMBEDDINGS, "POST", parent.client_ip if parent is not None else None, None)
        own_id = (parent.request_id if parent is not None else gw.request_ids.new()) + "-semantic"
        ctx.request_id = own_id
        ctx.key = parent.key if parent is not None else None
        ctx.codec = gw.codecs.get(EMBEDDINGS, DEFAULT_CODEC)
        ctx.model = model
        payload: dict[str, Any] = {"model": model, "input": text, "encoding_format": "float"}
        body = orjson.dumps(payload)
        ctx.payload, ctx.channels, ctx.body_len = payload, channels, len(body)
        capture = Capture(_NoClient(), MAX_ANSWER, send=False)
        try:
            await forward(gw, capture, ctx, model, body, {}, "")
        except GatewayError as exc:
            ctx.status, ctx.error_type = exc.status, exc.code or exc.type
        finally:
            if not ctx.status:
                ctx.status = capture.status or 502
            # Logged under the id of the request it served (not the upstream's): the two rows go together.
            ctx.request_id = own_id
            pending = gw.complete(ctx)
            if pending is not None:
                await pending
        if capture.status != 200 or capture.overflow:
            log.warning("semantic cache: the embedding call answered %s; treated as a miss", capture.status)
            return None
        try:
            vector = orjson.loads(capture.body)["data"][0]["embedding"]
        except (orjson.JSONDecodeError, KeyError, IndexError, TypeError):
            return None
        if not isinstance(vector, list) or not vector:
            return None
        return vector


def attach_semantic(gw: Gateway) -> None:
    """Plug the semantic stage into the cache when a route asks for it and the extra is installed."""
    cache = gw.cache
    if not cache.policy.any_semantic:
        return
    missing = missing_extra()
    if missing:
        log.error(
            "cache.semantic is configured but the `semantic` extra is not installed (missing: %s): "
            "pip install 'sluicegate[semantic]'. Serving exact cache matches only.",
            ", ".join(missing),
        )
        return
    shared = SharedLog(gw.redis) if cache.store.name == "redis" else None
    routes = sorted(m for m in cache.cfg.models if cache.policy.route(m).semantic is not None)
    log.info(
        "semantic cache on (%s), prompts in %s",
        ", ".join(routes) if cache.policy.route("\x00any").semantic is None else "every cached route",
        "Redis, shared by every gateway" if shared is not None else "this worker's memory",
    )
    cache.second_stage = SemanticStage(
        cache.policy,
        GatewayEmbedder(gw),
        lambda: cache.store,
        shared,
        max_partitions=cache.cfg.semantic.max_partitions,
        max_bytes=int(cache.cfg.semantic.max_memory_mb * (1 << 20)),
        timeout_s=cache.cfg.semantic.timeout_s,
    )
