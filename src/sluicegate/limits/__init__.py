"""Limits: may this request run now? Rates, budgets and concurrency, in memory or in Redis.

The algorithms are pure (`gcra`, `budget`); the backends apply them to state in this process
(`MemoryLimiter`) or atomically in Redis (`RedisLimiter`, one Lua call per check), behind one
interface (`Limiter`). See docs/limits.md for the guarantees and the Redis layout.
"""

from sluicegate.limits.key_quotas import quotas_for_key
from sluicegate.limits.limiter import Limiter, LimiterUnavailable, build_limiter
from sluicegate.limits.memory import MemoryLimiter
from sluicegate.limits.outcome import (
    INSUFFICIENT_QUOTA,
    RATE_LIMITED,
    TOO_LARGE,
    Admission,
    RateStatus,
    Refusal,
)
from sluicegate.limits.quota import (
    BALANCE,
    BUDGET,
    CONCURRENCY,
    COST,
    RATE,
    REQUESTS,
    TOKENS,
    Demand,
    Quota,
    demands_for,
)

__all__ = [
    "BALANCE",
    "BUDGET",
    "CONCURRENCY",
    "COST",
    "INSUFFICIENT_QUOTA",
    "RATE",
    "RATE_LIMITED",
    "REQUESTS",
    "TOKENS",
    "TOO_LARGE",
    "Admission",
    "Demand",
    "Limiter",
    "LimiterUnavailable",
    "MemoryLimiter",
    "Quota",
    "RateStatus",
    "RedisLimiter",
    "Refusal",
    "build_limiter",
    "demands_for",
    "quotas_for_key",
]


def __getattr__(name: str) -> object:
    """`RedisLimiter` is imported on first use so memory-only processes never load redis-py."""
    if name == "RedisLimiter":
        from sluicegate.limits.redis_backend import RedisLimiter

        return RedisLimiter
    raise AttributeError(name)
