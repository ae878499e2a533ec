"""The gateway as an RSGI application: one object per worker process, built from Settings.

Granian calls `__rsgi_init__` in each worker before serving (async start-up runs there on the worker's
own loop), `__rsgi__` per request, and `__rsgi_del__` after the last request (flushing happens there).
Everything the request path uses hangs off this object: no module-level state.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import time
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any

import orjson

from sluicegate import __version__
from sluicegate.cache import ResponseCache
from sluicegate.config.model import Settings
from sluicegate.inbound import build_codecs
from sluicegate.limits.quota import RATE, REQUESTS
from sluicegate.metering.ending import charged
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
from sluicegate.server.body import read_body
from sluicegate.server.context import RequestContext, RequestIds
from sluicegate.server.cors import Cors
from sluicegate.server.deadlines import BodyDeadlines
from sluicegate.server.proxy import CLIENT_GONE, codec_id_headers, handle_v1, watch_disconnect
from sluicegate.server.recording import ending_of
from sluicegate.server.relay import StreamObserver
from sluicegate.server.responses_state import ResponsesKeeper
from sluicegate.server.routing_state import apply_settings
from sluicegate.server.upstream_client import UpstreamClient
from sluicegate.store.records import KeyLimits, KeyRecord

if TYPE_CHECKING:
    from sluicegate.server.upstream_aiohttp import AiohttpClient

log = logging.getLogger("sluicegate")

JSON_CT = ("content-type", "application/json")


class Gateway:
    """The RSGI application."""

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
        self.client: UpstreamClient | AiohttpClient
        if settings.server.upstream_client == "aiohttp":
            from sluicegate.server.upstream_aiohttp import AiohttpClient

            self.client = AiohttpClient()
        else:
            self.client = UpstreamClient()
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
        self._inflight: dict[asyncio.Task[Any], RequestContext] = {}  # /v1 requests running now
        self._draining = False
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
            loop.add_signal_handler(signal.SIGTERM, self._on_sigterm)
        except (NotImplementedError, RuntimeError, ValueError):  # not the main thread / no signals here
            pass

    def _on_sigterm(self) -> None:
        if self._draining:
            return
        self._draining = True
        log.info(
            "SIGTERM: %d request(s) in flight get %.0f s; flushing the log",
            len(self._inflight),
            self.settings.server.shutdown_grace_s,
        )
        asyncio.get_running_loop().create_task(self._drain(), name="sluicegate-drain")

    async def _drain(self) -> None:
        """Flush while requests finish; just before Granian's kill, end the rest so they are recorded;
        then let Granian stop the worker."""
        try:
            await self._drain_requests()
        finally:
            os.kill(os.getpid(), signal.SIGINT)

    async def _drain_requests(self) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max(0.0, self.settings.server.shutdown_grace_s - 1.0)
        while self._inflight and loop.time() < deadline:
            if self.sink is not None:
                await self.sink.flush()
            await asyncio.sleep(0.2)
        if self._inflight:
            log.warning(
                "ending %d request(s) still running at the end of the shutdown grace period",
                len(self._inflight),
            )
            self.cut_message = "The gateway is shutting down; this request was ended before it finished."
            tasks = list(self._inflight)
            for task, ctx in list(self._inflight.items()):
                ctx.cut_for_shutdown = True
                task.cancel()
            await asyncio.wait(tasks, timeout=0.5)
        if self.sink is not None:
            await self.sink.flush()

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

    # -- hooks the limiter and metering plug into ----------------------------------------------------------

    # Each hook returns None when its work is done (the in-process limiter: no coroutine at all), or an
    # awaitable the caller must await (Redis): `if (pending := gw.admit(ctx)) is not None: await pending`.

    def admit(
        self, ctx: RequestContext, *, requests_only: bool = False, request_rates: bool | None = None
    ) -> Awaitable[None] | None:
        """Check and reserve the request's quotas (raises RateLimited / QuotaExceeded).

        `requests_only`: an answer from the response cache counts against request rates and
        concurrency, never against token rates or budgets (it uses no tokens).
        `request_rates`: True, only the request rates (final at once, nothing to settle: the semantic
        cache admits them before its embedding call); False, every quota but those (the rest of the
        same request's admission, after that)."""
        gate = self.limits
        if gate is None:
            return None
        quotas = gate.quotas_for(ctx.key, ctx.model, slot_held=ctx.slot is not None)
        if requests_only:
            quotas = tuple(q for q in quotas if q.metric == REQUESTS)
        if request_rates is not None:
            quotas = tuple(q for q in quotas if (q.metric == REQUESTS and q.kind == RATE) is request_rates)
        if not quotas:
            return None
        if gate.synchronous:
            gate.admit_nowait(ctx, quotas)
            return None
        return gate.admit(ctx, quotas)

    def hold_slot(self, ctx: RequestContext) -> Awaitable[None] | None:
        """The key's concurrency slot, taken as soon as the key is known (see LimitGate.hold_slot)."""
        gate = self.limits
        if gate is None:
            return None
        if gate.synchronous:
            gate.hold_slot_nowait(ctx)
            return None
        return gate.hold_slot(ctx)

    def complete(self, ctx: RequestContext) -> Awaitable[None] | None:
        """The request is over, however it ended: settle its limits with what it used, and record it."""
        gate = self.limits
        rec = self.recorder
        if rec is None:
            if ctx.slot is not None and gate is not None:
                if gate.synchronous:
                    gate.settle_nowait(ctx, None, None)
                    return None
                return gate.settle(ctx, None, None)
            return None
        usage = rec.usage(ctx) if ctx.upstream is not None else None
        cost = rec.cost(ctx, usage) if usage is not None else None
        pending: Awaitable[None] | None = None
        if (
            ctx.admission is not None or ctx.upstream_admission is not None or ctx.slot is not None
        ) and gate is not None:
            # What the key is charged is one function of how the request ended (metering/ending.py).
            charge = charged(ending_of(ctx), usage)
            tokens: int | None = None
            cost_usd: float | None = None
            balance = 0
            if charge is not None:
                charge_cost = cost if charge is usage else rec.cost(ctx, charge)
                cost_usd = rec.to_usd(*charge_cost) if charge_cost is not None else 0.0
                tokens = charge.total_tokens
                key = ctx.key
                if (
                    key is not None
                    and (key.record.user_id or key.record.team_id)
                    and self.tenancy is not None
                ):
                    # The one exact integer both the limiter and the ledger add (server/tenancy.py).
                    owner = key.record.balance_owner
                    assert owner is not None
                    balance = self.tenancy.charge(owner, charge_cost)
                    if balance:
                        ctx.charge_owner, ctx.charge = owner, balance
            if gate.synchronous:
                gate.settle_nowait(ctx, tokens, cost_usd, balance)
            else:
                pending = gate.settle(ctx, tokens, cost_usd, balance)
        if pending is None:
            rec.record(ctx, usage, cost)
            return None
        return self._settled_then_recorded(pending, ctx, usage, cost)

    async def _settled_then_recorded(
        self, settling: Awaitable[None], ctx: RequestContext, usage: Any, cost: Any
    ) -> None:
        try:
            await settling
        finally:
            self.recorder.record(ctx, usage, cost)

    def admit_upstream(
        self, ctx: RequestContext, upstream: Any, channel: Channel
    ) -> GatewayError | Awaitable[GatewayError | None] | None:
        """The upstream account's and the channel's own rpm/tpm: a refusal (returned, not raised) sends the
        router elsewhere. An awaitable when the limiter is not in-process."""
        limits = self.channel_limits.get(channel.name)
        gate = self.limits
        if gate is None or not (upstream.rpm or upstream.tpm or limits):
            return None
        if gate.synchronous:
            return gate.admit_upstream_nowait(ctx, upstream, channel.name, limits)
        return gate.admit_upstream(ctx, upstream, channel.name, limits)

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
            if self._draining:  # e.g. a kept-alive connection's next request: a clear answer, not a reset
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
                await self._readyz(proto, ctx)
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
        watcher = watch_disconnect(proto, ctx, task)
        self._inflight[task] = ctx
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
            watcher.cancel()
            pending = self.complete(ctx)
            if pending is not None:
                await pending
            self._inflight.pop(task, None)

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

    async def _readyz(self, proto: Any, ctx: RequestContext) -> None:
        real = [n for n, u in self.upstreams.items() if u.kind != "mock"]
        unconfigured = sorted(n for n, u in self.upstreams.items() if u.missing_key)
        checks: dict[str, Any] = {
            # Ready to serve: some real upstream is usable, or only the built-in mock is set up.
            "upstreams_configured": any(not self.upstreams[n].missing_key for n in real)
            if real
            else bool(self.routes),
            "upstreams": {
                n: ("not_configured" if self.upstreams[n].missing_key else "configured") for n in real
            },
            "models": len(self.routes),
        }
        checks.update(await self.ready_checks())
        # A store that cannot write while the log is durable (records wait in memory and in the local
        # spill, nothing is lost) is "degraded", still 200: every gateway shares the one database, so
        # taking them all out of the load balancer would turn a logging outage into a total one.
        # 503 once usage is being lost (queue and spill full, or no spill to fall back on).
        store_down = checks.get("store") is False or checks.get("store_writable") is False
        durable = bool(checks.get("log_durable", not store_down)) and (
            not store_down or bool(checks.get("log_can_spill"))
        )
        if "log_durable" in checks:
            checks["log_durable"] = durable
        ok = (
            checks["upstreams_configured"]
            and checks.get("redis") is not False
            and (not store_down or durable)
        )
        status = "not_ready" if not ok else "degraded" if store_down else "ready"
        body = {"status": status, **checks}
        if unconfigured:
            body["missing_secrets"] = [f"{path} (${{{var}}})" for path, var in self.missing_env]
        self._json(proto, ctx, 200 if ok else 503, body)

    async def ready_checks(self) -> dict[str, Any]:
        checks: dict[str, Any] = {}
        if self.store is not None:
            checks["store"] = await self.store.ping()
        if self.sink is not None:
            checks["log_queue_depth"] = self.sink.depth
            checks["store_writable"] = self.sink.store_writable
            checks["log_spilled"] = self.sink.spill_pending
            checks["log_can_spill"] = self.sink.can_spill
            checks["log_durable"] = self.sink.durable
            checks["log_dropped"] = self.sink.dropped
        if self.redis is not None:
            try:
                checks["redis"] = bool(await self.redis.ping())
            except Exception:
                checks["redis"] = False
        checks["channels"] = [
            {k: v for k, v in c.items() if k != "keys"} for c in self.router.snapshot().get("channels", [])
        ]
        return checks
