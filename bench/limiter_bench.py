"""Micro-benchmark of the limiter: time per acquire + settle, memory and Redis backends.

A request on the gateway's hot path checks about a dozen quotas at once (key rpm/rpd/tpm,
concurrency, token and money budgets per day/month, model rpm/tpm, channel rpm/tpm); this measures
that shape, and a single-quota check for scale. Limits are huge so every check is admitted and
the full write path runs.

  .venv/bin/python bench/limiter_bench.py [--iterations 5000] [--redis redis://127.0.0.1:6379/0]

Redis figures are sequential round trips (latency) and, with --concurrency, closed-loop throughput
of one process. Keys are written under a random prefix and deleted afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid

from sluicegate.limits import Admission, MemoryLimiter, Quota, RedisLimiter, demands_for

BIG = 1e12


def hot_path_quotas(key: str) -> list[Quota]:
    return [
        Quota.rate(f"key:{key}", "requests", BIG, "minute"),
        Quota.rate(f"key:{key}", "requests", BIG, "day"),
        Quota.rate(f"key:{key}", "tokens", BIG, "minute"),
        Quota.concurrency(f"key:{key}", 1_000_000),
        Quota.budget(f"key:{key}", "tokens", BIG, "day"),
        Quota.budget(f"key:{key}", "tokens", BIG, "month"),
        Quota.budget(f"key:{key}", "cost", BIG, "day"),
        Quota.budget(f"key:{key}", "cost", BIG, "month"),
        Quota.rate("model:bench-model", "requests", BIG, "minute"),
        Quota.rate("model:bench-model", "tokens", BIG, "minute"),
        Quota.rate("channel:bench", "requests", BIG, "minute"),
        Quota.rate("channel:bench", "tokens", BIG, "minute"),
    ]


# The bench measures speed, not failure: generous timeouts so a busy machine does not abort it.
TIMEOUTS = {"socket_timeout": 5.0, "connect_timeout": 5.0}
ESTIMATE = {"tokens": 1200.0, "cost": 0.0031}
ACTUAL = {"tokens": 830.0, "cost": 0.0021}


def bench_memory_sync(quotas: list[Quota], n: int) -> tuple[float, float]:
    limiter = MemoryLimiter()
    demands = demands_for(quotas, ESTIMATE)
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(n):
        admission = limiter.acquire_nowait(demands)
        limiter.settle_nowait(admission, ACTUAL)  # type: ignore[arg-type]
    return (time.perf_counter() - wall) / n, (time.process_time() - cpu) / n


async def bench_memory_async(quotas: list[Quota], n: int) -> tuple[float, float]:
    limiter = MemoryLimiter()
    demands = demands_for(quotas, ESTIMATE)
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(n):
        admission = await limiter.acquire(demands)
        await limiter.settle(admission, ACTUAL)  # type: ignore[arg-type]
    return (time.perf_counter() - wall) / n, (time.process_time() - cpu) / n


async def bench_redis_sequential(url: str, quotas: list[Quota], n: int) -> tuple[list[float], float]:
    prefix = f"bench:limits:{uuid.uuid4().hex[:8]}:"
    limiter = RedisLimiter.from_url(url, prefix=prefix, **TIMEOUTS)
    demands = demands_for(quotas, ESTIMATE)
    samples = []
    try:
        for _ in range(200):  # warm the connection and the script cache
            await limiter.settle(await limiter.acquire(demands), ACTUAL)  # type: ignore[arg-type]
        cpu = time.process_time()
        for _ in range(n):
            t = time.perf_counter()
            admission = await limiter.acquire(demands)
            assert isinstance(admission, Admission)
            await limiter.settle(admission, ACTUAL)
            samples.append(time.perf_counter() - t)
        cpu = (time.process_time() - cpu) / n
    finally:
        await _delete(limiter, prefix)
        await limiter.close()
    return samples, cpu


async def bench_redis_concurrent(
    url: str, quotas: list[Quota], n: int, concurrency: int
) -> tuple[float, float]:
    prefix = f"bench:limits:{uuid.uuid4().hex[:8]}:"
    limiter = RedisLimiter.from_url(url, prefix=prefix, **TIMEOUTS)  # the default pool of 16
    demands = demands_for(quotas, ESTIMATE)
    per_worker = n // concurrency

    async def worker() -> None:
        for _ in range(per_worker):
            await limiter.settle(await limiter.acquire(demands), ACTUAL)  # type: ignore[arg-type]

    try:
        await asyncio.gather(*(worker() for _ in range(concurrency)))  # warm-up and pool fill
        started, cpu = time.perf_counter(), time.process_time()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    finally:
        await _delete(limiter, prefix)
        await limiter.close()
    done = per_worker * concurrency
    return done / elapsed, cpu / done


async def _delete(limiter: RedisLimiter, prefix: str) -> None:
    client = limiter._redis  # the bench's own pool; fine for cleanup
    keys = [k async for k in client.scan_iter(match=prefix + "*", count=1000)]
    if keys:
        await client.delete(*keys)


def _us(seconds: float) -> str:
    return f"{seconds * 1e6:8.1f} us"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--iterations", type=int, default=5000)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0", help="'' to skip Redis")
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    try:
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
        loop_name = "uvloop"
    except ImportError:
        loop_name = "asyncio"

    shapes = {"1 quota": [Quota.rate("key:k", "requests", BIG, "minute")], "12 quotas": hot_path_quotas("k")}
    n = args.iterations
    print(
        f"limiter bench: {n} iterations of acquire + settle, event loop {loop_name}; "
        f"wall = elapsed time, cpu = this process's CPU time (robust when the machine is busy)"
    )
    for name, quotas in shapes.items():
        bench_memory_sync(quotas, 500)
        wall, cpu = bench_memory_sync(quotas, n)
        print(f"memory  {name:9s} sync  (acquire_nowait + settle_nowait): wall {_us(wall)}  cpu {_us(cpu)}")
        wall, cpu = asyncio.run(bench_memory_async(quotas, n))
        print(f"memory  {name:9s} async (await acquire + await settle):   wall {_us(wall)}  cpu {_us(cpu)}")
    if args.redis:
        for name, quotas in shapes.items():
            samples, cpu = asyncio.run(bench_redis_sequential(args.redis, quotas, n))
            samples.sort()
            p50, p99 = samples[len(samples) // 2], samples[int(len(samples) * 0.99)]
            print(
                f"redis   {name:9s} sequential: wall mean {_us(statistics.fmean(samples))}  "
                f"p50 {_us(p50)}  p99 {_us(p99)}  client cpu {_us(cpu)}"
            )
            rate, cpu = asyncio.run(bench_redis_concurrent(args.redis, quotas, n, args.concurrency))
            print(
                f"redis   {name:9s} {args.concurrency} concurrent: {rate:8.0f} acquire+settle/s  "
                f"client cpu {_us(cpu)}"
            )


if __name__ == "__main__":
    main()
