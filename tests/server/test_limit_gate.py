"""The limit gate's two paths: the in-process limiter decides without a coroutine, Redis through one.

The request path asks `Gateway.admit` / `hold_slot` / `complete` for their work and awaits only what
comes back (server/app.py). Both paths must hold the same limits exactly.
"""

from __future__ import annotations

import asyncio
import inspect
import uuid

import pytest

from sluicegate.config.model import Settings
from sluicegate.limits import build_limiter
from sluicegate.policy.keys import KeyEntry
from sluicegate.protocol.errors import RateLimited
from sluicegate.server.app import Gateway
from sluicegate.server.context import RequestContext
from sluicegate.server.limiting import LimitGate
from sluicegate.store.records import KeyLimits, KeyRecord
from tests.limits.redis_support import REDIS_URL, delete_prefix


def entry(**limits: int) -> KeyEntry:
    return KeyEntry(
        KeyRecord(
            id=f"k-{uuid.uuid4().hex[:8]}",
            name="t",
            key_hash="",
            prefix="",
            limits=KeyLimits(**limits),
            source="config",
        )
    )


def context(key: KeyEntry) -> RequestContext:
    ctx = RequestContext("/v1/chat/completions", "POST", "127.0.0.1", None)
    ctx.key = key
    ctx.model = "m"
    ctx.payload = {"model": "m", "max_tokens": 10}
    ctx.body_len = 40
    return ctx


def header(ctx: RequestContext, name: str) -> str | None:
    return next((v for k, v in ctx.extra_headers if k == name), None)


def test_the_in_memory_gate_holds_every_limit_without_a_coroutine() -> None:
    gate = LimitGate(Settings(), build_limiter(None), lambda *a: None)
    assert gate.synchronous
    key = entry(rpm=2, tpm=1000, concurrency=1)
    first, second = context(key), context(key)
    gate.hold_slot_nowait(first)
    assert first.slot is not None
    with pytest.raises(RateLimited):  # concurrency 1: the second waits for the first's slot
        gate.hold_slot_nowait(second)
    gate.admit_nowait(first, gate.quotas_for(key, "m", slot_held=True))
    assert header(first, "x-ratelimit-remaining-requests") == "1"
    assert first.admission is not None  # tokens are settled when the answer is in
    gate.settle_nowait(first, 100, None)
    assert first.slot is None and first.admission is None
    gate.hold_slot_nowait(second)  # the slot is free again
    gate.admit_nowait(second, gate.quotas_for(key, "m", slot_held=True))
    assert header(second, "x-ratelimit-remaining-requests") == "0"
    gate.settle_nowait(second, 100, None)
    third = context(key)
    with pytest.raises(RateLimited):  # rpm 2 reached
        gate.admit_nowait(third, gate.quotas_for(key, "m"))
    assert third.slot is None and third.admission is None  # a refusal takes nothing


def test_the_gateway_hands_back_no_awaitable_with_the_in_memory_limiter() -> None:
    gw = Gateway(Settings())
    gw.limits = LimitGate(gw.settings, build_limiter(None), lambda *a: None)
    key = entry(rpm=5, tpm=1000, concurrency=2)
    ctx = context(key)
    assert gw.hold_slot(ctx) is None and ctx.slot is not None
    assert gw.admit(ctx) is None and ctx.admission is not None
    assert header(ctx, "x-ratelimit-remaining-requests") == "4"
    assert gw.complete(ctx) is None  # no recorder: settling alone, at once
    assert ctx.slot is None and ctx.admission is None


async def test_with_redis_the_gateway_hands_back_awaitables_that_hold_the_same_limits() -> None:
    prefix = f"test:gate:{uuid.uuid4().hex[:12]}:"
    limiter = build_limiter(REDIS_URL, prefix=prefix, socket_timeout=5.0, connect_timeout=5.0)
    gw = Gateway(Settings())
    gw.limits = LimitGate(gw.settings, limiter, lambda *a: None)
    try:
        assert not gw.limits.synchronous
        key = entry(rpm=2, tpm=1000, concurrency=1)
        first, second = context(key), context(key)
        holding = gw.hold_slot(first)
        assert inspect.isawaitable(holding)
        await holding
        assert first.slot is not None
        with pytest.raises(RateLimited):
            await gw.hold_slot(second)  # type: ignore[misc]
        admitting = gw.admit(first)
        assert inspect.isawaitable(admitting)
        await admitting
        assert header(first, "x-ratelimit-remaining-requests") == "1"
        completing = gw.complete(first)
        assert inspect.isawaitable(completing)
        await completing
        assert first.slot is None and first.admission is None
        await gw.hold_slot(second)  # type: ignore[misc]
        await gw.admit(second)  # type: ignore[misc]
        assert header(second, "x-ratelimit-remaining-requests") == "0"
        await gw.complete(second)  # type: ignore[misc]
        with pytest.raises(RateLimited):
            await gw.admit(context(key))  # type: ignore[misc]
    finally:
        await gw.limits.close()
        await limiter.close()
        await asyncio.to_thread(delete_prefix, REDIS_URL, prefix)
