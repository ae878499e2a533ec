"""Responses API state for chat-only upstreams: kept in memory and in the store, served by id.

`previous_response_id` must find the response the client just received, on whichever worker (or node)
the next request lands. So a stored response is put in this worker's memory at once and written to the
database *before* its last byte goes out (the codec's `before_end`); later reads on this worker come
from memory, other workers read the database. That is one small write per stored response, at its end,
never before the first byte; `store: false` (what Codex sends) costs nothing. A deleted response is
dropped from this worker's memory and the store; `GET` always reads the store, but another worker may
still continue it from memory (`previous_response_id`) until it falls out (`responses.cache_size`).
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

import orjson

from sluicegate.server.responses_owned import is_callers, not_found

if TYPE_CHECKING:
    from sluicegate.server.app import Gateway
    from sluicegate.server.context import RequestContext

log = logging.getLogger("sluicegate.responses")

KEPT_PREFIX = "/v1/responses/"


class ResponsesKeeper:
    """The `ResponsesStateStore` the Responses codec is given (inbound/openai_responses.py)."""

    def __init__(self, ttl_days: float, cache_size: int) -> None:
        self.ttl_s = ttl_days * 86400
        self.cache_size = cache_size
        self.repo: Any = None  # the store's ResponsesRepository, set when the worker starts
        self._cache: OrderedDict[str, tuple[str, float, dict[str, Any]]] = OrderedDict()

    def _remember(self, key_id: str, response_id: str, kept: dict[str, Any]) -> None:
        if not self.cache_size:
            return
        self._cache[response_id] = (key_id, time.time() + self.ttl_s, kept)
        self._cache.move_to_end(response_id)
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)

    async def save(self, key_id: str, response: dict[str, Any], items: list[Any]) -> None:
        self._remember(key_id, response["id"], {"response": response, "items": items})
        if self.repo is not None:
            try:
                await self.repo.save(key_id, response, items, self.ttl_s)
            except Exception as exc:  # the answer is good; only its later retrieval elsewhere suffers
                log.error("could not store response %s: %s", response["id"], type(exc).__name__)

    async def load(self, key_id: str, response_id: str, *, fresh: bool = False) -> dict[str, Any] | None:
        """The kept response; `fresh` reads the store even when memory has it (a `GET` must not show a
        response another worker has deleted)."""
        hit = None if fresh and self.repo is not None else self._cache.get(response_id)
        if hit is not None:
            owner, expires, kept = hit
            if owner == key_id and expires > time.time():
                return kept
            if owner == key_id:
                self._cache.pop(response_id, None)
            return None
        if self.repo is None:
            return None
        found: dict[str, Any] | None = await self.repo.load(key_id, response_id)
        if found is not None:
            self._remember(key_id, response_id, found)
        return found

    async def delete(self, key_id: str, response_id: str) -> bool:
        hit = self._cache.get(response_id)
        in_memory = hit is not None and hit[0] == key_id
        if in_memory:
            self._cache.pop(response_id, None)
        stored = await self.repo.delete(key_id, response_id) if self.repo is not None else False
        return in_memory or bool(stored)


async def answer_kept(gw: Gateway, proto: Any, ctx: RequestContext, response_id: str) -> bool:
    """`GET`/`DELETE /v1/responses/{id}` for a response the gateway kept; False when it has none, so the
    request is relayed to an upstream that may (one serving the Responses API itself)."""
    keeper: ResponsesKeeper = gw.responses_state
    key_id = ctx.key.record.id if ctx.key is not None else ""
    if ctx.method == "GET":
        kept = await keeper.load(key_id, response_id, fresh=True)
        if kept is None:
            return False
        body = orjson.dumps(kept["response"])
    elif ctx.method == "DELETE":
        if not await keeper.delete(key_id, response_id):
            return False
        body = orjson.dumps({"id": response_id, "object": "response", "deleted": True})
    else:
        return False
    ctx.status = 200
    headers = [("content-type", "application/json"), ("x-request-id", ctx.request_id)]
    proto.response_bytes(200, [*headers, *gw.cors.response_headers(ctx.origin)], body)
    return True


async def serve_kept_response(gw: Gateway, proto: Any, ctx: RequestContext) -> bool:
    """Answer `/v1/responses/{id}` (and its sub-resources) from the gateway's state when it kept that
    response; otherwise let it be relayed, if that is allowed.

    A response the gateway keeps itself is served from its state (`GET`, `DELETE`). Any other id is relayed
    when the default upstream serves the Responses API itself and the gateway recorded the caller's key as
    the response's maker there (server/responses_owned.py), and is 404 otherwise: another key's id is not
    found, as if it never was.
    """
    rest = ctx.path[len(KEPT_PREFIX) :]
    response_id, _, sub = rest.partition("/")
    if not response_id or (ctx.method == "POST" and sub != "cancel"):
        return False  # POST /v1/responses/input_tokens, /compact...: not a stored response
    if ctx.key is not None:
        ctx.key.check_request(None, "/v1/responses", ctx.client_ip)
    if not sub and await answer_kept(gw, proto, ctx, response_id):
        return True
    if not any(gw.upstreams[c.upstream].responses_native for c in gw.default_channels):
        raise not_found(response_id)
    if ctx.key is not None and not await is_callers(gw, ctx, response_id):
        raise not_found(response_id)
    return False
