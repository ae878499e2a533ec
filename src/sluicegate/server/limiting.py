"""Between the HTTP shell and the limiter: which quotas a request is held to, and what to answer.

A request is checked against its key's quotas and its model's (all keys together) in ONE limiter call,
all-or-nothing; the upstream's own quotas are checked when a channel is picked. Token and money quotas
reserve an estimate (prompt size + max tokens) and are settled with the real usage when the answer is
over, streams included. With a budget, the answer's size is elastic: the same call lowers max_tokens to
what the tightest budget has left, and the stream is ended when it reaches that (server/reservation.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from datetime import UTC
from typing import TYPE_CHECKING, Any

from sluicegate.config.model import Settings
from sluicegate.limits import (
    BALANCE,
    CONCURRENCY,
    COST,
    INSUFFICIENT_QUOTA,
    REQUESTS,
    TOKENS,
    TOO_LARGE,
    Admission,
    LimiterUnavailable,
    Quota,
    RateStatus,
    Refusal,
    demands_for,
)
from sluicegate.limits.key_quotas import quotas_for_key
from sluicegate.protocol.errors import QuotaExceeded, RateLimited, ServiceUnavailable
from sluicegate.server.reservation import (
    CLAMP_HEADER,
    asked_max_tokens,
    budget_refusal_message,
    completion_size,
)

if TYPE_CHECKING:
    from sluicegate.policy.keys import KeyEntry
    from sluicegate.server.context import RequestContext

log = logging.getLogger("sluicegate.limits")


def rate_quotas(
    scope: str,
    *,
    rpm: int | None = None,
    rpd: int | None = None,
    tpm: int | None = None,
    concurrency: int | None = None,
) -> list[Quota]:
    """The request, token and concurrency quotas of one scope (key, model, upstream)."""
    q: list[Quota] = []
    if rpm:
        q.append(Quota.rate(scope, REQUESTS, rpm, "minute"))
    if rpd:
        q.append(Quota.rate(scope, REQUESTS, rpd, "day"))
    if tpm:
        q.append(Quota.rate(scope, TOKENS, tpm, "minute"))
    if concurrency:
        q.append(Quota.concurrency(scope, concurrency))
    return q


def needs_settle(demands: tuple[Any, ...]) -> bool:
    """Request rates are final at admission; tokens, money and concurrency slots are settled after."""
    return any(d.quota.kind != "rate" or d.quota.metric != REQUESTS for d in demands)


def quota_flags(quotas: tuple[Quota, ...]) -> tuple[bool, bool, bool, bool]:
    """What a request's reservation depends on in its quotas, worked out once per set of quotas:
    (any counts tokens, money or a balance; any is a budget; any counts money; any is a balance)."""
    return (
        any(q.metric in (TOKENS, COST, BALANCE) for q in quotas),
        any(q.kind == "budget" for q in quotas),
        any(q.metric == COST for q in quotas),
        any(q.metric == BALANCE for q in quotas),
    )


def refusal_label(quota: Quota) -> str:
    """The metric label of a refusal: which kind of limit said no (rpm, tpm, budget_usd, ...)."""
    if quota.kind == "concurrency":
        return "concurrency"
    if quota.kind == "budget":
        return "budget_usd" if quota.metric == COST else f"budget_{quota.metric}"
    short = {("requests", "minute"): "rpm", ("requests", "day"): "rpd", ("tokens", "minute"): "tpm"}
    return short.get((quota.metric, quota.period), f"{quota.metric}_per_{quota.period}")


def scope_words(scope: str) -> str:
    """Refusals say whose limit it was without naming other keys or upstreams."""
    kind, _, name = scope.partition(":")
    if kind == "key":
        return "this API key"
    if kind == "model":
        return f"the model '{name}' (all keys together)"
    if kind == "client":
        return "your provider key"
    if kind == "user":
        return "your account"
    if kind == "team":
        return "your team"
    return "the upstream serving this model"


def format_reset(seconds: float) -> str:
    """OpenAI's style: '20ms', '1.5s', '6m0s'."""
    if seconds < 1:
        return f"{max(0, int(seconds * 1000))}ms"
    if seconds < 60:
        return f"{seconds:.3g}s"
    minutes, secs = divmod(math.ceil(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes}m{secs}s"


def rate_headers(requests: RateStatus | None, tokens: RateStatus | None) -> list[tuple[str, str]]:
    h: list[tuple[str, str]] = []
    if requests is not None:
        h += [
            ("x-ratelimit-limit-requests", str(int(requests.limit))),
            ("x-ratelimit-remaining-requests", str(max(0, int(requests.remaining)))),
            ("x-ratelimit-reset-requests", format_reset(requests.reset)),
        ]
    if tokens is not None:
        h += [
            ("x-ratelimit-limit-tokens", str(int(tokens.limit))),
            ("x-ratelimit-remaining-tokens", str(max(0, int(tokens.remaining)))),
            ("x-ratelimit-reset-tokens", format_reset(tokens.reset)),
        ]
    return h


class LimitGate:
    """Admission and settlement of one request's quotas, and the renewal of concurrency leases.

    Every step has a synchronous form (`*_nowait`) beside the coroutine: the in-process limiter does
    its work without any I/O, so when it is the backend (`synchronous`) the request path calls those
    and creates no coroutine at all; with Redis the coroutines are the only way.
    """

    def __init__(self, settings: Settings, limiter: Any, price_of: Any) -> None:
        self._limiter = limiter
        self._fast = getattr(limiter, "acquire_nowait", None)  # memory backend: no coroutine at all
        self._fast_settle = getattr(limiter, "settle_nowait", None)
        self._fast_release = getattr(limiter, "release_nowait", None)
        self.synchronous = None not in (self._fast, self._fast_settle, self._fast_release)
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
        self._leased: dict[int, Admission] = {}  # Admission is mutable, so keyed by id()
        self._renewer: asyncio.Task[None] | None = None
        self._lease_ttl = settings.limits.lease_ttl_s
        self.backend_errors = 0
        self.on_refusal: Any = None  # callback(reason) for metrics
        self.on_backend_error: Any = None
        # server/tenancy.py TenancyState: keys of a user or team are held to its balance too.
        self.tenancy: Any = None

    @property
    def limiter(self) -> Any:
        return self._limiter

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
        headers = dict(rate_headers(r.requests, r.tokens))
        if r.retry_after is not None:
            headers["retry-after"] = str(max(1, math.ceil(r.retry_after)))
        what = f"{r.quota.describe().rsplit(' for ', 1)[0]} for {scope_words(r.quota.scope)}"
        if r.reason == INSUFFICIENT_QUOTA and r.quota.metric == BALANCE:
            return QuotaExceeded(self._balance_words(r), headers=headers)
        if r.reason == INSUFFICIENT_QUOTA:
            return QuotaExceeded(budget_refusal_message(r, scope_words(r.quota.scope)), headers=headers)
        if r.reason == TOO_LARGE:
            return RateLimited(
                f"Request too large: it needs more than the {what} limit of {r.quota.limit:g}. "
                "Lower max_tokens or the prompt size.",
                code="request_too_large",
                headers=headers,
            )
        wait = f" Try again in {r.retry_after:.3g}s." if r.retry_after is not None else ""
        return RateLimited(
            f"Rate limit reached: {what} is limited to {r.quota.limit:g}.{wait}", headers=headers
        )

    def _balance_words(self, r: Refusal) -> str:
        """A balance refusal in money, without the balance's internals (its credited total)."""
        currency = self.tenancy.currency if self.tenancy is not None else ""
        left = max(0.0, r.left or 0.0) / 1e6
        whose = scope_words(r.quota.scope) + "'s balance"
        needed = f" and this request needs at least {r.needed / 1e6:.6f} {currency}" if r.needed else ""
        return (
            f"You exceeded your current quota: {whose} has {left:.6f} {currency} left{needed}. "
            "Top up the balance or redeem a code."
        )

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

    # -- settlement ----------------------------------------------------------------------------------

    @staticmethod
    def _taken(
        ctx: RequestContext, tokens: int | None, cost_usd: float | None, balance: int
    ) -> list[tuple[Admission, int | None, float | None, int]]:
        """What a request holds, to settle (taken off it, so it is settled once): its concurrency slot
        (released), the upstream's reservation (tokens only) and its own admission."""
        held: list[tuple[Admission, int | None, float | None, int]] = []
        if ctx.slot is not None:
            held.append((ctx.slot, None, None, 0))
            ctx.slot = None
        if ctx.upstream_admission is not None:
            held.append((ctx.upstream_admission, tokens, None, 0))
            ctx.upstream_admission = None
        if ctx.admission is not None:
            held.append((ctx.admission, tokens, cost_usd, balance))
            ctx.admission = None
        return held

    def settle_nowait(
        self, ctx: RequestContext, tokens: int | None, cost_usd: float | None, balance: int = 0
    ) -> None:
        """`settle` for a synchronous backend."""
        for admission, used, cost, charge in self._taken(ctx, tokens, cost_usd, balance):
            self._settle_one_nowait(admission, used, cost, charge)

    async def settle(
        self, ctx: RequestContext, tokens: int | None, cost_usd: float | None, balance: int = 0
    ) -> None:
        """Correct the request's reservations to what it used (`tokens` None: it failed before usage was
        known, refund all but the request itself) and free its concurrency slots. `balance` is the exact
        charge to the key's owner's balance, in micro-units (the same integer the ledger records)."""
        for admission, used, cost, charge in self._taken(ctx, tokens, cost_usd, balance):
            await self._settle_one(admission, used, cost, charge)

    @staticmethod
    def _actual(tokens: int, cost_usd: float | None, balance: int) -> dict[str, float]:
        actual = {TOKENS: float(tokens), BALANCE: float(balance)}
        if cost_usd is not None:
            actual[COST] = cost_usd
        return actual

    def _settle_one_nowait(
        self, admission: Admission, tokens: int | None, cost_usd: float | None, balance: int = 0
    ) -> None:
        try:
            if tokens is None:
                self._fast_release(admission)  # type: ignore[misc]
            else:
                self._fast_settle(admission, self._actual(tokens, cost_usd, balance))  # type: ignore[misc]
        except LimiterUnavailable:
            self.backend_errors += 1
            log.warning("could not settle a request's limits: backend unavailable")

    async def _settle_one(
        self, admission: Admission, tokens: int | None, cost_usd: float | None, balance: int = 0
    ) -> None:
        self._leased.pop(id(admission), None)
        try:
            if tokens is None:
                await self._limiter.release(admission)
            else:
                await self._limiter.settle(admission, self._actual(tokens, cost_usd, balance))
        except LimiterUnavailable:
            self.backend_errors += 1
            log.warning("could not settle a request's limits: backend unavailable (leases will expire)")

    def _ensure_renewer(self) -> None:
        if self._renewer is None or self._renewer.done():
            self._renewer = asyncio.get_running_loop().create_task(
                self._renew_loop(), name="sluicegate-leases"
            )

    async def _renew_loop(self) -> None:
        """Long streams keep their concurrency slots: renew every lease a third of the TTL."""
        while self._leased:
            await asyncio.sleep(self._lease_ttl / 3)
            for adm in list(self._leased.values()):
                with contextlib.suppress(Exception):
                    await self._limiter.renew(adm)

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

    async def close(self) -> None:
        if self._renewer is not None:
            self._renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._renewer
