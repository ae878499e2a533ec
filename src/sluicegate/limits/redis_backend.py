"""The shared limiter: quotas in Redis, exact across every process and node that uses it.

One check is one round trip: an EVALSHA of `lua/acquire.lua`, which reads every counter, decides,
and (only if all admit) writes them, atomically. A settle is one EVALSHA of `lua/settle.lua`, and
none when nothing needs correcting. The Lua mirrors `gcra.py` and `budget.py`.

Time: rates and leases use the Redis server's clock (``TIME`` inside the script) unless a `now` is
passed, so nodes with skewed clocks still share one timeline. Budget periods (which UTC day or
month) are chosen with this process's clock; a skew of seconds at midnight does not matter.

Concurrency slots are leases: a ZSET member per request scored by its expiry. Expired members are
purged at each check, so a crashed process's slots come back after `lease_ttl` seconds; a live
request longer than that calls `renew` (every lease_ttl / 3 is a safe pace).

Failure: every Redis error or timeout surfaces as `LimiterUnavailable`, fast (short socket
timeouts, no client-side retries); the connection pool reconnects on the next call, and a script
cache emptied by a restart or SCRIPT FLUSH is refilled on NOSCRIPT by sending the source once.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from importlib import resources
from typing import Any

from redis.asyncio import ConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import NoScriptError, RedisError

from sluicegate.limits.budget import PeriodClock
from sluicegate.limits.gcra import EPSILON, gcra_remaining
from sluicegate.limits.limiter import LimiterUnavailable
from sluicegate.limits.outcome import Admission, RateStatus, Refusal, refusal_terms
from sluicegate.limits.quota import BUDGET, CONCURRENCY, RATE, REQUESTS, TOKENS, Demand, Quota

_KIND_CODE = {RATE: "r", BUDGET: "b", CONCURRENCY: "c"}


class _Script:
    """A Lua script's source and SHA1, read from the package at construction."""

    __slots__ = ("sha", "source")

    def __init__(self, name: str) -> None:
        self.source = resources.files("sluicegate.limits").joinpath("lua", name).read_text("utf-8")
        self.sha = hashlib.sha1(self.source.encode("utf-8")).hexdigest()


def _num(x: float) -> str:
    return repr(float(x))


class RedisLimiter:
    """Quotas in Redis; see the module docstring for the guarantees and the failure policy.

    `prefix` namespaces every key (use a hash tag such as ``"{sg}:"`` on Redis Cluster, since one
    check touches several keys). `budget_grace` keeps a past period's counter this many seconds
    after the period ends, so a settle arriving after midnight still corrects the day it reserved.
    """

    def __init__(
        self,
        client: Redis,
        *,
        prefix: str = "sg:lim:",
        lease_ttl: float = 45.0,
        concurrency_retry: float = 1.0,
        budget_grace: float = 86400.0,
        server_time: bool = True,
        owns_client: bool = False,
        clock: Callable[[], float] = time.time,
        max_in_flight: int = 16,
        queue_timeout: float = 0.25,
    ) -> None:
        self._redis = client
        self._prefix = prefix
        self._lease_ttl = float(lease_ttl)
        self._concurrency_retry = concurrency_retry
        self._budget_grace = budget_grace
        self._server_time = server_time
        self._owns_client = owns_client
        self._clock = clock
        # A FIFO gate rather than redis-py's BlockingConnectionPool: that pool lets a task that
        # just released a connection take it straight back, so under load waiters starved until
        # their timeout. The gate keeps calls within the pool's size and serves them in order.
        self._gate = asyncio.Semaphore(max_in_flight)
        self._queue_timeout = queue_timeout
        self._periods = PeriodClock()
        self._specs: dict[str, tuple[Quota, str, str, str, str]] = {}
        self._acquire = _Script("acquire.lua")
        self._settle = _Script("settle.lua")
        self._renew = _Script("renew.lua")
        self._lease_seq = 0
        self._lease_base = secrets.token_hex(6)
        # Awaited when Redis turns out to have lost its scripts (restart, flush): see `_eval`.
        self.on_reset: Callable[[], Awaitable[None]] | None = None
        self._reset_lock = asyncio.Lock()
        self._last_reset = -math.inf

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        socket_timeout: float = 0.25,
        connect_timeout: float = 0.25,
        max_connections: int = 16,
        **opts: Any,
    ) -> RedisLimiter:
        """A limiter with its own connection pool: short timeouts, no retries (fail fast).

        At most `max_connections` calls run at once (one connection each, for one round trip of
        ~0.1-0.3 ms, so 16 carry thousands of checks a second); more wait their turn, first come
        first served, up to `socket_timeout`. A cold burst thus opens at most that many sockets.
        """
        pool = ConnectionPool.from_url(
            url,
            max_connections=max_connections,
            socket_timeout=socket_timeout,
            socket_connect_timeout=connect_timeout,
        )
        client = Redis(connection_pool=pool, retry=Retry(NoBackoff(), 0))
        opts.setdefault("max_in_flight", max_connections)
        opts.setdefault("queue_timeout", socket_timeout)
        return cls(client, owns_client=True, **opts)

    # -- the Limiter interface ------------------------------------------------------------------

    async def acquire(self, demands: Sequence[Demand], now: float | None = None) -> Admission | Refusal:
        """See `Limiter.acquire`: one EVALSHA, atomic across all demands."""
        wall = self._clock() if now is None else now
        keys: list[str] = []
        at_arg = "" if now is None and self._server_time else _num(wall)
        args: list[str] = [at_arg, self._new_lease(), _num(self._lease_ttl)]
        pids: list[str] = []
        ends: list[float] = []
        specs, spec_of = self._specs, self._spec
        for d in demands:
            q = d.quota
            spec = specs.get(q.key)
            if spec is None or (spec[0] is not q and spec[0] != q):
                spec = spec_of(q)
            elastic = ("0", "0") if not d.units else (_num(d.unit), str(d.units))
            if spec[2] == "b":
                pid, _, end = self._periods.window(q.period, wall)
                keys.append(spec[1] + pid)
                ttl = 0 if end == math.inf else max(1, math.ceil((end - wall + self._budget_grace) * 1000))
                args += ("b", _num(d.amount), spec[3], str(ttl), *elastic)
                pids.append(pid)
                ends.append(end)
            else:
                keys.append(spec[1])
                args += (spec[2], _num(d.amount), spec[3], spec[4], *elastic)
                pids.append("")
                ends.append(0.0)
        res = await self._eval(self._acquire, keys, args)
        at = float(res[1])
        granted = int(res[2])
        requests, tokens = _statuses(demands, res)
        if res[0] == 1:
            if granted and any(d.units and d.units != granted for d in demands):
                demands = [
                    Demand(d.quota, d.base + d.unit * granted, d.unit, granted) if d.units else d
                    for d in demands
                ]
            return Admission(tuple(demands), tuple(pids), args[1], at, requests, tokens, granted=granted)
        refused: Quota | None = None
        reason, worst = "", -1.0
        left: float | None = None
        needed: float | None = None
        for i, d in enumerate(demands):
            w = res[3 + 3 * i]
            if w == b"0":
                continue
            rate_wait = math.inf if w == b"inf" else float(w)
            r, wait = refusal_terms(d.quota, rate_wait, ends[i], wall, self._concurrency_retry)
            if wait > worst:
                refused, reason, worst = d.quota, r, wait
                if d.quota.kind == BUDGET:
                    left, needed = float(res[4 + 3 * i]), float(res[5 + 3 * i])
                else:
                    left = needed = None
        assert refused is not None
        return Refusal(refused, reason, None if worst == math.inf else worst, requests, tokens, left, needed)

    async def settle(
        self, admission: Admission, actual: Mapping[str, float], now: float | None = None
    ) -> None:
        """See `Limiter.settle`: one EVALSHA, or none when nothing changes."""
        if admission.done:
            return
        admission.done = True
        keys: list[str] = []
        args: list[str] = [self._now_arg(now), admission.lease]
        specs = self._specs
        for i, d in enumerate(admission.demands):
            q = d.quota
            spec = specs.get(q.key)
            if spec is None or (spec[0] is not q and spec[0] != q):
                spec = self._spec(q)
            kind = spec[2]
            if kind == "c":
                keys.append(spec[1])
                args.append("c")
                continue
            real = actual.get(q.metric)
            if real is None or real == d.amount:
                continue
            if kind == "r":
                keys.append(spec[1])
                args += ("r", _num(real - d.amount), spec[3], spec[4])
            else:
                keys.append(spec[1] + admission.periods[i])
                args += ("b", _num(real - d.amount))
        if keys:
            await self._eval(self._settle, keys, args)

    async def release(self, admission: Admission, now: float | None = None) -> None:
        """See `Limiter.release`: settle as if nothing but the request itself was used."""
        refund = {d.quota.metric: 0.0 for d in admission.demands if d.quota.metric != REQUESTS}
        await self.settle(admission, refund, now)

    async def renew(self, admission: Admission, now: float | None = None) -> bool:
        """Extend this request's leases by `lease_ttl`; False if one was reclaimed meanwhile."""
        if admission.done:
            return False
        keys = [self._prefix + d.quota.key for d in admission.demands if d.quota.kind == CONCURRENCY]
        if not keys:
            return True
        args = [self._now_arg(now), admission.lease, _num(self._lease_ttl)]
        held = await self._eval(self._renew, keys, args)
        return int(held) == len(keys)

    async def seed(self, quota: Quota, spent: float, now: float | None = None) -> None:
        """Set a budget's spent amount for the current period unless Redis already holds one.

        Why set-if-absent: every process seeds at start from the store's aggregates, but Redis may
        already count requests newer than those aggregates; the first writer wins.
        """
        if quota.kind != BUDGET:
            raise ValueError(f"only budgets can be seeded, not {quota.kind} quotas")
        wall = self._clock() if now is None else now
        pid, _, end = self._periods.window(quota.period, wall)
        key = f"{self._prefix}{quota.key}:{pid}"
        if end == math.inf:
            await self._call("SET", key, _num(spent), "NX")
        else:
            ttl = max(1, math.ceil((end - wall + self._budget_grace) * 1000))
            await self._call("SET", key, _num(spent), "NX", "PX", ttl)

    async def peek(self, quotas: Sequence[Quota], now: float | None = None) -> list[float]:
        """See `Limiter.peek`: one MGET for rates and budgets, one ZCOUNT per concurrency quota.

        Read with this process's clock (the scripts use Redis's): a report, off the hot path, where a
        few milliseconds of skew move a rate's figure by a fraction of a unit.
        """
        wall = self._clock() if now is None else now
        names: list[str] = []
        for q in quotas:
            if q.kind == BUDGET:
                names.append(f"{self._prefix}{q.key}:{self._periods.window(q.period, wall)[0]}")
            elif q.kind == RATE:
                names.append(self._prefix + q.key)
        values = list(await self._call("MGET", *names)) if names else []
        out: list[float] = []
        for q in quotas:
            if q.kind == CONCURRENCY:
                out.append(float(await self._call("ZCOUNT", self._prefix + q.key, f"({_num(wall)}", "+inf")))
                continue
            raw = values.pop(0)
            if q.kind == BUDGET:
                out.append(float(raw) if raw is not None else 0.0)
            else:
                tat = float(raw) if raw is not None else wall
                out.append(max(0.0, q.limit - gcra_remaining(tat, wall, q.limit, q.seconds)))
        return out

    async def close(self) -> None:
        """Close the connection pool if this limiter made it (`from_url`)."""
        if self._owns_client:
            await self._redis.aclose(close_connection_pool=True)

    # -- plumbing -------------------------------------------------------------------------------

    def _spec(self, q: Quota) -> tuple[Quota, str, str, str, str]:
        """(quota, Redis key or budget key stem, kind code, limit, period): encoded once per quota.

        Why: formatting numbers and keys per demand is most of the client's cost of a check.
        The cache is bounded by the number of distinct quotas; it is cleared if that grows huge.
        """
        if len(self._specs) > 100_000:
            self._specs.clear()
        key = self._prefix + q.key
        spec = (q, key + ":" if q.kind == BUDGET else key, _KIND_CODE[q.kind], _num(q.limit), _num(q.seconds))
        self._specs[q.key] = spec
        return spec

    def _now_arg(self, now: float | None) -> str:
        """The scripts' time argument: '' lets Redis use its own clock (shared by all nodes)."""
        if now is None:
            return "" if self._server_time else _num(self._clock())
        return _num(now)

    def _new_lease(self) -> str:
        self._lease_seq += 1
        return f"{self._lease_base}:{self._lease_seq}"

    async def _eval(self, script: _Script, keys: list[str], args: list[str]) -> Any:
        """EVALSHA; on NOSCRIPT send the source once (EVAL caches it); map failures to one type.

        NOSCRIPT means Redis lost its scripts: restarted (perhaps empty) or flushed. Before this process
        counts anything there again, `on_reset` (the gateway re-seeds budgets from its store, set-if-
        absent, so concurrent re-seeds cannot double-count) runs once; calls meanwhile wait for it.
        """
        try:
            return await self._call("EVALSHA", script.sha, len(keys), *keys, *args)
        except NoScriptError:
            if self.on_reset is not None:
                await self._after_reset()
            return await self._call("EVAL", script.source, len(keys), *keys, *args)

    async def _after_reset(self) -> None:
        async with self._reset_lock:
            if time.monotonic() - self._last_reset < 1.0:  # a burst all saw NOSCRIPT: re-seed once
                return
            try:
                assert self.on_reset is not None
                await self.on_reset()
            finally:
                self._last_reset = time.monotonic()

    async def _call(self, *command: Any, **options: Any) -> Any:
        """One Redis command through the gate; every failure becomes `LimiterUnavailable`."""
        gate = self._gate
        try:
            if gate.locked():
                async with asyncio.timeout(self._queue_timeout):
                    await gate.acquire()
            else:
                await gate.acquire()
        except TimeoutError:
            raise LimiterUnavailable(f"redis: no connection free within {self._queue_timeout} s") from None
        try:
            return await self._redis.execute_command(*command, **options)
        except NoScriptError:
            raise
        except (RedisError, OSError) as exc:
            raise LimiterUnavailable(f"redis: {exc}") from exc
        finally:
            gate.release()


def _statuses(demands: Sequence[Demand], res: list[Any]) -> tuple[RateStatus | None, RateStatus | None]:
    """The tightest requests and tokens rate quota, from the script's per-demand figures."""
    req = tok = None
    for i, d in enumerate(demands):
        q = d.quota
        if q.kind != RATE or (q.metric != REQUESTS and q.metric != TOKENS):
            continue
        left = float(res[4 + 3 * i])
        status = RateStatus(q.limit, max(0.0, math.floor(left + EPSILON)), max(0.0, float(res[5 + 3 * i])))
        if q.metric == REQUESTS:
            if req is None or left < req[0]:
                req = (left, status)
        elif tok is None or left < tok[0]:
            tok = (left, status)
    return (None if req is None else req[1]), (None if tok is None else tok[1])
