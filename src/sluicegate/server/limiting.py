"""Between the HTTP shell and the limiter: which quotas a request is held to, and what to answer.

A request is checked against its key's quotas and its model's (all keys together) in ONE limiter call,
all-or-nothing; the upstream's own quotas are checked when a channel is picked. Token and money quotas
reserve an estimate (prompt size + max tokens) and are settled with the real usage when the answer is
over, streams included. With a budget, the answer's size is elastic: the same call lowers max_tokens to
what the tightest budget has left, and the stream is ended when it reaches that (server/reservation.py).
"""

from __future__ import annotations

import logging
import math
from datetime import UTC
from typing import TYPE_CHECKING, Any

from sluicegate.config.model import Settings
from sluicegate.limits import (
    BALANCE,
    CONCURRENCY,
    COST,
    REQUESTS,
    TOKENS,
    Admission,
    LimiterUnavailable,
    Quota,
    Refusal,
    demands_for,
)
from sluicegate.limits.key_quotas import quota_flags, quotas_for_key, rate_quotas
from sluicegate.protocol.errors import ServiceUnavailable
from sluicegate.server.refusals import rate_headers, refusal_error, refusal_label
from sluicegate.server.reservation import (
    CLAMP_HEADER,
    asked_max_tokens,
    completion_size,
)
from sluicegate.server.settlement import Settlement

if TYPE_CHECKING:
    from sluicegate.policy.keys import KeyEntry
    from sluicegate.server.context import RequestContext

log = logging.getLogger("sluicegate.limits")


def needs_settle(demands: tuple[Any, ...]) -> bool:
    """Request rates are final at admission; tokens, money and concurrency slots are settled after."""
    return any(d.quota.kind != "rate" or d.quota.metric != REQUESTS for d in demands)


class LimitGate(Settlement):
    """Admission of one request's quotas (settlement and lease renewal: `Settlement`).

    Every step has a synchronous form (`*_nowait`) beside the coroutine: the in-process limiter does
    its work without any I/O, so when it is the backend (`synchronous`) the request path calls those
    and creates no coroutine at all; with Redis the coroutines are the only way.
    """

    def __init__(self, settings: Settings, limiter: Any, price_of: Any) -> None:
        super().__init__(limiter, settings.limits.lease_ttl_s)
        self._fail_open = settings.limits.on_backend_error == "open"
        self._default_completion = settings.limits.default_completion_tokens
        self._price_of = price_of  # (ctx, prompt_tokens, completion_tokens) -> USD or None
        # Several workers and no shared counters: each worker holds an equal share of every limit, so the
        # total never exceeds it (a request may be refused while another worker has room; Redis is exact).
        self._share = settings.server.workers if settings.server.workers > 1 and not settings.redis else 1
        self._model_quotas: dict[str, tuple[Quota, ...]] = {}
        for name, lim in settings.limits.models.items():
            self._model_quotas[name] = self._split(
                tuple(rate_quotas(f"model:{name}", rpm=lim.rpm, tpm=lim.tpm, concurrency=lim.concurrency))
            )
        self._key_quotas: dict[tuple[str, float], tuple[tuple[Quota, ...], tuple[Quota, ...]]] = {}
        self._upstream_quotas: dict[str, tuple[Quota, ...]] = {}
        self._request_demands: dict[tuple[Quota, ...], tuple[tuple[Any, ...], bool]] = {}
        self._quota_flags: dict[tuple[Quota, ...], tuple[bool, bool, bool, bool]] = {}
        self.on_refusal: Any = None  # callback(reason) for metrics
        self.on_backend_error: Any = None
        # server/tenancy.py TenancyState: keys of a user or team are held to its balance too.
        self.tenancy: Any = None

    def _key_parts(self, key: KeyEntry) -> tuple[tuple[Quota, ...], tuple[Quota, ...]]:
        """A key's quotas as (its concurrency slots, the rest), built once per version of the key."""
        cache_key = (key.record.id, key.record.updated_at)
        parts = self._key_quotas.get(cache_key)
        if parts is None:
            if len(self._key_quotas) > 100_000:
                self._key_quotas.clear()
            quotas = self._split(quotas_for_key(key.record.id, key.record.limits))
            parts = self._key_quotas[cache_key] = (
                tuple(q for q in quotas if q.kind == CONCURRENCY),
                tuple(q for q in quotas if q.kind != CONCURRENCY),
            )
        return parts

    def quotas_for(
        self, key: KeyEntry | None, model: str | None, *, slot_held: bool = False
    ) -> tuple[Quota, ...]:
        """The request's quotas; without the key's concurrency when `hold_slot` already took it."""
        quotas: tuple[Quota, ...] = ()
        if key is not None:
            record = key.record
            if not record.limits.is_empty():
                slots, rest = self._key_parts(key)
                quotas = rest if slot_held else slots + rest
            if (record.user_id or record.team_id) and self.tenancy is not None:
                quotas = quotas + self.tenancy.quotas_for(record)
        if model is not None and self._model_quotas:
            mq = self._model_quotas.get(model)
            if mq:
                quotas = quotas + mq
        return quotas

    # -- the key's concurrency slot, before the body is read ------------------------------------------

    def _slot_demands(self, ctx: RequestContext) -> tuple[Any, ...] | None:
        key = ctx.key
        if key is None or key.record.limits.concurrency is None:
            return None
        slots, _ = self._key_parts(key)
        if not slots:
            return None
        cached = self._request_demands.get(slots)
        if cached is None:
            d = demands_for(slots, {REQUESTS: 1.0})
            cached = self._request_demands[slots] = (d, True)
        return cached[0]

    def _slot_taken(self, ctx: RequestContext, result: Admission | Refusal | None) -> None:
        if result is None:  # failing open
            return
        if isinstance(result, Refusal):
            raise self._refusal_error(result)
        ctx.slot = result
        if self._fast is None:
            self._leased[id(result)] = result
            self._ensure_renewer()

    def hold_slot_nowait(self, ctx: RequestContext) -> None:
        """`hold_slot` for a synchronous backend."""
        demands = self._slot_demands(ctx)
        if demands is not None:
            self._slot_taken(ctx, self._acquire_nowait(demands))

    async def hold_slot(self, ctx: RequestContext) -> None:
        """Take the key's concurrency slot the moment the key is known, before the body is read.

        A request still sending its body is in flight: counting it only once the body is in let a key
        with `concurrency: 2` hold fifty slow uploads and starve every other client. The slot is
        released by `settle`, which the shell calls however the request ends.
        """
        demands = self._slot_demands(ctx)
        if demands is not None:
            self._slot_taken(ctx, await self._acquire(demands))

    # -- the limiter's answer --------------------------------------------------------------------------

    def _acquire_nowait(self, demands: tuple[Any, ...]) -> Admission | Refusal | None:
        """The synchronous backend's answer; None when it is down and the gate fails open."""
        try:
            result: Admission | Refusal = self._fast(demands)  # type: ignore[misc]
        except LimiterUnavailable:
            self._unavailable()
            return None
        return result

    async def _acquire(self, demands: tuple[Any, ...]) -> Admission | Refusal | None:
        """The limiter's answer; None when the backend is down and the gate fails open."""
        try:
            result: Admission | Refusal = await self._limiter.acquire(demands)
        except LimiterUnavailable:
            self._unavailable()
            return None
        return result

    def _unavailable(self) -> None:
        """The backend is down: count it, and fail open (return) or raise the 503 that keeps limits exact."""
        self.backend_errors += 1
        if self.on_backend_error is not None:
            self.on_backend_error()
        if self._fail_open:
            if self.backend_errors in (1, 10) or self.backend_errors % 1000 == 0:
                log.error(
                    "limiter backend unavailable: FAILING OPEN, requests pass unlimited (%d so far)",
                    self.backend_errors,
                )
            return
        raise ServiceUnavailable(
            "Rate limiting is temporarily unavailable; the request was refused to keep "
            "limits exact. Retry shortly.",
            code="limiter_unavailable",
            headers={"retry-after": "1"},
        ) from None

    def _split(self, quotas: tuple[Quota, ...]) -> tuple[Quota, ...]:
        n = self._share
        if n == 1:
            return quotas
        return tuple(
            Quota(
                q.scope,
                q.kind,
                q.metric,
                max(1.0, math.floor(q.limit / n)) if q.metric == REQUESTS else q.limit / n,
                q.period,
            )
            for q in quotas
        )

    def estimate(self, ctx: RequestContext, body_len: int, quotas: tuple[Quota, ...]) -> dict[str, float]:
        """Tokens and cost to reserve: the prompt's size (bytes/3, erring high) plus max tokens."""
        return self.reservation(ctx, body_len, quotas)[0]

    def reservation(
        self, ctx: RequestContext, body_len: int, quotas: tuple[Quota, ...]
    ) -> tuple[dict[str, float], dict[str, float] | None, int, int]:
        """(estimate per metric, elastic amount per answer token, answer tokens asked, answers).

        With a budget among the quotas the answer's size is elastic (the limiter may grant fewer
        tokens than asked, see server/reservation.py); without one nothing is clamped.
        """
        flags = self._quota_flags.get(quotas)
        if flags is None:
            if len(self._quota_flags) > 100_000:
                self._quota_flags.clear()
            flags = self._quota_flags[quotas] = quota_flags(quotas)
        need_tokens, budget, cost, any_balance = flags
        if not need_tokens:
            return {REQUESTS: 1.0}, None, 0, 1
        # Admitted in the client's own shape (a translation is made per attempt, after admission);
        # pass-through requests have their prefix taken off.
        path = ctx.path
        max_out, answers = completion_size(ctx.payload, path, self._default_completion)
        clamp = ctx.max_tokens_clamp
        clamped = clamp is not None
        if clamp is not None:  # lowered at the key's admission: the upstream's quotas reserve the same
            max_out = clamp
        completion = max_out * answers
        # A token is at least one byte of the body, so body_len bounds the prompt: budgets reserve that,
        # which keeps "overspent by at most one request's reservation" true however many are in flight
        # (given max_tokens). Rates reserve a typical figure (~2 bytes a token) to stay generous.
        prompt = body_len if budget else body_len // 2 + 1
        est = {REQUESTS: 1.0, TOKENS: float(prompt + completion)}
        elastic = budget and max_out > 0 and not clamped
        per_unit: dict[str, float] | None = {TOKENS: float(answers)} if elastic else None
        balance = ctx.key is not None and self.tenancy is not None and any_balance
        if cost or balance:
            full = self._price_of(ctx, prompt, completion) or 0.0
            answer = (full - (self._price_of(ctx, prompt, 0) or 0.0)) / max_out if max_out > 0 else 0.0
            if cost:
                est[COST] = full
                if per_unit is not None and full > 0.0:
                    per_unit[COST] = answer
            if balance:
                # The balance's currency, micro-units, times the owner's group ratio (server/tenancy.py).
                factor = self.tenancy.micro_per_usd(ctx.key.record.balance_owner)  # type: ignore[union-attr]
                est[BALANCE] = full * factor
                if per_unit is not None and full > 0.0:
                    per_unit[BALANCE] = answer * factor
        return est, per_unit, (max_out if elastic else 0), answers

    # -- admission of the request --------------------------------------------------------------------

    def _admission_demands(
        self, ctx: RequestContext, quotas: tuple[Quota, ...]
    ) -> tuple[tuple[Any, ...], bool, int, int]:
        """(demands, whether they need settling, elastic answer tokens asked, answers)."""
        estimate, per_unit, units, answers = self.reservation(ctx, ctx.body_len, quotas)
        if len(estimate) == 1:  # requests only: the demands depend on the quotas alone, so build them once
            cached = self._request_demands.get(quotas)
            if cached is None:
                if len(self._request_demands) > 100_000:
                    self._request_demands.clear()
                d = demands_for(quotas, estimate)
                cached = self._request_demands[quotas] = (d, needs_settle(d))
            return cached[0], cached[1], units, answers
        return demands_for(quotas, estimate, per_unit, units), True, units, answers

    def _admitted(
        self,
        ctx: RequestContext,
        result: Admission | Refusal | None,
        demands: tuple[Any, ...],
        settle: bool,
        units: int,
        answers: int,
    ) -> None:
        if result is None:
            return
        if isinstance(result, Refusal):
            raise self._refusal_error(result)
        if settle:  # a request-rate-only admission has nothing to settle: skip the call at the end
            ctx.admission = result
        ctx.extra_headers.extend(rate_headers(result.requests, result.tokens))
        if units:
            self._bound_answer(ctx, result.granted or units, units, answers)
        if self._fast is None and any(d.quota.kind == "concurrency" for d in demands):
            self._leased[id(result)] = result
            self._ensure_renewer()

    def admit_nowait(self, ctx: RequestContext, quotas: tuple[Quota, ...]) -> None:
        """`admit` for a synchronous backend (raises RateLimited / QuotaExceeded)."""
        demands, settle, units, answers = self._admission_demands(ctx, quotas)
        self._admitted(ctx, self._acquire_nowait(demands), demands, settle, units, answers)

    async def admit(self, ctx: RequestContext, quotas: tuple[Quota, ...]) -> None:
        """Check and reserve `quotas` for the request, all or nothing (raises RateLimited / QuotaExceeded)."""
        demands, settle, units, answers = self._admission_demands(ctx, quotas)
        self._admitted(ctx, await self._acquire(demands), demands, settle, units, answers)

    @staticmethod
    def _bound_answer(ctx: RequestContext, granted: int, asked: int, answers: int) -> None:
        """A key with a budget: the answer is bounded by what was reserved for it, upstream and in the
        stream. The body is rewritten when the budget lowered the size, or the client set none (the
        upstream's own default could be far larger than the reservation)."""
        ctx.completion_cap = granted * answers
        if granted < asked or asked_max_tokens(ctx.payload) is None:
            ctx.max_tokens_clamp = granted
            ctx.extra_headers.append((CLAMP_HEADER, str(granted)))

    def _refusal_error(self, r: Refusal) -> Exception:
        if self.on_refusal is not None:
            self.on_refusal(refusal_label(r.quota))
        return refusal_error(r, self.tenancy.currency if self.tenancy is not None else "")

    # -- the upstream account's and the channel's own quotas ------------------------------------------

    def _upstream_demands(
        self,
        ctx: RequestContext,
        upstream: Any,
        channel: str,
        channel_limits: tuple[int | None, int | None] | None,
    ) -> tuple[Any, ...]:
        quotas = self._upstream_quotas.get(channel)
        if quotas is None:
            q = rate_quotas(f"upstream:{upstream.name}", rpm=upstream.rpm, tpm=upstream.tpm)
            if channel_limits:
                q += rate_quotas(f"channel:{channel}", rpm=channel_limits[0], tpm=channel_limits[1])
            quotas = self._upstream_quotas[channel] = self._split(tuple(q))
        return demands_for(quotas, self.estimate(ctx, ctx.body_len, quotas))

    def _upstream_unavailable(self) -> Exception | None:
        if self._fail_open:
            return None
        return ServiceUnavailable(
            "Rate limiting is temporarily unavailable.",
            code="limiter_unavailable",
            headers={"retry-after": "1"},
        )

    def _upstream_admitted(
        self, ctx: RequestContext, result: Admission | Refusal, demands: tuple[Any, ...]
    ) -> Exception | None:
        if not result.admitted:
            return self._refusal_error(result)  # type: ignore[arg-type]
        if needs_settle(demands):
            ctx.upstream_admission = result
        return None

    def admit_upstream_nowait(
        self,
        ctx: RequestContext,
        upstream: Any,
        channel: str,
        channel_limits: tuple[int | None, int | None] | None,
    ) -> Exception | None:
        """`admit_upstream` for a synchronous backend."""
        demands = self._upstream_demands(ctx, upstream, channel, channel_limits)
        if ctx.upstream_admission is not None:  # a retry on another channel: give back the first
            self._settle_one_nowait(ctx.upstream_admission, None, None)
            ctx.upstream_admission = None
        try:
            result: Admission | Refusal = self._fast(demands)  # type: ignore[misc]
        except LimiterUnavailable:
            return self._upstream_unavailable()
        return self._upstream_admitted(ctx, result, demands)

    async def admit_upstream(
        self,
        ctx: RequestContext,
        upstream: Any,
        channel: str,
        channel_limits: tuple[int | None, int | None] | None,
    ) -> Exception | None:
        """Reserve on the upstream account's and the channel's rpm/tpm, all or nothing; the refusal (not
        raised) lets the router move on to another channel."""
        demands = self._upstream_demands(ctx, upstream, channel, channel_limits)
        if ctx.upstream_admission is not None:  # a retry on another channel: give back the first
            await self._settle_one(ctx.upstream_admission, None, None)
            ctx.upstream_admission = None
        try:
            result: Admission | Refusal = await self._limiter.acquire(demands)
        except LimiterUnavailable:
            return self._upstream_unavailable()
        return self._upstream_admitted(ctx, result, demands)

    async def seed_budgets(self, store: Any, keys: list[KeyEntry], to_usd: Any) -> None:
        """Budget counters start from what the store says was spent, so a restart forgets nothing."""
        from datetime import datetime

        now = datetime.now(UTC)
        starts = {"day": now.date(), "month": now.date().replace(day=1), "total": None}
        for entry in keys:
            for q in self.quotas_for(entry, None):
                if q.kind != "budget":
                    continue
                spent = await store.usage.spent(entry.record.id, starts[q.period])
                value = (
                    spent.tokens
                    if q.metric == TOKENS
                    else sum(to_usd(amount, currency) or 0.0 for currency, amount in spent.cost.items())
                )
                await self._limiter.seed(q, float(value))
