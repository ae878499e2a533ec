"""The gateway as an RSGI application: one object per worker process, built from Settings.

Granian calls `__rsgi_init__` in each worker before serving (async start-up runs there on the worker's
own loop), `__rsgi__` per request, and `__rsgi_del__` after the last request (flushing happens there).
Everything the request path uses hangs off this object: no module-level state.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from typing import TYPE_CHECKING, Any

import orjson

from sluicegate import __version__
from sluicegate.cache import ResponseCache
from sluicegate.config.model import Settings
from sluicegate.inbound import build_codecs
from sluicegate.policy.keys import KeyCache, KeyEntry
from sluicegate.policy.network import client_address, parse_networks
from sluicegate.protocol.errors import (
    CorsRefused,
    GatewayError,
    InvalidPath,
    MethodNotAllowed,
    NotFound,
    ServiceUnavailable,
)
from sluicegate.protocol.paths import path_problem
from sluicegate.providers.upstream import HOP_BY_HOP, Upstream
from sluicegate.routing import Router
from sluicegate.routing.channel import Channel
from sluicegate.server.answers import codec_id_headers
from sluicegate.server.body import read_body
from sluicegate.server.context import RequestContext, RequestIds
from sluicegate.server.cors import Cors
from sluicegate.server.deadlines import BodyDeadlines
from sluicegate.server.disconnect import DisconnectWatch
from sluicegate.server.drain import start_drain
from sluicegate.server.governance import Governance
from sluicegate.server.later import Later
from sluicegate.server.proxy import CLIENT_GONE, handle_v1
from sluicegate.server.readiness import readiness
from sluicegate.server.relay import StreamObserver
from sluicegate.server.responses_state import ResponsesKeeper
from sluicegate.server.routing_state import apply_settings
from sluicegate.server.upstream_client import UpstreamClient
from sluicegate.store.records import KeyLimits, KeyRecord

if TYPE_CHECKING:
    from sluicegate.server.upstream_aiohttp import AiohttpClient

log = logging.getLogger("sluicegate")

JSON_CT = ("content-type", "application/json")


class Gateway(Governance):
    """The RSGI application (the limiter's and metering's hooks: `Governance`)."""

    # Set by apply_settings (server/routing_state.py), at start and on every catalog change.
    settings: Settings
    upstreams: dict[str, Upstream]
    routes: dict[str, list[Channel]]
    default_channels: list[Channel]
    router: Router
    unconfigured: frozenset[str]
    channel_limits: dict[str, tuple[int | None, int | None]]
    passthrough_upstream: Upstream | None
    disabled_channels: frozenset[str]

    def __init__(
        self, settings: Settings, *, missing_env: tuple[tuple[str, str], ...] = (), require_auth: bool = False
    ) -> None:
        self.settings = settings
        # The file's own settings: `settings` becomes the file plus the store's catalog once the
        # store is read (catalog/effective.py), and names defined here stay read-only in the API.
        self.file_settings = settings
        self.missing_env = missing_env
        self.health: Any = None
        self.recorder: Any = None
        apply_settings(self, settings)
        self.keys = KeyCache.from_config(settings.keys)
        self.require_auth = require_auth
        self.cors = Cors(settings.server.cors)
        self.trusted = parse_networks(settings.server.trusted_proxies)
        self.max_body = settings.server.max_body_bytes
        self.body_deadlines = BodyDeadlines(
            settings.server.body_timeout_s, settings.server.body_idle_timeout_s
        )
        # Set-ups put off until a request has run 50 ms, one beat for all (server/later.py).
        self.later = Later()
        self.disconnects = DisconnectWatch(self.later)  # clients that leave (server/disconnect.py)
        self.client: UpstreamClient | AiohttpClient
        if settings.server.upstream_client == "aiohttp":
            from sluicegate.server.upstream_aiohttp import AiohttpClient

            self.client = AiohttpClient()
        else:
            self.client = UpstreamClient(later=self.later)
        self.request_ids = RequestIds()
        self.drop_response_headers = HOP_BY_HOP
        self.model_required = frozenset(
            {
                "/v1/chat/completions",
                "/v1/completions",
                "/v1/embeddings",
                "/v1/responses",
                "/v1/messages",
                "/v1/messages/count_tokens",
            }
        )
        self.responses_state = ResponsesKeeper(settings.responses.ttl_days, settings.responses.cache_size)
        self.codecs = build_codecs(self.responses_state)  # inbound codecs by path (inbound/)
        # The response cache (cache/); its `second_stage` is where a semantic cache plugs in.
        self.cache = ResponseCache(settings.cache, settings.redis)
        pt = settings.passthrough
        self.passthrough_prefix = pt.path_prefix.rstrip("/") if pt.enabled else ""
        self._passthrough_entries: dict[str, KeyEntry] = {}
        self._created = int(time.time())
        self._model_objects: dict[str, dict[str, Any]] = {}
        self.started = False
        # Built in startup(), on the worker's own event loop.
        self.store: Any = None
        self.redis: Any = None
        self.keysync: Any = None
        self.limits: Any = None
        self.metrics: Any = None
        self.sink: Any = None
        self.redactor: Any = None
        self.configsync: Any = None
        self.objects: Any = None  # server/objects.py Ownership: who made each file and batch
        self.batches: Any = None  # server/batches.py BatchPoller
        self.tenancy: Any = None  # server/tenancy.py TenancyState: owners, groups, balances
        # Called once per charged batch with a store.owned.Charge (the tenancy balances plug in here).
        self.batch_charge: Any = None
        self.inflight: dict[asyncio.Task[Any], RequestContext] = {}  # /v1 requests running now
        self.draining = False
        self.cut_message: str | None = None  # set when shutdown ends requests that outlived the grace

    # -- lifecycle -------------------------------------------------------------------------------------

    def __rsgi_init__(self, loop: asyncio.AbstractEventLoop) -> None:
        loop.run_until_complete(self.startup())
        # Granian registered its own SIGTERM handler just before calling us; ours starts draining (the log
        # is flushed at once and in-flight requests get the grace period) and hands over to Granian as
        # SIGINT only when the drain is over. Granian's stop closes idle kept-alive connections, which reset
        # a request sent on one at that moment; until the drain is over the worker keeps answering instead,
        # every new request with a 503 and `Connection: close` (a new connection too: the worker cannot
        # stop accepting without stopping, and shutting the shared listening socket stalls Granian's stop).
        try:
            loop.add_signal_handler(signal.SIGTERM, start_drain, self)
        except (NotImplementedError, RuntimeError, ValueError):  # not the main thread / no signals here
            pass

    def __rsgi_del__(self, loop: asyncio.AbstractEventLoop) -> None:
        loop.run_until_complete(self.shutdown())

    async def startup(self) -> None:
        """Open the store, load keys, start the limiter, the log sink, the key refresher and health."""
        from sluicegate.server import services

        await services.start(self)

    async def shutdown(self) -> None:
        """Flush the log before anything closes: a SIGTERM loses no record."""
        from sluicegate.server import services

        await services.stop(self)

    def counts_tokens(self, model: str) -> bool:
        """Whether count_tokens for `model` is relayed: every channel's upstream serves it (Anthropic's
        own API: an exact count). Otherwise the gateway's estimate answers, whatever channel is up."""
        channels = self.routes.get(model)
        return bool(channels) and all(self.upstreams[c.upstream].counts_tokens for c in channels or ())

    async def read_body(self, proto: Any, headers: Any) -> bytes:
        """The request body, within the size limit and the body deadlines (413 / 408 otherwise)."""
        return await read_body(proto, headers.get("content-length"), self.max_body, self.body_deadlines)

    def configured(self, channel: Channel) -> bool:
        return channel.upstream not in self.unconfigured

    def upstream_failed(self, upstream: str, kind: str) -> None:
        if self.metrics is not None:
            self.metrics.upstream_failed(upstream, kind)

    def stream_observer(self, ctx: RequestContext) -> StreamObserver:
        return self.recorder.stream_observer(ctx) if self.recorder is not None else StreamObserver()

    def observe_body(self, ctx: RequestContext, body: bytes) -> None:
        """A whole (non-stream) answer went out: metering reads its usage here."""
        if self.recorder is not None:
            self.recorder.observe_body(ctx, body)

    def redact(self, body: bytes) -> str | None:
        return self.redactor(body) if self.redactor is not None else None

    def passthrough_entry(self, client_id: str) -> KeyEntry:
        """A pass-through client, as a key: its limits are the pass-through section's, per client key."""
        entry = self._passthrough_entries.get(client_id)
        if entry is None:
            if len(self._passthrough_entries) > 100_000:
                self._passthrough_entries.clear()
            pt = self.settings.passthrough
            entry = KeyEntry(
                KeyRecord(
                    id=client_id,
                    name="passthrough",
                    key_hash="",
                    prefix="",
                    limits=KeyLimits(rpm=pt.rpm, tpm=pt.tpm),
                    source="passthrough",
                )
            )
            self._passthrough_entries[client_id] = entry
        return entry

    def model_object(self, name: str) -> dict[str, Any]:
        obj = self._model_objects.get(name)
        if obj is None:
            obj = {"id": name, "object": "model", "created": self._created, "owned_by": "sluicegate"}
            self._model_objects[name] = obj
        return obj

    # -- RSGI ----------------------------------------------------------------------------------------------

    async def __rsgi__(self, scope: Any, proto: Any) -> None:
        if scope.proto != "http":
            return
        headers = scope.headers
        path = scope.path
        method = scope.method
        ctx = RequestContext(
            path,
            method,
            client_address(
                scope.client, headers.get_all("x-forwarded-for") if self.trusted else None, self.trusted
            ),
            headers.get("origin"),
        )
        ctx.request_id = self.request_ids.new()
        try:
            if self.draining:  # e.g. a kept-alive connection's next request: a clear answer, not a reset
                raise ServiceUnavailable(
                    "The gateway is shutting down; retry on a new connection.",
                    code="gateway_shutdown",
                    headers={"connection": "close", "retry-after": "1"},
                )
            problem = path_problem(path)
            if problem is not None:  # before anything reads the path: auth, endpoint rules, routing
                raise InvalidPath(f"Invalid request path: {problem}.")
            if method == "OPTIONS":
                self._preflight(proto, ctx, headers)
            elif path.startswith("/v1/"):
                await self._v1(scope, proto, ctx)
            elif self.passthrough_prefix and path.startswith(self.passthrough_prefix + "/v1/"):
                await self._v1(scope, proto, ctx, passthrough=True)
            elif path == "/healthz":
                self._json(proto, ctx, 200, {"status": "ok"})
            elif path == "/readyz":
                self._json(proto, ctx, *await readiness(self))
            elif path == "/metrics" and self.metrics is not None:
                ctx.status = 200
                # The sink reports its depth between writes; a stuck write is when the figure matters.
                if self.sink is not None:
                    self.metrics.set_log_queue_depth(self.sink.depth)
                    self.metrics.set_log_durability(self.sink.spill_pending, self.sink.store_writable)
                proto.response_bytes(
                    200, [("content-type", "text/plain; version=0.0.4; charset=utf-8")], self.metrics.render()
                )
            elif path.startswith("/admin/"):
                from sluicegate.admin.api import handle_admin

                await handle_admin(self, scope, proto, ctx)
            elif path == "/portal" or path.startswith("/portal/"):
                from sluicegate.portal.ui import handle_portal

                await handle_portal(self, scope, proto, ctx)
            elif path == "/" and method == "GET":
                self._json(
                    proto,
                    ctx,
                    200,
                    {
                        "name": "sluicegate",
                        "version": __version__,
                        "docs": "https://github.com/sluicegate/sluicegate",
                    },
                )
            else:
                raise NotFound(f"Unknown path {path}. The OpenAI-compatible API is under /v1/.")
        except GatewayError as exc:
            self._error(proto, ctx, exc)
        except CLIENT_GONE:
            ctx.client_gone = True
            ctx.status = ctx.status or 499
        except Exception:
            log.exception("unhandled error on %s %s (request %s)", method, path, ctx.request_id)
            self._error(proto, ctx, GatewayError("The gateway failed to handle this request."))

    async def _v1(self, scope: Any, proto: Any, ctx: RequestContext, passthrough: bool = False) -> None:
        task = asyncio.current_task()
        assert task is not None
        watch = self.disconnects.add(proto, ctx, task)
        self.inflight[task] = ctx
        try:
            if passthrough:
                from sluicegate.server.passthrough import handle_passthrough

                await handle_passthrough(self, scope, proto, ctx, self.passthrough_prefix)
            else:
                await handle_v1(self, scope, proto, ctx)
        except asyncio.CancelledError:
            if ctx.cut_for_shutdown:
                task.uncancel()
                ctx.error_type = "gateway_shutdown"
                if not ctx.status:  # nothing sent yet: the client gets a clear 503
                    raise ServiceUnavailable(
                        self.cut_message or "The gateway is shutting down.", code="gateway_shutdown"
                    ) from None
                ctx.status = 503
                return
            if not ctx.client_gone:
                raise
            # 499 even when a stream's 200 had gone out: the answer was not delivered, and the log's
            # error counts, the usage report and /metrics must not count it as a success.
            ctx.error_type = ctx.error_type or "client_disconnected"
            ctx.status = 499
            task.uncancel()
        except CLIENT_GONE:
            ctx.client_gone = True
            ctx.error_type = ctx.error_type or "client_disconnected"
            ctx.status = 499
        except GatewayError as exc:
            ctx.status, ctx.error_type = exc.status, exc.code or exc.type
            raise
        finally:
            DisconnectWatch.done(watch)
            pending = self.complete(ctx)
            if pending is not None:
                await pending
            self.inflight.pop(task, None)

    # -- small responses -------------------------------------------------------------------------------------

    def _headers(
        self, ctx: RequestContext, extra: list[tuple[str, str]] | None = None
    ) -> list[tuple[str, str]]:
        h = [JSON_CT, ("x-request-id", ctx.request_id), *ctx.extra_headers]
        h.extend(codec_id_headers(ctx))  # Anthropic's SDKs read `request-id`
        if extra:
            h.extend(extra)
        h.extend(self.cors.response_headers(ctx.origin))
        return h

    def _json(self, proto: Any, ctx: RequestContext, status: int, body: Any) -> None:
        ctx.status = status
        proto.response_bytes(status, self._headers(ctx), orjson.dumps(body))

    def _error(self, proto: Any, ctx: RequestContext, exc: GatewayError) -> None:
        ctx.status = exc.status
        ctx.error_type = ctx.error_type or exc.code or exc.type
        body = ctx.codec.error_body(exc, request_id=ctx.request_id)
        try:
            proto.response_bytes(exc.status, self._headers(ctx, list(exc.headers.items())), body)
        except CLIENT_GONE:
            pass
        except RuntimeError:  # the response had already started (a stream): nothing more can be said
            log.debug("could not send error for %s: response already started", ctx.request_id)

    def _preflight(self, proto: Any, ctx: RequestContext, headers: Any) -> None:
        allowed = self.cors.preflight(
            ctx.origin,
            headers.get("access-control-request-method"),
            headers.get("access-control-request-headers"),
        )
        if allowed is None:
            if self.cors.enabled and ctx.origin:
                raise CorsRefused("CORS preflight refused: this origin is not allowed.")
            raise MethodNotAllowed("OPTIONS is only answered for CORS preflight from an allowed origin.")
        ctx.status = 204
        proto.response_empty(204, allowed)
