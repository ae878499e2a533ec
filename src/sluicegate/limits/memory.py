"""The in-process limiter: exact for one process, a few microseconds a check, no I/O.

State is three dicts keyed by `Quota.key`: a GCRA TAT per rate counter, ``[period id, spent,
period end]`` per budget, an in-flight count per concurrency quota. Each is O(1) per counter.
Memory does not grow forever with many keys: a sweep every `sweep_interval` seconds drops rate
counters that are full again (equivalent to absent) and budgets of past periods; concurrency
counts are dropped when they return to zero.

The check is synchronous and runs to completion without yielding, so under asyncio it needs no
lock: two coroutines cannot interleave inside it. The `*_nowait` methods are that synchronous fast
path; the async methods satisfy the `Limiter` interface with no real await inside.

A process's slots die with it, so concurrency here needs no leases and `renew` has nothing to do.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sluicegate.limits.budget import PeriodClock, budget_admits, units_that_fit
from sluicegate.limits.gcra import EPSILON, gcra_adjust, gcra_admit, gcra_remaining
from sluicegate.limits.outcome import Admission, RateStatus, Refusal, refusal_terms
from sluicegate.limits.quota import BUDGET, CONCURRENCY, RATE, REQUESTS, TOKENS, Demand, Quota


def _status(limit: float, remaining: float, reset: float) -> RateStatus:
    return RateStatus(limit, max(0.0, math.floor(remaining + EPSILON)), max(0.0, reset))


class MemoryLimiter:
    """Quotas held in this process's memory; see the module docstring for the guarantees."""

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.time,
        sweep_interval: float = 60.0,
        concurrency_retry: float = 1.0,
    ) -> None:
        self._clock = clock
        self._sweep_interval = sweep_interval
        self._concurrency_retry = concurrency_retry
        self._tat: dict[str, float] = {}
        self._spent: dict[str, list[Any]] = {}  # key -> [period id, spent, period end]
        self._busy: dict[str, int] = {}
        self._periods = PeriodClock()
        self._next_sweep = -math.inf

    # -- the synchronous fast path ------------------------------------------------------------

    def acquire_nowait(self, demands: Sequence[Demand], now: float | None = None) -> Admission | Refusal:
        """`acquire` without a coroutine: admit all demands or refuse consuming nothing.

        One pass decides every demand and computes the new rate TATs; a second pass writes them
        only if all admitted. Statuses for headers come from the first pass when admitted.
        """
        if now is None:
            now = self._clock()
        if now >= self._next_sweep:
            self.sweep(now)
        tats, spents, busy, window = self._tat, self._spent, self._busy, self._periods.window
        granted = 0
        for d in demands:
            if d.units and (not granted or d.units < granted):
                granted = d.units
        if granted:
            demands, granted = self._clamp(demands, granted, now)
        news: list[float] = []  # per demand: the new TAT of a rate, 0.0 for other kinds
        pids: list[str] = []  # per demand: the budget period id, "" for other kinds
        refused: Quota | None = None
        reason, worst = "", -1.0
        left: float | None = None
        needed: float | None = None
        req_left = tok_left = math.inf
        req: Quota | None = None
        tok: Quota | None = None
        req_tat = tok_tat = 0.0
        for d in demands:
            q = d.quota
            kind = q.kind
            if kind == RATE:
                new = gcra_admit(tats.get(q.key, now), now, d.amount, q.limit, q.seconds)
                if new < 0.0:
                    r, wait = refusal_terms(q, -new, 0.0, now, self._concurrency_retry)
                    if wait > worst:
                        refused, reason, worst = q, r, wait
                        left = needed = None
                elif refused is None:
                    metric = q.metric
                    if metric == REQUESTS:
                        left = gcra_remaining(new, now, q.limit, q.seconds)
                        if left < req_left:
                            req_left, req, req_tat = left, q, new
                    elif metric == TOKENS:
                        left = gcra_remaining(new, now, q.limit, q.seconds)
                        if left < tok_left:
                            tok_left, tok, tok_tat = left, q, new
                news.append(new)
                pids.append("")
                continue
            if kind == BUDGET:
                pid, _, end = window(q.period, now)
                entry = spents.get(q.key)
                spent = entry[1] if entry is not None and entry[0] == pid else 0.0
                if not budget_admits(spent, d.amount, q.limit):
                    r, wait = refusal_terms(q, 0.0, end, now, self._concurrency_retry)
                    if wait > worst:
                        refused, reason, worst = q, r, wait
                        left, needed = q.limit - spent, d.amount
                pids.append(pid)
            else:
                if busy.get(q.key, 0) + 1 > q.limit:
                    r, wait = refusal_terms(q, 0.0, 0.0, now, self._concurrency_retry)
                    if wait > worst:
                        refused, reason, worst = q, r, wait
                        left = needed = None
                pids.append("")
            news.append(0.0)
        if refused is not None:
            requests, tokens = self._statuses(demands, now)
            return Refusal(
                refused, reason, None if worst == math.inf else worst, requests, tokens, left, needed
            )
        for d, new, pid in zip(demands, news, pids, strict=True):
            q = d.quota
            kind = q.kind
            if kind == RATE:
                if new > now:
                    tats[q.key] = new
            elif kind == BUDGET:
                entry = spents.get(q.key)
                if entry is not None and entry[0] == pid:
                    entry[1] += d.amount
                else:
                    spents[q.key] = [pid, d.amount, window(q.period, now)[2]]
            else:
                busy[q.key] = busy.get(q.key, 0) + 1
        return Admission(
            tuple(demands),
            tuple(pids),
            "",
            now,
            None if req is None else _status(req.limit, req_left, req_tat - now),
            None if tok is None else _status(tok.limit, tok_left, tok_tat - now),
            granted=granted,
        )

    def _clamp(self, demands: Sequence[Demand], asked: int, now: float) -> tuple[Sequence[Demand], int]:
        """Elastic demands lowered to the units every budget among them can still cover (at least 1).

        A budget that cannot cover even one unit is left to refuse in the ordinary check.
        """
        granted = asked
        spents, window = self._spent, self._periods.window
        for d in demands:
            if d.units and d.quota.kind == BUDGET:
                entry = spents.get(d.quota.key)
                spent = entry[1] if entry is not None and entry[0] == window(d.quota.period, now)[0] else 0.0
                fit = units_that_fit(spent, d.quota.limit, d.base, d.unit)
                if fit < granted:
                    granted = fit
        granted = max(1, granted)
        if granted == asked:
            return demands, granted
        return [
            Demand(d.quota, d.base + d.unit * granted, d.unit, granted) if d.units else d for d in demands
        ], granted

    def settle_nowait(
        self, admission: Admission, actual: Mapping[str, float], now: float | None = None
    ) -> None:
        """`settle` without a coroutine."""
        if admission.done:
            return
        admission.done = True
        if now is None:
            now = self._clock()
        tats, spents, busy = self._tat, self._spent, self._busy
        for i, d in enumerate(admission.demands):
            q = d.quota
            kind = q.kind
            if kind == CONCURRENCY:
                n = busy.get(q.key, 0) - 1
                if n > 0:
                    busy[q.key] = n
                else:
                    busy.pop(q.key, None)
                continue
            real = actual.get(q.metric)
            if real is None:
                continue
            delta = real - d.amount
            if not delta:
                continue
            if kind == RATE:
                tat = tats.get(q.key)
                if tat is None and delta < 0.0:
                    continue  # already full: nothing to refund into
                new = gcra_adjust(now if tat is None else tat, now, delta, q.limit, q.seconds)
                if new > now:
                    tats[q.key] = new
                else:
                    tats.pop(q.key, None)
            else:
                entry = spents.get(q.key)
                if entry is not None and entry[0] == admission.periods[i]:
                    entry[1] += delta  # a past period's correction is dropped with that period

    def release_nowait(self, admission: Admission, now: float | None = None) -> None:
        """`release` without a coroutine."""
        self.settle_nowait(admission, _refund_all_but_requests(admission), now)

    # -- the Limiter interface ------------------------------------------------------------------

    async def acquire(self, demands: Sequence[Demand], now: float | None = None) -> Admission | Refusal:
        """See `Limiter.acquire`; runs synchronously."""
        return self.acquire_nowait(demands, now)

    async def settle(
        self, admission: Admission, actual: Mapping[str, float], now: float | None = None
    ) -> None:
        """See `Limiter.settle`; runs synchronously."""
        self.settle_nowait(admission, actual, now)

    async def release(self, admission: Admission, now: float | None = None) -> None:
        """See `Limiter.release`; runs synchronously."""
        self.release_nowait(admission, now)

    async def renew(self, admission: Admission, now: float | None = None) -> bool:
        """Nothing to renew: in-process slots cannot outlive their process."""
        return not admission.done

    async def seed(self, quota: Quota, spent: float, now: float | None = None) -> None:
        """Set a budget's spent amount for the current period unless this process already has it."""
        if quota.kind != BUDGET:
            raise ValueError(f"only budgets can be seeded, not {quota.kind} quotas")
        if now is None:
            now = self._clock()
        pid, _, end = self._periods.window(quota.period, now)
        entry = self._spent.get(quota.key)
        if entry is None or entry[0] != pid:
            self._spent[quota.key] = [pid, float(spent), end]

    async def peek(self, quotas: Sequence[Quota], now: float | None = None) -> list[float]:
        """See `Limiter.peek`; reads this process's counters."""
        if now is None:
            now = self._clock()
        out: list[float] = []
        for q in quotas:
            if q.kind == RATE:
                tat = self._tat.get(q.key, now)
                out.append(max(0.0, q.limit - gcra_remaining(tat, now, q.limit, q.seconds)))
            elif q.kind == BUDGET:
                pid = self._periods.window(q.period, now)[0]
                entry = self._spent.get(q.key)
                out.append(float(entry[1]) if entry is not None and entry[0] == pid else 0.0)
            else:
                out.append(float(self._busy.get(q.key, 0)))
        return out

    async def close(self) -> None:
        """Nothing to free."""

    # -- housekeeping ---------------------------------------------------------------------------

    def sweep(self, now: float) -> None:
        """Forget counters equivalent to absent: full rate counters, budgets of ended periods.

        Runs from `acquire_nowait` every `sweep_interval` seconds; O(counters), rebuilding the
        dicts so their memory shrinks too.
        """
        self._next_sweep = now + self._sweep_interval
        self._tat = {k: t for k, t in self._tat.items() if t > now}
        self._spent = {k: e for k, e in self._spent.items() if e[2] > now}

    def counters(self) -> int:
        """How many counters are held (for metrics and the tests of the sweep)."""
        return len(self._tat) + len(self._spent) + len(self._busy)

    def _statuses(self, demands: Sequence[Demand], now: float) -> tuple[RateStatus | None, RateStatus | None]:
        """The tightest requests and tokens rate quota among the demands, for the headers."""
        tats = self._tat
        req = tok = None
        req_left = tok_left = math.inf
        for d in demands:
            q = d.quota
            if q.kind != RATE:
                continue
            metric = q.metric
            if metric == REQUESTS:
                tat = tats.get(q.key, now)
                left = gcra_remaining(tat, now, q.limit, q.seconds)
                if left < req_left:
                    req_left, req = left, (q.limit, tat)
            elif metric == TOKENS:
                tat = tats.get(q.key, now)
                left = gcra_remaining(tat, now, q.limit, q.seconds)
                if left < tok_left:
                    tok_left, tok = left, (q.limit, tat)
        return (
            None if req is None else _status(req[0], req_left, max(0.0, req[1] - now)),
            None if tok is None else _status(tok[0], tok_left, max(0.0, tok[1] - now)),
        )


def _refund_all_but_requests(admission: Admission) -> dict[str, float]:
    """The `actual` of a request that failed before usage: nothing used but the request itself."""
    return {d.quota.metric: 0.0 for d in admission.demands if d.quota.metric != REQUESTS}
