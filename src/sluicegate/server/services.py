"""The services one worker owns, started and stopped around serving: store, keys, limiter, metering, health.

Apart from the RSGI app (app.py) because wiring a dozen collaborators in order is its own concern, and
because the order matters: the log is flushed first at shutdown, so a SIGTERM loses no record.
"""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING, Any

from sluicegate.policy.keys import KeyEntry

if TYPE_CHECKING:
    from sluicegate.server.app import Gateway

log = logging.getLogger("sluicegate")


async def start(gw: Gateway) -> None:
    """Open the store, load keys, start the limiter, the log sink and the key refresher."""
    from sluicegate.config import default_database_url, default_spill_dir
    from sluicegate.limits import build_limiter
    from sluicegate.metering.metrics import Metrics
    from sluicegate.metering.prices import PriceTable
    from sluicegate.metering.redact import Redactor
    from sluicegate.metering.sink import LogSink
    from sluicegate.metering.spill import spill_for
    from sluicegate.metering.tokens import TokenCounter
    from sluicegate.server.keysync import KeySync
    from sluicegate.server.limiting import LimitGate
    from sluicegate.server.recording import Recorder
    from sluicegate.server.semantic import attach_semantic
    from sluicegate.store import Store

    s = gw.settings
    # The worker's marker first, before the slow part of start-up (the store, the keys): a worker killed
    # while it starts is then already known, so the one that replaces it counts as a restart.
    metrics_dir = os.environ.get("SLUICEGATE_METRICS_DIR") or None
    run_dir = os.environ.get("SLUICEGATE_RUN_DIR")
    restarts = 0
    if run_dir:
        from sluicegate.server.workers import register_worker

        restarts = register_worker(run_dir, s.server.workers, shared_metrics=metrics_dir is not None)
    await gw.client.start()
    gw.body_deadlines.start()
    gw.store = await Store.open(default_database_url(s))
    gw.responses_state.repo = gw.store.responses
    if s.redis:
        import redis.asyncio as aioredis

        gw.redis = aioredis.from_url(s.redis, socket_timeout=1.0, socket_connect_timeout=1.0)
    gw.cache.attach_redis(gw.redis)
    attach_semantic(gw)  # the semantic stage, when a route asks for it (server/semantic.py)
    gw.keysync = KeySync(gw.store, gw.keys, redis=gw.redis)
    await gw.keysync.start()
    known_models = set(gw.routes) | {c.model for channels in gw.routes.values() for c in channels if c.model}
    gw.metrics = Metrics(multiprocess_dir=metrics_dir, models=known_models)
    gw.cache.metrics = gw.metrics
    gw.metrics.worker_started(restarts)
    counter = TokenCounter(heuristic_only=s.metering.tokenizer == "heuristic")
    gw.redactor = Redactor(
        s.metering.redact_patterns,
        max_chars=s.metering.max_body_chars,
        secrets=[s.admin_key, *(k for u in s.upstreams.values() for k in (u.api_key, *u.api_keys))],
    )
    gw.sink = LogSink(
        gw.store.usage.write_batch,
        max_queue=s.metering.queue_size,
        batch_size=s.metering.batch_size,
        flush_interval=s.metering.flush_interval_s,
        max_backoff=s.metering.retry_max_backoff_s,
        spill=spill_for(default_spill_dir(s), s.metering.spill_max_mb),
        purge=lambda days: purge_expired(gw, days),
        retention_days=s.metering.log_retention_days,
        on_drop=gw.metrics.log_records_dropped,
        on_depth=gw.metrics.set_log_queue_depth,
    )
    gw.sink.start()
    # Usage spilled by an earlier run (the store was down, then the gateway stopped) goes into the
    # store before budgets are seeded from it, so a restart forgets none of it.
    try:
        replayed = await gw.sink.recover()
        if replayed:
            log.info("request log: wrote %d spilled records into the store", replayed)
    except Exception as exc:
        log.warning("could not replay the request log spill: %r", exc)
    prices = PriceTable(
        {m: p.model_dump() for m, p in s.prices.items()}, exchange_rates=s.metering.exchange_rates or None
    )
    gw.recorder = Recorder(
        s, prices=prices, counter=counter, sink=gw.sink, metrics=gw.metrics, redactor=gw.redactor
    )
    # Redis timeouts: a busy worker's own event loop delays replies too, so timeouts short enough to
    # notice a dead Redis quickly (0.25 s) turned CPU saturation into 503s under load; one second,
    # and a larger pool, keep "Redis is down" meaning Redis is down.
    limiter = (
        build_limiter(
            s.redis,
            lease_ttl=s.limits.lease_ttl_s,
            socket_timeout=1.0,
            connect_timeout=1.0,
            max_connections=64,
            queue_timeout=1.0,
        )
        if s.redis
        else build_limiter(None)
    )
    gw.limits = LimitGate(s, limiter, gw.recorder.estimate_cost_usd)
    gw.limits.on_refusal = gw.metrics.limiter_refused
    gw.limits.on_backend_error = gw.metrics.limiter_backend_failed
    from sluicegate.server.health import HealthKeeper, RedisHealthStore

    if s.admin_key:  # import now, not on the first /admin/ request (click and the CLI: ~0.1 s)
        import sluicegate.admin.api  # noqa: F401

    gw.health = HealthKeeper(
        gw.router, RedisHealthStore(gw.redis) if gw.redis is not None else None, gw.upstreams, gw.client
    )
    gw.health.start()
    from sluicegate.server.configsync import ConfigSync

    gw.configsync = ConfigSync(gw)
    await gw.configsync.start()
    start_tenancy(gw, prices)
    if hasattr(limiter, "on_reset"):  # Redis lost its data (restart, flush): budgets come back from the store
        limiter.on_reset = lambda: reset_counters(gw)
    try:
        await gw.limits.seed_budgets(gw.store, gw.keys.entries(), gw.recorder.to_usd)
    except Exception as exc:
        log.warning("could not seed budget counters from the store: %s", type(exc).__name__)
    await reload_tenancy(gw)
    gw.keysync.on_change = lambda records: seed_changed_budgets(gw, records)
    gw.keysync.before_swap = lambda: reload_tenancy(gw)
    start_objects(gw)
    gw.started = True


def start_tenancy(gw: Gateway, prices: Any) -> None:
    """Users' and teams' balances, group ratios and visible models (server/tenancy.py)."""
    from sluicegate.server.tenancy import TenancyState

    s = gw.settings
    currency = s.tenancy.currency
    gw.store.tenancy.currency = gw.store.usage.charge_currency = currency
    share = s.server.workers if s.server.workers > 1 and not s.redis else 1
    gw.tenancy = TenancyState(currency, prices.rate, share)
    gw.limits.tenancy = gw.tenancy


async def reload_tenancy(gw: Gateway) -> None:
    """Swap in the store's tenancy figures (after any key-revision change), seeding new owners' counters."""
    if gw.tenancy is None:
        return
    try:
        seeds = gw.tenancy.apply(await gw.store.tenancy.snapshot())
        for quota, spent in seeds:
            await gw.limits.limiter.seed(quota, spent)
        gw.tenancy.seeded(seeds)
    except Exception as exc:
        log.warning("could not load tenancy state from the store: %s", type(exc).__name__)


async def reset_counters(gw: Gateway) -> None:
    """The shared counters were lost: budgets and balances start again from the store."""
    await gw.limits.seed_budgets(gw.store, gw.keys.entries(), gw.recorder.to_usd)
    if gw.tenancy is not None:
        gw.tenancy.forget_seeds()
        await reload_tenancy(gw)


def start_objects(gw: Gateway) -> None:
    """Who made each file and batch (server/objects.py), and the poller that meters batches."""
    from sluicegate.server.batches import BatchPoller
    from sluicegate.server.objects import Ownership

    f = gw.settings.files
    gw.objects = Ownership(gw.store.objects, f.cache_size)
    gw.batches = BatchPoller(
        gw,
        interval_s=f.poll_interval_s,
        lease_ttl_s=f.lease_ttl_s,
        price_ratio=f.batch_price_ratio,
        charge=gw.batch_charge,
    )
    gw.batches.start()


async def purge_expired(gw: Gateway, days: float) -> int:
    """Retention: old request-log rows, and kept Responses state past its TTL, in the same pass."""
    deleted: int = await gw.store.usage.purge_older_than(days)
    try:
        await gw.store.responses.purge_expired()
    except Exception as exc:
        log.warning("could not purge expired responses: %s", type(exc).__name__)
    return deleted


async def seed_changed_budgets(gw: Gateway, records: list[Any]) -> None:
    """A key given a budget at run time is held to what it already spent, as after a restart."""
    entries = [
        KeyEntry(r)
        for r in records
        if any(
            getattr(r.limits, f"budget_{m}_{p}") for m in ("tokens", "usd") for p in ("day", "month", "total")
        )
    ]
    if not entries or gw.limits is None or gw.recorder is None:
        return
    try:
        await gw.limits.seed_budgets(gw.store, entries, gw.recorder.to_usd)
    except Exception as exc:
        log.warning("could not seed budget counters of changed keys: %s", type(exc).__name__)


async def stop(gw: Gateway) -> None:
    """Flush the log before anything closes: a SIGTERM loses no record."""
    if gw.sink is not None:
        await gw.sink.close(timeout=gw.settings.server.shutdown_grace_s or 10.0)
    await gw.body_deadlines.close()
    gw.later.close()
    if gw.batches is not None:
        await gw.batches.stop()
    if gw.keysync is not None:
        await gw.keysync.stop()
    if gw.configsync is not None:
        await gw.configsync.stop()
    if gw.health is not None:
        await gw.health.stop()
    if gw.limits is not None:
        await gw.limits.close()
        await gw.limits.limiter.close()
    if gw.store is not None:
        await gw.store.close()
    if gw.redis is not None:
        await gw.redis.aclose()
    await gw.client.close()
    gw.started = False
