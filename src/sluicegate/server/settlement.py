"""What a request holds is given back: its reservations settled to what it used, its concurrency
slots released, and, while it runs on a shared backend, its leases renewed.

Why apart from admission (server/limiting.py, `LimitGate` builds on this class): settlement runs
however a request ends (answered, failed, cut off, cancelled) and must free every slot once; it
shares only the limiter with admission. Each step has a synchronous form (`*_nowait`) for the
in-process limiter, which does its work without I/O, beside the coroutine Redis needs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Any

from sluicegate.limits import BALANCE, COST, TOKENS, Admission, LimiterUnavailable

if TYPE_CHECKING:
    from sluicegate.server.context import RequestContext

log = logging.getLogger("sluicegate.limits")


class Settlement:
    """The limiter's give-back half: settle, release, and renew the leases of running requests."""

    def __init__(self, limiter: Any, lease_ttl: float) -> None:
        self._limiter = limiter
        self._fast = getattr(limiter, "acquire_nowait", None)  # memory backend: no coroutine at all
        self._fast_settle = getattr(limiter, "settle_nowait", None)
        self._fast_release = getattr(limiter, "release_nowait", None)
        self.synchronous = None not in (self._fast, self._fast_settle, self._fast_release)
        self._leased: dict[int, Admission] = {}  # Admission is mutable, so keyed by id()
        self._renewer: asyncio.Task[None] | None = None
        self._lease_ttl = lease_ttl
        self.backend_errors = 0

    @property
    def limiter(self) -> Any:
        return self._limiter

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

    async def close(self) -> None:
        if self._renewer is not None:
            self._renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._renewer
