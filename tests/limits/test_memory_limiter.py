"""The memory backend: a synchronous fast path, and state that does not grow forever."""

from __future__ import annotations

from sluicegate.limits import Admission, MemoryLimiter, Quota, demands_for

T0 = 1_764_072_000.0  # 2025-11-25 12:00 UTC


def test_the_nowait_path_admits_and_settles_without_an_event_loop() -> None:
    limiter = MemoryLimiter()
    demands = demands_for([Quota.rate("key:k1", "requests", 1), Quota.concurrency("key:k1", 1)], {})
    admission = limiter.acquire_nowait(demands, now=T0)
    assert isinstance(admission, Admission)
    limiter.settle_nowait(admission, {}, now=T0)
    assert not limiter.acquire_nowait(demands, now=T0).admitted


def test_rate_counters_of_many_keys_are_forgotten_once_full_again() -> None:
    limiter = MemoryLimiter(sweep_interval=60)
    for i in range(1000):
        limiter.acquire_nowait(demands_for([Quota.rate(f"key:{i}", "requests", 10)], {}), now=T0)
    assert limiter.counters() == 1000
    limiter.acquire_nowait((), now=T0 + 61)  # the next check past the interval sweeps
    assert limiter.counters() == 0


def test_a_counter_still_refilling_survives_the_sweep() -> None:
    limiter = MemoryLimiter()
    hourly = Quota.rate("key:k1", "requests", 1, "hour")
    limiter.acquire_nowait(demands_for([hourly], {}), now=T0)
    limiter.sweep(T0 + 600)
    assert not limiter.acquire_nowait(demands_for([hourly], {}), now=T0 + 600).admitted


def test_budgets_of_past_days_are_forgotten_and_todays_kept() -> None:
    limiter = MemoryLimiter()
    day = Quota.budget("key:k1", "cost", 10, "day")
    month = Quota.budget("key:k1", "cost", 100, "month")
    limiter.acquire_nowait(demands_for([day, month], {"cost": 1}), now=T0)
    limiter.sweep(T0 + 86400)
    assert limiter.counters() == 1


def test_a_concurrency_count_back_to_zero_holds_no_memory() -> None:
    limiter = MemoryLimiter()
    admission = limiter.acquire_nowait(demands_for([Quota.concurrency("key:k1", 3)], {}), now=T0)
    assert isinstance(admission, Admission) and limiter.counters() == 1
    limiter.release_nowait(admission, now=T0)
    assert limiter.counters() == 0


def test_the_clock_is_injected() -> None:
    now = [T0]
    limiter = MemoryLimiter(clock=lambda: now[0])
    demands = demands_for([Quota.rate("key:k1", "requests", 1)], {})
    assert limiter.acquire_nowait(demands).admitted
    assert not limiter.acquire_nowait(demands).admitted
    now[0] += 60
    assert limiter.acquire_nowait(demands).admitted
