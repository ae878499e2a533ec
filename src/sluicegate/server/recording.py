"""Between the HTTP shell and metering: what each request used and cost, logged off the path.

The relay hands every stream event to a StreamMeter (which also hides the usage chunk the gateway asked
for on the client's behalf) and every whole answer's bytes to `observe_body`. When the request is over,
however it ended (done, failed, or abandoned by the client), `usage` settles what was used (counted when
the upstream reported nothing) and `record` queues one RequestRecord for the batched log and updates
the metrics. Nothing here awaits.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import fields
from typing import TYPE_CHECKING, Any

import orjson

from sluicegate.config.model import Settings
from sluicegate.metering.ending import Ending
from sluicegate.metering.prices import UNPRICED, Cost, PriceTable
from sluicegate.metering.stream import StreamMeter
from sluicegate.metering.tokens import TokenCounter
from sluicegate.metering.usage import Usage, usage_from_body, usage_or_estimate
from sluicegate.server.relay import EndStream, StreamObserver
from sluicegate.store.records import RequestRecord

if TYPE_CHECKING:
    from sluicegate.metering.metrics import Metrics
    from sluicegate.metering.redact import Redactor
    from sluicegate.metering.sink import LogSink
    from sluicegate.server.context import RequestContext

log = logging.getLogger("sluicegate.metering")

# Recorder.record builds a RequestRecord by position: these must be its fields, in order.
_RECORD_ORDER = (
    "request_id", "ts", "key_id", "key_name", "endpoint", "model_requested", "model_served", "upstream",
    "channel", "status", "error_type", "prompt_tokens", "completion_tokens", "cached_tokens",
    "reasoning_tokens", "usage_estimated", "cost", "currency", "latency_ms", "ttft_ms", "stream", "client_ip",
    "request_body", "response_body", "record_id", "usage_clamped", "cache_hit", "tokens_saved", "cost_saved",
    "charge_owner", "charge",
)  # fmt: skip
if tuple(f.name for f in fields(RequestRecord)) != _RECORD_ORDER:
    raise RuntimeError(
        "RequestRecord's fields changed: update Recorder.record, which passes them by position"
    )

METERED_PATHS = frozenset(
    {"/v1/chat/completions", "/v1/completions", "/v1/embeddings", "/v1/responses", "/v1/messages"}
)


class MeterObserver(StreamObserver):
    """Adapts a StreamMeter to the relay's observer interface."""

    __slots__ = ("_first", "_settle", "ctx", "may_drop", "meter")

    def __init__(self, ctx: RequestContext, settle: Callable[[], Usage | None] | None = None) -> None:
        self.ctx = ctx
        self.meter = StreamMeter(ctx.client_wants_usage)
        self.may_drop = not ctx.client_wants_usage
        self._settle = settle
        self._first: bytes | None = None  # the first event, kept by reference: the stream's id and model

    def on_event(self, data: bytes) -> bool:
        if self._first is None:
            self._first = data
        return self.meter.feed(data)

    def on_first_byte(self) -> None:
        self.ctx.ttft = self.ctx.elapsed_ms()

    def estimated_usage(self) -> Usage | None:
        """The gateway's own count when the upstream reported no usage; None when it did.

        Settles the request's usage once (the same figure is logged, marked estimated), so the count
        the client sees is the count billed.
        """
        if self.meter.reported is not None or self._settle is None:
            return None
        usage = self._settle()
        if usage is not None:
            log.debug(  # the request's log row says usage_estimated; this line is for tracing one
                "request %s: upstream sent no usage; sending the gateway's estimate", self.ctx.request_id
            )
        return usage

    def usage_chunk(self) -> bytes | None:
        """An OpenAI usage chunk (`choices: []`) with the gateway's count, when the upstream sent none."""
        usage = self.estimated_usage()
        if usage is None:
            return None
        ctx = self.ctx
        chat = ctx.upstream_path == "/v1/chat/completions"
        try:  # the stream's own id, model and time, so the chunk reads as one of the stream's
            first = orjson.loads(self._first) if self._first else {}
        except orjson.JSONDecodeError:
            first = {}
        if not isinstance(first, dict):
            first = {}
        chunk: dict[str, Any] = {
            "id": first.get("id") or ("chatcmpl-" if chat else "cmpl-") + ctx.request_id.removeprefix("req_"),
            "object": first.get("object") or ("chat.completion.chunk" if chat else "text_completion"),
            "created": first.get("created") or int(ctx.started),
            "model": first.get("model") or ctx.served_model or ctx.model or "",
            "choices": [],
            "usage": {
                "prompt_tokens": usage.prompt_tokens,
                "completion_tokens": usage.completion_tokens,
                "total_tokens": usage.total_tokens,
            },
        }
        return b"data: " + orjson.dumps(chunk) + b"\n\n"


def ending_of(ctx: RequestContext) -> Ending:
    """How the request ended, from what the shell saw (an ending set on the way wins)."""
    if ctx.ending is not None:
        return ctx.ending
    if ctx.cut_for_shutdown:
        return Ending.SHUTDOWN
    if ctx.client_gone:
        return Ending.CLIENT_GONE
    if ctx.upstream is None:
        return Ending.REFUSED
    error = ctx.error_type
    if not error:
        return Ending.COMPLETED if 0 < ctx.status < 400 else Ending.UPSTREAM_ERROR
    if error in ("upstream_incomplete", "upstream_bad_response"):
        return Ending.UPSTREAM_INCOMPLETE
    if "timeout" in error or "deadline" in error:
        return Ending.TIMEOUT
    if ctx.meter is not None:  # a stream had begun: what was relayed is the client's
        return Ending.UPSTREAM_CUT
    return Ending.UPSTREAM_ERROR


class CappedMeterObserver(MeterObserver):
    """A stream whose answer a budget bounds: the event that would pass it ends the stream."""

    __slots__ = ()

    def __init__(
        self, ctx: RequestContext, cap: int, settle: Callable[[], Usage | None] | None = None
    ) -> None:
        super().__init__(ctx, settle)
        self.meter = StreamMeter(ctx.client_wants_usage, cap=cap)
        self.may_drop = True  # events are looked at one by one, so the cut falls between two of them

    def on_event(self, data: bytes) -> bool:
        if self._first is None:
            self._first = data
        forward = self.meter.feed(data)
        if self.meter.over_cap:
            self.ctx.ending = Ending.BUDGET_REACHED
            raise EndStream(
                f"This answer reached the {self.ctx.completion_cap} tokens this API key's budget had left "
                "for it (the upstream did not stop at max_tokens); the stream was ended.",
            )
        return forward


class Recorder:
    def __init__(
        self,
        settings: Settings,
        *,
        prices: PriceTable,
        counter: TokenCounter,
        sink: LogSink | None,
        metrics: Metrics | None,
        redactor: Redactor | None,
    ) -> None:
        self.prices = prices
        self.counter = counter
        self._rough = TokenCounter(heuristic_only=True)
        self._loading = False
        self.sink = sink
        self.metrics = metrics
        self.redactor = redactor

    def stream_observer(self, ctx: RequestContext) -> StreamObserver:
        cap = ctx.completion_cap

        def settle() -> Usage | None:
            return self.usage(ctx)

        observer = MeterObserver(ctx, settle) if cap is None else CappedMeterObserver(ctx, cap, settle)
        ctx.meter = observer.meter
        ctx.estimate_usage = observer.estimated_usage
        return observer

    def counter_for(self, model: str | None) -> TokenCounter:
        """The exact tokenizer once it is loaded; until then the heuristic, while it loads in a thread.

        Loading takes ~1 s and ~75 MB, and most deployments never need it (upstreams report usage), so
        it is loaded on first need, off the event loop, never blocking a request.
        """
        if self.counter.ready(model):
            return self.counter
        if not self._loading:
            self._loading = True
            asyncio.get_running_loop().run_in_executor(None, self.counter.warm, model)
        return self._rough

    def observe_body(self, ctx: RequestContext, body: bytes) -> None:
        if ctx.path in METERED_PATHS and 200 <= ctx.status < 300:
            # The counter only when the answer reports no usage: asking for it loads the tokenizer.
            # The body is parsed once; usage_or_estimate takes the parsed document.
            try:
                doc: Any = orjson.loads(body)
            except orjson.JSONDecodeError:
                doc = body
            usage = usage_from_body(doc) if isinstance(doc, dict) else None
            ctx.usage = (
                usage
                if usage is not None
                else usage_or_estimate(doc, self.counter_for(ctx.served_model), ctx.payload, ctx.served_model)
            )
        if ctx.key is not None and ctx.key.record.store_bodies and self.redactor is not None:
            ctx.response_body = self.redactor(body)

    def usage(self, ctx: RequestContext) -> Usage | None:
        """What the request used, however it ended; None when no upstream work was done."""
        if ctx.usage is None and ctx.meter is not None:
            meter = ctx.meter
            if meter.complete and meter.reported is not None:  # reported: no counting, no tokenizer
                ctx.usage = meter.reported
            else:
                ctx.usage = meter.usage(self.counter_for(ctx.served_model), ctx.payload, ctx.served_model)
        return ctx.usage

    def cost(self, ctx: RequestContext, usage: Usage) -> tuple[float, str] | None:
        found = self.prices.cost(ctx.served_model, usage, public_model=ctx.model, upstream=ctx.upstream)
        return (found.amount, found.currency) if found is not None else None

    def to_usd(self, amount: float, currency: str) -> float | None:
        try:
            return self.prices.to_usd(Cost(amount, currency))
        except Exception:
            return None

    def estimate_cost_usd(self, ctx: RequestContext, prompt: int, completion: int) -> float | None:
        """For reserving money budgets before the call."""
        channels = ctx.channels
        served = channels[0].model if channels else ctx.model
        found = self.prices.cost(
            served,
            Usage(prompt_tokens=prompt, completion_tokens=completion),
            public_model=ctx.model,
            currency="USD",
        )
        return None if found is None else self.to_usd(found.amount, found.currency)

    def record(self, ctx: RequestContext, usage: Usage | None, cost: tuple[float, str] | None) -> None:
        u = usage or Usage()
        key = ctx.key.record if ctx.key is not None else None
        if (
            key is not None
            and key.store_bodies
            and ctx.response_body is None
            and ctx.meter is not None
            and self.redactor is not None
        ):
            # A stream's answer is stored as the text relayed (the meter keeps no raw chunks).
            ctx.response_body = self.redactor(ctx.meter.text())
        # By position, in RequestRecord's field order (checked at import, below): 31 keyword arguments
        # cost ~1.3 us more a request, matching each name.
        rec = RequestRecord(
            ctx.request_id,  # request_id
            ctx.started,  # ts
            key.id if key else None,  # key_id
            key.name if key else None,  # key_name
            ctx.path,  # endpoint
            ctx.model,  # model_requested
            ctx.served_model,  # model_served
            ctx.upstream,  # upstream
            ctx.channel,  # channel
            ctx.status or 499,  # status
            ctx.error_type,  # error_type
            u.prompt_tokens,  # prompt_tokens
            u.completion_tokens,  # completion_tokens
            u.cached_tokens,  # cached_tokens
            u.reasoning_tokens,  # reasoning_tokens
            u.estimated,  # usage_estimated
            cost[0] if cost else 0.0,  # cost
            cost[1] if cost else (ctx.saved_currency if ctx.cache_hit else UNPRICED),  # currency
            round(ctx.elapsed_ms(), 3),  # latency_ms
            round(ctx.ttft, 3) if ctx.ttft is not None else None,  # ttft_ms
            ctx.stream,  # stream
            ctx.client_ip,  # client_ip
            ctx.request_body,  # request_body
            ctx.response_body,  # response_body
            None,  # record_id: given by the log sink
            False,  # usage_clamped: set by the log sink's bounds
            ctx.cache_hit,  # cache_hit
            ctx.tokens_saved,  # tokens_saved
            ctx.cost_saved,  # cost_saved
            ctx.charge_owner,  # charge_owner
            ctx.charge,  # charge
        )
        if self.metrics is not None:
            self.metrics.observe(rec)
        if self.sink is not None:
            self.sink.put_nowait(rec)
