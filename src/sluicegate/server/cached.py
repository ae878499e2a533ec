"""The response cache on the request path: look up, serve a hit, or relay a miss and keep its answer.

Called by `handle_v1` before admission: a hit is admitted on the key's request quotas only (rpm, rpd,
concurrency), so it counts as a request but costs no tokens and no budget; a miss, or a bypass, on
all of them as usual. A miss is relayed by the
ordinary `forward` through a `Capture` that sees the bytes the client gets: a whole answer as it is,
a stream read back into the whole answer (cache/assemble.py). Nothing is stored from an answer that
failed, was cut, or is larger than `max_entry_bytes`.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import orjson

from sluicegate.cache.assemble import whole_answer
from sluicegate.cache.embeddings import EMBEDDINGS_PATH, input_keys, inputs_of, merged_answer, split_answer
from sluicegate.cache.entry import CacheEntry, CacheRequest
from sluicegate.cache.policy import BYPASS, CACHE_HEADER, HIT, MISS, Decision
from sluicegate.cache.replay import replay_stream
from sluicegate.protocol.jsonbytes import dumps_kept
from sluicegate.server.reservation import asked_max_tokens

if TYPE_CHECKING:
    from sluicegate.server.app import Gateway
    from sluicegate.server.context import RequestContext

log = logging.getLogger("sluicegate.cache")

Forward = Callable[..., Awaitable[None]]
SSE_CT = ("content-type", "text/event-stream")
JSON_CT = ("content-type", "application/json")
INPUTS_HIT_HEADER = "x-sluicegate-cache-inputs-hit"
SIMILARITY_HEADER = "x-sluicegate-cache-similarity"  # a semantic hit: how close the two prompts were


class _Tee:
    """A stream transport that keeps a copy of what it sends (up to the capture's limit)."""

    __slots__ = ("_capture", "_transport")

    def __init__(self, transport: Any, capture: Capture) -> None:
        self._transport = transport
        self._capture = capture

    async def send_bytes(self, data: bytes) -> None:
        self._capture.keep(data)
        await self._transport.send_bytes(data)

    async def send_str(self, data: str) -> None:
        self._capture.keep(data.encode())
        await self._transport.send_str(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class Capture:
    """The RSGI protocol object as `forward` sees it: everything passes through, and the answer's
    bytes are kept. With `send=False` nothing reaches the client (an embeddings batch to be merged)."""

    __slots__ = ("_proto", "content_type", "headers", "limit", "overflow", "parts", "send", "size", "status")

    def __init__(self, proto: Any, limit: int, *, send: bool = True) -> None:
        self._proto = proto
        self.limit = limit
        self.send = send
        self.status = 0
        self.headers: list[tuple[str, str]] = []
        self.content_type = ""
        self.parts: list[bytes] = []
        self.size = 0
        self.overflow = False

    def keep(self, data: bytes) -> None:
        if self.overflow:
            return
        self.size += len(data)
        if self.size > self.limit:
            self.overflow, self.parts = True, []
        else:
            self.parts.append(data)

    def _started(self, status: int, headers: list[tuple[str, str]]) -> None:
        self.status, self.headers = status, headers
        self.content_type = next((v for k, v in headers if k == "content-type"), "")

    def response_bytes(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        self._started(status, headers)
        self.keep(body)
        if self.send:
            self._proto.response_bytes(status, headers, body)

    def response_stream(self, status: int, headers: list[tuple[str, str]]) -> Any:
        self._started(status, headers)
        self.content_type = self.content_type or "text/event-stream"
        return _Tee(self._proto.response_stream(status, headers), self)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._proto, name)

    @property
    def body(self) -> bytes:
        return b"".join(self.parts)


async def cached_forward(
    gw: Gateway, proto: Any, ctx: RequestContext, forward: Forward, route: str, body: bytes, *rest: Any
) -> None:
    """`gw.admit(ctx)` then `forward(gw, proto, ctx, route, body, *rest)`, with the response cache
    around them: a hit is admitted on the key's request quotas only (rpm, concurrency), a miss on all."""
    cache = gw.cache
    payload = ctx.payload
    assert payload is not None
    made = cache.request(ctx.path, ctx.model or "", payload, ctx.key, rest[0], ctx.client_stream)
    if made is None:
        if (admitting := gw.admit(ctx)) is not None:
            await admitting
        await forward(gw, proto, ctx, route, body, *rest)
        return
    req, decision = made
    if ctx.path == EMBEDDINGS_PATH:
        await _embeddings(gw, proto, ctx, forward, route, body, rest, req, decision)
        return
    if not (decision.lookup or decision.store):
        ctx.extra_headers.append((CACHE_HEADER, BYPASS))
        cache.count(ctx.model, BYPASS)
        if (admitting := gw.admit(ctx)) is not None:
            await admitting
        await forward(gw, proto, ctx, route, body, *rest)
        return
    req.context = ctx
    # The request rates are admitted before the second stage's work (the semantic stage's embedding
    # call), so a key over its rate never costs an upstream call; `request_rates` is then False: the
    # admission that follows (a hit's or a miss's) takes every quota but those, nothing twice.
    request_rates: bool | None = None
    if decision.lookup:
        entry = await cache.lookup_exact(req)
        if entry is None and cache.second_applies(req):
            if (admitting := gw.admit(ctx, request_rates=True)) is not None:
                await admitting
            request_rates = False
            entry = await cache.lookup_second(req)
        if entry is not None:
            if (admitting := gw.admit(ctx, requests_only=True, request_rates=request_rates)) is not None:
                await admitting
            serve_hit(gw, proto, ctx, entry)
            return
    ctx.extra_headers.append((CACHE_HEADER, MISS))
    cache.count(ctx.model, MISS)
    if (admitting := gw.admit(ctx, request_rates=request_rates)) is not None:
        await admitting
    if not decision.store:
        await forward(gw, proto, ctx, route, body, *rest)
        return
    capture = Capture(proto, cache.max_entry_bytes * 4)
    await forward(gw, capture, ctx, route, body, *rest)
    entry = answer_entry(gw, ctx, capture, payload)
    if entry is not None:
        await cache.put(req, entry)


def hit_headers(gw: Gateway, ctx: RequestContext, entry: CacheEntry, stream: bool) -> list[tuple[str, str]]:
    from sluicegate.server.answers import codec_id_headers

    return [
        SSE_CT if stream else JSON_CT,
        ("x-request-id", ctx.request_id),
        *codec_id_headers(ctx),
        *ctx.extra_headers,
        (CACHE_HEADER, HIT),
        ("age", str(entry.age())),
        *(((SIMILARITY_HEADER, f"{entry.similarity:.4f}"),) if entry.similarity is not None else ()),
        *gw.cors.response_headers(ctx.origin),
    ]


def _mark_hit(gw: Gateway, ctx: RequestContext, entry: CacheEntry) -> None:
    ctx.status = 200
    ctx.cache_hit = True
    ctx.tokens_saved, ctx.cost_saved, ctx.saved_currency = entry.tokens, entry.cost, entry.currency
    ctx.served_model = entry.model_served or ctx.model
    ctx.ttft = ctx.elapsed_ms()
    gw.cache.count(ctx.model, HIT, entry)


def serve_hit(gw: Gateway, proto: Any, ctx: RequestContext, entry: CacheEntry) -> None:
    """The cached answer, whole or as a stream in the client's protocol."""
    _mark_hit(gw, ctx, entry)
    stream = ctx.client_stream
    ctx.stream = stream
    if stream:
        opts = (ctx.payload or {}).get("stream_options")
        include_usage = isinstance(opts, dict) and opts.get("include_usage") is True
        data = replay_stream(entry.path, entry.body, include_usage)
    else:
        data = entry.body
    if ctx.key is not None and ctx.key.record.store_bodies:  # the answer the client got, as for a miss
        ctx.response_body = gw.redact(data)
    proto.response_bytes(200, hit_headers(gw, ctx, entry, stream), data)


def answer_entry(
    gw: Gateway, ctx: RequestContext, capture: Capture, asked: dict[str, Any]
) -> CacheEntry | None:
    """The whole answer the client got, as an entry; None if it is not one to keep.

    Not kept either: an answer a budget bounded below what the request `asked` (max_tokens lowered to
    what the key had left, below the client's own or the default reservation), which is not the
    answer the request would get another day."""
    if capture.status != 200 or ctx.error_type or ctx.client_gone or capture.overflow or not capture.parts:
        return None
    clamp = ctx.max_tokens_clamp
    if clamp is not None:
        bound = asked_max_tokens(asked) or gw.settings.limits.default_completion_tokens
        if clamp < bound:
            return None
    raw = capture.body
    if capture.content_type.startswith("text/event-stream"):
        if (ctx.payload or {}).get("logprobs"):  # assembling keeps no per-token logprobs: not whole
            return None
        answer = whole_answer(ctx.path, raw)
        if answer is None:
            return None
    else:
        try:
            answer = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return None
        if not isinstance(answer, dict) or answer.get("error") is not None:
            return None
    rec = gw.recorder
    usage = rec.usage(ctx) if rec is not None else None
    if usage is not None and ctx.path == "/v1/chat/completions" and not answer.get("usage"):
        answer["usage"] = {
            "prompt_tokens": usage.prompt_tokens,
            "completion_tokens": usage.completion_tokens,
            "total_tokens": usage.total_tokens,
        }
        raw = dumps_kept(answer)
    elif capture.content_type.startswith("text/event-stream"):
        raw = dumps_kept(answer)
    cost = rec.cost(ctx, usage) if rec is not None and usage is not None else None
    return CacheEntry(
        path=ctx.path,
        body=raw,
        model_served=ctx.served_model,
        prompt_tokens=usage.prompt_tokens if usage is not None else 0,
        completion_tokens=usage.completion_tokens if usage is not None else 0,
        cost=cost[0] if cost else 0.0,
        currency=cost[1] if cost else "",
    )


async def _embeddings(
    gw: Gateway,
    proto: Any,
    ctx: RequestContext,
    forward: Forward,
    route: str,
    body: bytes,
    rest: tuple[Any, ...],
    req: CacheRequest,
    decision: Decision,
) -> None:
    """Each input on its own: cached inputs are served, only the others go upstream, merged in order."""
    cache = gw.cache
    payload = ctx.payload or {}
    split = inputs_of(payload)
    if split is None or not (decision.lookup or decision.store):
        ctx.extra_headers.append((CACHE_HEADER, BYPASS))
        cache.count(ctx.model, BYPASS)
        if (admitting := gw.admit(ctx)) is not None:
            await admitting
        await forward(gw, proto, ctx, route, body, *rest)
        return
    items, _listed = split
    keys = input_keys(req.scope, req.model, payload, items)
    found = await cache.get_many(keys) if decision.lookup else [None] * len(items)
    missing = [i for i, entry in enumerate(found) if entry is None or entry.path != EMBEDDINGS_PATH]
    if not missing:  # every input cached: no upstream call at all
        entries = [e for e in found if e is not None]
        saved = CacheEntry(
            path=EMBEDDINGS_PATH,
            body=b"",
            model_served=entries[0].model_served,
            prompt_tokens=sum(e.prompt_tokens for e in entries),
            cost=sum(e.cost for e in entries),
            currency=entries[0].currency,
            created=min(e.created for e in entries),
        )
        if (admitting := gw.admit(ctx, requests_only=True)) is not None:
            await admitting
        _mark_hit(gw, ctx, saved)
        data = merged_answer(entries, saved.model_served or req.model, saved.prompt_tokens)
        proto.response_bytes(200, hit_headers(gw, ctx, saved, False), data)
        return
    cached = len(items) - len(missing)
    ctx.extra_headers.append((CACHE_HEADER, MISS))
    if cached:
        ctx.extra_headers.append((INPUTS_HIT_HEADER, str(cached)))
    cache.count(ctx.model, MISS)
    if (admitting := gw.admit(ctx)) is not None:
        await admitting
    if cached:  # only the new inputs go upstream
        sent = {**payload, "input": [items[i] for i in missing]}
        ctx.payload = sent
        body = dumps_kept(sent)
    capture = Capture(proto, 1 << 62, send=not cached)
    await forward(gw, capture, ctx, route, body, *rest)
    fresh: list[CacheEntry] | None = None
    if capture.status == 200 and not ctx.error_type and not ctx.client_gone:
        rec = gw.recorder
        usage = rec.usage(ctx) if rec is not None else None
        cost = rec.cost(ctx, usage) if rec is not None and usage is not None else None
        fresh = split_answer(
            capture.body,
            [items[i] for i in missing],
            ctx.served_model,
            cost[0] if cost else 0.0,
            cost[1] if cost else "",
        )
        if fresh is not None and decision.store:
            await cache.put_many(list(zip([keys[i] for i in missing], fresh, strict=True)), req.ttl_s)
    if not cached:
        return
    if fresh is None:  # the upstream's error (or an answer that cannot be merged): as it came
        headers = [h for h in capture.headers if h[0] != "content-length"]
        if capture.status:
            proto.response_bytes(capture.status, headers, capture.body)
        return
    merged: list[CacheEntry] = list(found)  # type: ignore[arg-type]
    for position, entry in zip(missing, fresh, strict=True):
        merged[position] = entry
    old = [found[i] for i in range(len(items)) if i not in set(missing)]
    ctx.tokens_saved = sum(e.prompt_tokens for e in old if e is not None)
    ctx.cost_saved = sum(e.cost for e in old if e is not None)
    ctx.saved_currency = next((e.currency for e in old if e is not None), "")
    prompt = sum(e.prompt_tokens for e in merged)
    data = merged_answer(merged, ctx.served_model or req.model, prompt)
    headers = [h for h in capture.headers if h[0] not in ("content-length", "content-type")]
    proto.response_bytes(200, [JSON_CT, *headers], data)
