"""The request path for `/v1/*`: who, what, where, then forward and relay.

Order matters for cost: cheap refusals (no key, unknown key) happen before the body is read; the body
is parsed once; the database is never touched; and the only awaits are reading the body, the limiter
(memory: no real I/O) and the upstream itself.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

from sluicegate.inbound import DEFAULT_CODEC, SAME_WIRE
from sluicegate.protocol.errors import (
    BadRequest,
    GatewayError,
    ModelNotFound,
    NotFound,
    UpstreamNotConfigured,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from sluicegate.protocol.fields import check_fields
from sluicegate.providers.upstream import CLIENT_HEADERS_READ
from sluicegate.routing import CONNECT_FAILED, FIRST_BYTE_TIMED_OUT, STREAM_CUT, classify
from sluicegate.routing.attempts import NoChannel
from sluicegate.routing.retry import AUTH_ERROR, BALANCE_ERROR, over_limit
from sluicegate.server.answers import (
    answer_headers,
    codec_id_headers,
    no_channel_error,
    openai_shaped,
    read_whole,
    relay_error_answer,
    retry_after_of,
    unusable_answer,
)
from sluicegate.server.body import body_model
from sluicegate.server.context import RequestContext
from sluicegate.server.events_relay import relay_events
from sluicegate.server.local import JSON_CT, observer_filters, respond_mock, respond_models
from sluicegate.server.objects import OBJECT_PREFIXES, OWNED_PREFIXES, handle_objects
from sluicegate.server.relay import BUDGET_EXCEEDED, CLIENT_GONE, relay_stream
from sluicegate.server.responses_owned import RESPONSES_PATH, OwnerTap, check_previous
from sluicegate.server.responses_state import KEPT_PREFIX, serve_kept_response
from sluicegate.server.translated import relay_translated
from sluicegate.server.upstream_client import response_headers
from sluicegate.server.wire import Wire, prepare_body

if TYPE_CHECKING:
    from sluicegate.server.app import Gateway

log = logging.getLogger("sluicegate.proxy")

DEFAULT_ROUTE = "\x00default"  # the router's route for /v1/* requests that name no model
# Streams whose protocol ends with a finish_reason and `[DONE]` (the Responses API has its own events).
STREAMS_WITH_DONE = frozenset({"/v1/chat/completions", "/v1/completions"})
# Streamed answers: SSE, and AWS's binary event-stream (Bedrock's ConverseStream, always translated).
STREAM_TYPES = ("text/event-stream", "application/vnd.amazon.eventstream")


def bearer_token(headers: Any) -> str | None:
    auth = headers.get("authorization")
    if auth:
        scheme, _, token = auth.partition(" ")
        if scheme.lower() == "bearer":
            return token.strip() or None
        return None
    return headers.get("x-api-key") or headers.get("api-key")


async def handle_v1(gw: Gateway, scope: Any, proto: Any, ctx: RequestContext) -> None:
    headers = scope.headers
    path = ctx.path
    # The client's API, chosen once: its codec answers errors in its shape from here on.
    codec = ctx.codec = gw.codecs.get(path, DEFAULT_CODEC)
    if not gw.keys.empty or gw.require_auth:
        ctx.key = gw.keys.authenticate(bearer_token(headers))
    if path.startswith(KEPT_PREFIX) and await serve_kept_response(gw, proto, ctx):
        return
    if ctx.method == "GET" and (path == "/v1/models" or path.startswith("/v1/models/")):
        if ctx.key is not None:
            ctx.key.check_request(None, "/v1/models", ctx.client_ip)
        respond_models(gw, proto, ctx, path[len("/v1/models/") :] if path != "/v1/models" else None)
        return
    if ctx.key is not None and ctx.key.record.limits.concurrency is not None:
        # a request still sending its body is in flight: it counts from here
        if (holding := gw.hold_slot(ctx)) is not None:
            await holding
    body = await gw.read_body(proto, headers) if ctx.method in ("POST", "PUT", "PATCH") else b""
    payload, model = body_model(headers.get("content-type", ""), body, path in gw.model_required)
    if payload is not None:
        check_fields(payload)
        ctx.stream = ctx.client_stream = payload.get("stream") is True
    if model is None and path in gw.model_required:
        raise BadRequest("You must provide a model parameter.", param="model", code="missing_model")
    ctx.model = model
    # Files, uploads and batches are kept apart per key (server/objects.py); one set lookup on chat.
    objects = path not in gw.model_required and path.startswith(OBJECT_PREFIXES)
    if ctx.key is not None:
        # No upstream reads a model from a file upload; a batch's models are checked line by line.
        needed = bool(body) and not (objects and path.startswith(OWNED_PREFIXES))
        ctx.key.check_request(model, path, ctx.client_ip, model_needed=needed)
        record = ctx.key.record
        if (record.user_id or record.team_id) and gw.tenancy is not None:
            gw.tenancy.check(record.balance_owner, model)  # a disabled user; a model their group cannot see
    if objects and await handle_objects(gw, proto, ctx, body, payload, headers, scope.query_string):
        return
    local = codec.local_answer
    # Anthropic's count_tokens: the gateway's estimate, unless the model's upstreams count exactly.
    if local is not None and payload is not None and model is not None and not gw.counts_tokens(model):
        ctx.status = 200
        proto.response_bytes(
            200,
            [
                *JSON_CT,
                ("x-request-id", ctx.request_id),
                *codec_id_headers(ctx),
                *gw.cors.response_headers(ctx.origin),
            ],
            local(gw.recorder.counter_for, payload, model),
        )
        return

    if model is not None:
        channels = gw.routes.get(model)
        if channels is None:
            raise ModelNotFound(
                f"The model '{model}' does not exist or you do not have access to it.", param="model"
            )
        route = model
    else:
        channels = gw.default_channels
        if not channels:
            raise NotFound(f"No upstream is configured for {path}.")
        route = DEFAULT_ROUTE
    if gw.unconfigured and not any(gw.configured(c) for c in channels):
        raise UpstreamNotConfigured(
            "The upstream for this model has no API key configured; the operator must set it (see /readyz)."
        )
    ctx.payload = payload
    ctx.channels = channels
    if path == RESPONSES_PATH and payload is not None and "previous_response_id" in payload:
        await check_previous(gw, ctx, channels)  # a natively stored response must be the caller's
    ctx.body_len = len(body)
    if ctx.key is not None and ctx.key.record.store_bodies:
        ctx.request_body = gw.redact(body)
    if payload is not None and gw.cache.wanted(ctx.key):  # the response cache (server/cached.py) admits
        from sluicegate.server.cached import cached_forward  # imported once a cache is on (~1 MB)

        await cached_forward(gw, proto, ctx, forward, route, body, headers, scope.query_string)
        return
    if (admitting := gw.admit(ctx)) is not None:  # None: the in-process limiter decided at once
        await admitting
    await forward(gw, proto, ctx, route, body, headers, scope.query_string)


async def forward(
    gw: Gateway, proto: Any, ctx: RequestContext, route: str, body: bytes, headers: Any, query: str
) -> None:
    """Try channels as the router says until one answers; relay its answer.

    Nothing is retried once a byte has reached the client. An upstream's own error answer is relayed
    as it is when it is the client's fault or when no channel is left, except credential and balance
    errors (the gateway's problem, which must not read as the client's key being wrong).
    """
    attempts = gw.router.plan(route, body)
    upstreams = gw.upstreams  # taken with the router: a catalog change swaps both, never half
    wire = Wire(ctx, body)
    client_headers = {name: value for name in CLIENT_HEADERS_READ if (value := headers.get(name))}
    client_headers.setdefault("content-type", "application/json")
    last_error: GatewayError | None = None
    last_answer: tuple[int, list[tuple[str, str]], bytes] | None = None
    admit = gw.configured if gw.unconfigured else None
    while True:
        channel = attempts.next(admit)
        if isinstance(channel, NoChannel):
            if last_answer is not None:  # an upstream answered and nothing is left to try: its answer
                relay_error_answer(gw, proto, ctx, *last_answer)
                return
            raise no_channel_error(channel, last_error)
        upstream = upstreams[channel.upstream]
        ctx.upstream, ctx.channel = upstream.name, channel.name
        ctx.served_model = channel.model or ctx.model
        refusal = gw.admit_upstream(ctx, upstream, channel)
        if refusal is not None and not isinstance(refusal, GatewayError):
            refusal = await refusal
        if refusal is not None:
            last_error = refusal
            attempts.record_failure(over_limit(retry_after_of(refusal)))
            continue
        found = wire.codec.edge_for(upstream)
        if found is wire.edge:  # the wire of the last attempt (the request starts on the same wire)
            src = wire.src
        else:
            try:
                src = await wire.switch(ctx, found)
            except BaseException:  # the client's request cannot be sent, not the channel's fault
                attempts.record_cancelled()
                ctx.upstream = ctx.channel = None  # nothing went upstream: logged as the gateway's answer
                raise
        # Fields the gateway itself derived from another API (/v1/messages, /v1/responses onto chat) may
        # be dropped for an upstream that does not take them; a chat client's own fields never are.
        translated = ctx.upstream_path != ctx.path
        out_body = prepare_body(
            ctx,
            src,
            channel.model or None,
            upstream.stream_usage,
            content_as_string=upstream.content_as_string,
            drop_reasoning_effort=translated and not upstream.reasoning_effort,
            drop_reasoning_history=translated and not upstream.reasoning_history,
            max_output_tokens=upstream.max_output_tokens,
        )
        if upstream.kind == "mock":
            try:
                await respond_mock(gw, proto, ctx, out_body)
            except BaseException:
                attempts.record_cancelled()
                raise
            attempts.record_success(ctx.elapsed_ms() / 1000)
            return
        key_index = int(attempts.key) if attempts.key is not None else None
        pending = upstream.pending()  # None unless credentials are still on their way (Vertex)
        if pending is not None:
            try:
                await pending
            except UpstreamUnavailable as exc:  # no token in time: this channel is not reachable yet
                gw.upstream_failed(upstream.name, exc.code or "error")
                attempts.record_failure(CONNECT_FAILED)
                last_error = exc
                continue
            except BaseException:
                attempts.record_cancelled()
                raise
        req = upstream.request(
            ctx.upstream_path, query, ctx.served_model, client_headers, key_index, out_body or None
        )
        try:
            resp = await gw.client.send(ctx.method, req.url, req.headers, req.body, upstream.timeouts)
        except GatewayError as exc:
            log.warning("upstream %s channel %s failed: %s", upstream.name, channel.name, exc.code)
            gw.upstream_failed(upstream.name, exc.code or "error")
            attempts.record_failure(
                FIRST_BYTE_TIMED_OUT if isinstance(exc, UpstreamTimeout) else CONNECT_FAILED
            )
            last_error = exc
            continue
        except BaseException:
            attempts.record_cancelled()
            raise
        try:
            if resp.status >= 400:
                answer = await resp.read()
                outcome = classify(resp.status, answer, resp.headers, time.time())
                if outcome.kind in (AUTH_ERROR, BALANCE_ERROR):
                    log.error(
                        "upstream %s channel %s refused the gateway's credentials (%s)",
                        upstream.name,
                        channel.name,
                        outcome.label,
                    )
                    last_error = UpstreamUnavailable(
                        "The upstream refused the gateway's credentials for this model; the operator has been "
                        "alerted. Your own API key is fine.",
                        code="upstream_auth_error",
                    )
                    last_answer = None
                else:
                    if ctx.edge is not SAME_WIRE:  # a native upstream's error in OpenAI's shape
                        answer = upstream.adapter.error(resp.status, answer)
                    last_answer = (resp.status, response_headers(resp, gw.drop_response_headers), answer)
                    if not resp.content_type.startswith("application/json"):
                        last_answer = openai_shaped(*last_answer)
                gw.upstream_failed(upstream.name, outcome.label)
                if attempts.record_failure(outcome):
                    log.warning(
                        "upstream %s channel %s answered %d; trying another",
                        upstream.name,
                        channel.name,
                        resp.status,
                    )
                continue
            whole: bytes | None = None
            if not resp.content_type.startswith(STREAM_TYPES):
                # A whole answer is read before anything goes out, so one that is unusable (an HTML page
                # on a JSON endpoint, a body cut short of its Content-Length) fails over like a 502.
                bad = unusable_answer(ctx, resp.content_type)
                if bad is None:
                    try:
                        whole = await read_whole(resp)
                    except UpstreamUnavailable as exc:
                        bad = exc
                if bad is not None:
                    log.warning("upstream %s channel %s: %s", upstream.name, channel.name, bad.message)
                    gw.upstream_failed(upstream.name, bad.code or "bad_answer")
                    attempts.record_failure(classify(502))
                    last_error, last_answer = bad, None
                    continue
            attempts.record_first_byte(time.perf_counter() - ctx.t0)
            await relay(gw, proto, ctx, resp, upstream, whole)
            if ctx.error_type:
                attempts.record_failure(STREAM_CUT)
            else:
                attempts.record_success()
            return
        except BaseException:
            if attempts.in_progress:
                attempts.record_cancelled()
            raise
        finally:
            await resp.aclose()


async def relay(
    gw: Gateway,
    proto: Any,
    ctx: RequestContext,
    resp: Any,
    upstream: Any,
    whole: bytes | None = None,
) -> None:
    """Relay `upstream`'s answer: a stream event by event, or the whole body (`whole`, if already read).

    The upstream object is the one the request was sent with: a catalog change may have replaced the
    gateway's upstreams since (server/routing_state.py), and this answer still belongs to the old one.
    """
    timeouts = upstream.timeouts
    out_headers = answer_headers(gw, ctx, response_headers(resp, gw.drop_response_headers))
    ctx.status = resp.status
    content_type = resp.content_type
    if content_type.startswith(STREAM_TYPES):
        ctx.stream = True
        if not content_type.startswith("text/event-stream"):  # the client gets SSE whatever the framing
            out_headers = [h for h in out_headers if h[0] != "content-type"]
            out_headers.append(("content-type", "text/event-stream"))
        observer = gw.stream_observer(ctx)
        transport = proto.response_stream(resp.status, out_headers)
        edge = ctx.edge
        if edge is not SAME_WIRE:
            decoder = upstream.adapter.stream_decoder()
            error = await relay_translated(transport, resp, timeouts, observer, ctx, edge, decoder)
        elif ctx.codec.stream_end is not None:  # a wire that ends with an event, not [DONE]
            tap = OwnerTap(gw, ctx) if resp.status < 400 and OwnerTap.wanted(gw, ctx) else None
            error = await relay_events(transport, resp, timeouts, observer, ctx.codec.stream_end, tap)
        else:
            error = await relay_stream(
                transport,
                resp,
                timeouts,
                observer,
                filtering=observer_filters(ctx, observer),
                cut_message=lambda: gw.cut_message if ctx.cut_for_shutdown else None,
                check_end=ctx.upstream_path in STREAMS_WITH_DONE,
                wants_usage=ctx.client_wants_usage and ctx.upstream_path in STREAMS_WITH_DONE,
            )
        if error:
            # The 200 went out, but the answer did not arrive whole: log the outcome, as for a client that
            # left (499), so error counts and usage reports see it. A budget's cut is logged as the 429
            # the request would have had, had the upstream been honest about max_tokens.
            ctx.error_type = error
            ctx.status = 429 if error == BUDGET_EXCEEDED else 504 if "timeout" in error else 502
        return
    data = whole if whole is not None else await read_whole(resp)
    ctx.ttft = ctx.elapsed_ms()
    gw.observe_body(ctx, data)
    edge = ctx.edge
    if edge is not SAME_WIRE:
        adapter = gw.upstreams[ctx.upstream or ""].adapter  # a native upstream's answer as chat first
        if resp.status < 400:
            data = edge.answer(ctx, adapter.answer(data))
            await edge.before_end(ctx)
        else:
            data = edge.upstream_error(
                resp.status, adapter.error(resp.status, data), request_id=ctx.request_id
            )
    elif resp.status < 400 and OwnerTap.wanted(gw, ctx):  # a response a native upstream stored
        await OwnerTap(gw, ctx).whole(data)
    proto.response_bytes(resp.status, out_headers, data)


__all__ = ["CLIENT_GONE", "handle_v1"]
