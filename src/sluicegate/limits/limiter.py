"""The one interface every limiter backend implements, its one failure, and the factory.

Lifecycle of a request: `acquire` all its demands at once (all or nothing), then exactly one of
`settle` (usage known: correct the reservations to the real amounts) or `release` (failed before
usage was known: refund what was reserved except the request itself). Long streams call `renew`
every lease_ttl / 3 seconds so their concurrency slots are not reclaimed as crashed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

from sluicegate.limits.outcome import Admission, Refusal
from sluicegate.limits.quota import Demand, Quota


class LimiterUnavailable(Exception):
    """The shared limiter state (Redis) could not be reached in time.

    The caller chooses the policy: fail closed (answer 503) or fail open (admit, perhaps against a
    local memory limiter). The backend keeps no broken state: the next call tries again.
    """


@runtime_checkable
class Limiter(Protocol):
    """Quota enforcement for one gateway process; backends: `MemoryLimiter`, `RedisLimiter`."""

    async def acquire(self, demands: Sequence[Demand], now: float | None = None) -> Admission | Refusal:
        """Admit the request against every demand at once, or refuse without consuming anything."""
        ...

    async def settle(
        self, admission: Admission, actual: Mapping[str, float], now: float | None = None
    ) -> None:
        """Correct reservations to real usage per metric (refund or charge); free concurrency slots.

        Demands whose metric is absent from `actual` keep their reservation as spent.
        """
        ...

    async def release(self, admission: Admission, now: float | None = None) -> None:
        """The request failed before usage was known: refund all but the `requests` metric."""
        ...

    async def renew(self, admission: Admission, now: float | None = None) -> bool:
        """Extend this request's concurrency leases; False if one was already reclaimed."""
        ...

    async def seed(self, quota: Quota, spent: float, now: float | None = None) -> None:
        """Set a budget's spent amount for the current period unless it is already known."""
        ...

    async def peek(self, quotas: Sequence[Quota], now: float | None = None) -> list[float]:
        """What each quota holds now, changing nothing: for reports (the admin API), never the hot path.

        Per quota: a rate's units in use (its limit less what could be taken now; refills continuously),
        a budget's amount spent in the current period, a concurrency quota's requests in flight.
        """
        ...

    async def close(self) -> None:
        """Free connections; in-flight admissions are not released (leases expire)."""
        ...


def build_limiter(redis_url: str | None = None, **opts: Any) -> Limiter:
    """A `RedisLimiter` when a URL is given (limits shared by all processes), else a `MemoryLimiter`.

    Options go to the backend's constructor (e.g. lease_ttl, prefix, socket_timeout for Redis).
    The Redis module is imported only when used, so memory-only deployments never load it.
    """
    if redis_url:
        from sluicegate.limits.redis_backend import RedisLimiter

        return RedisLimiter.from_url(redis_url, **opts)
    from sluicegate.limits.memory import MemoryLimiter

    return MemoryLimiter(**opts)
