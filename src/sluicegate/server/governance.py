"""The hooks through which the limiter and metering govern a request: admit, hold a slot, complete.

Each hook returns None when its work is done (the in-process limiter: no coroutine at all), or an
awaitable the caller must await (Redis): `if (pending := gw.admit(ctx)) is not None: await pending`.
Why apart from the shell (server/app.py, `Gateway` builds on this class): this is where a request's
charge is worked out once, however it ended, and handed to both the limiter and the request log; the
shell only routes and answers.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any

from sluicegate.limits.quota import RATE, REQUESTS
from sluicegate.metering.ending import charged
from sluicegate.server.recording import ending_of

if TYPE_CHECKING:
    from sluicegate.protocol.errors import GatewayError
    from sluicegate.routing.channel import Channel
    from sluicegate.server.context import RequestContext


class Governance:
    """Admission and completion of requests, on the gateway's limiter (`limits`), recorder and tenancy."""

    limits: Any  # server/limiting.py LimitGate, or None before start-up
    recorder: Any  # server/recording.py Recorder, or None
    tenancy: Any  # server/tenancy.py TenancyState, or None
    channel_limits: dict[str, tuple[int | None, int | None]]

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
