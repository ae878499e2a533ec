"""Metering batches: a finished batch's usage is charged to the key that created it, exactly once.

A batch runs on the provider for hours and nobody is waiting on the gateway when it ends, so a poller
looks at the batches not yet charged every `files.poll_interval_s`. One gateway polls at a time across
workers and nodes: each worker's poller tries to take (or renew) a lease in the database and only the
holder polls; when it dies the lease expires (`files.lease_ttl_s`) and another takes over.

For a batch that has ended, the poller reads its output file (JSONL, one answer per line, each with the
provider's `usage`), sums the usage per model, prices it at the model's price times
`files.batch_price_ratio` (providers charge batches half price), and writes one request-log row per
model against the owner's key. Charging is idempotent twice over: the rows carry record ids made from the
batch id (a row written twice is stored once), and the batch's `charged_at` is set by a conditional
update, so only the poller that set it calls the `charge=` hook (the tenancy balances).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import secrets
import socket
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import orjson

from sluicegate.metering.prices import UNPRICED, Cost
from sluicegate.metering.usage import Usage, usage_from_mapping
from sluicegate.server.objects import fetch
from sluicegate.store.owned import Charge, OwnedRef, Owner
from sluicegate.store.records import RequestRecord

if TYPE_CHECKING:
    from sluicegate.server.app import Gateway

log = logging.getLogger("sluicegate.batches")

LEASE = "batch-poller"
ENDED = frozenset({"completed", "failed", "expired", "cancelled"})
BATCH_ENDPOINT = "/v1/batches"

ChargeHook = Callable[[Charge], Awaitable[None]]


def output_usage(content: bytes) -> dict[str, tuple[Usage, int]]:
    """Usage per model in a batch output file, with how many answers each model gave.

    Lines that are not answers with usage (errors, blank lines, junk) are skipped: only what the
    provider reports as used is charged.
    """
    found: dict[str, tuple[Usage, int]] = {}
    for line in content.splitlines():
        if not line.strip():
            continue
        try:
            item = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue
        response = item.get("response") if isinstance(item, dict) else None
        body = response.get("body") if isinstance(response, dict) else None
        if not isinstance(body, dict) or not isinstance(body.get("usage"), dict):
            continue
        usage = usage_from_mapping(body["usage"])
        if usage is None:
            continue
        model = str(body.get("model") or "")
        before = found.get(model)
        found[model] = (added(before[0], usage), before[1] + 1) if before else (usage, 1)
    return found


def added(a: Usage, b: Usage) -> Usage:
    """Two requests' usage together (`Usage.merged` is for reports of one request)."""
    return Usage(
        a.prompt_tokens + b.prompt_tokens,
        a.completion_tokens + b.completion_tokens,
        a.cached_tokens + b.cached_tokens,
        a.reasoning_tokens + b.reasoning_tokens,
        a.estimated or b.estimated,
        a.cache_write_tokens + b.cache_write_tokens,
    )


def record_id(batch_id: str, model: str) -> str:
    """The same id for the same batch and model, whichever gateway writes the row."""
    return "batch-" + hashlib.sha256(f"{batch_id}\0{model}".encode()).hexdigest()[:40]


class BatchPoller:
    def __init__(
        self,
        gw: Gateway,
        *,
        interval_s: float,
        lease_ttl_s: float,
        price_ratio: float,
        charge: ChargeHook | None = None,
    ) -> None:
        self.gw = gw
        self.interval_s = interval_s
        self.lease_ttl_s = max(lease_ttl_s, interval_s * 2)
        self.price_ratio = price_ratio
        self.charge = charge
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        self.charged = 0  # batches this poller charged (for tests and logs)
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="sluicegate-batch-poller")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
            try:
                await self.gw.store.objects.release_lease(LEASE, self.holder)
            except Exception as exc:
                log.debug("could not release the batch poller's lease: %s", type(exc).__name__)

    async def _run(self) -> None:
        while True:
            try:
                if await self.gw.store.objects.acquire_lease(LEASE, self.holder, self.lease_ttl_s):
                    await self.poll_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("batch poller: %s: %s", type(exc).__name__, exc)
            await asyncio.sleep(self.interval_s)

    async def poll_once(self) -> int:
        """Look at every batch not charged yet; returns how many this call charged."""
        charged = 0
        for ref in await self.gw.store.objects.uncharged_batches():
            try:
                charged += await self.check(ref)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # one batch's trouble does not stop the others
                log.warning("batch %s: could not meter it: %s", ref.id, type(exc).__name__)
        return charged

    async def check(self, ref: OwnedRef) -> int:
        gw = self.gw
        upstream = gw.upstreams.get(ref.channel)
        if upstream is None:
            log.warning("batch %s lives on upstream %r, which is no longer configured", ref.id, ref.channel)
            return 0
        raw = await self._get(upstream, f"/v1/batches/{ref.id}")
        batch = _object(raw)
        if batch is None:
            return 0
        ownership = gw.objects
        await ownership.refresh(ref, batch)
        await ownership.adopt_outputs(batch, ref.channel, ref.owner)
        if batch.get("status") not in ENDED:
            return 0
        per_model: dict[str, tuple[Usage, int]] = {}
        output = batch.get("output_file_id")
        if isinstance(output, str) and output:
            content = await self._get(upstream, f"/v1/files/{output}/content")
            if content is None:  # try again on the next poll
                return 0
            per_model = output_usage(content)
        records = self.records(ref, batch, per_model)
        if records:
            await gw.store.usage.write_batch(records, replay=True)
        prompt = sum(r.prompt_tokens for r in records)
        completion = sum(r.completion_tokens for r in records)
        cost, currency = self._total(records)
        if not await gw.store.objects.mark_charged(ref.id, prompt, completion, cost, currency):
            return 0  # another poller charged it first
        self.charged += 1
        balance = sum(r.charge for r in records)
        if balance and records[0].charge_owner is not None:
            # The ledger has it (the log rows carry it); the live balances must count it too.
            await charge_outside_requests(gw, records[0].charge_owner, balance)
        log.info(
            "batch %s charged to key %s: %d+%d tokens, %.6f %s",
            ref.id,
            ref.owner.key_id,
            prompt,
            completion,
            cost,
            currency or "(unpriced)",
        )
        if self.charge is not None:
            try:
                await self.charge(Charge(ref.id, ref.owner, prompt, completion, cost, currency))
            except Exception as exc:  # the usage is logged; only the hook's side (a balance) is missing
                log.error(
                    "batch %s: the charge hook failed (%s); its usage is logged, the hook is not retried",
                    ref.id,
                    type(exc).__name__,
                )
        return 1

    def records(
        self, ref: OwnedRef, batch: dict[str, Any], per_model: dict[str, tuple[Usage, int]]
    ) -> list[RequestRecord]:
        gw = self.gw
        ended = batch.get("completed_at") or batch.get("cancelled_at") or batch.get("expired_at")
        ts = float(ended) if isinstance(ended, int | float) and ended > 0 else time.time()
        key_id = ref.owner.key_id or None
        key_name = next((e.record.name for e in gw.keys.entries() if e.record.id == key_id), None)
        prices = gw.recorder.prices if gw.recorder is not None else None
        owner = balance_owner(ref.owner) if gw.tenancy is not None else None
        out = []
        for model, (usage, _answers) in sorted(per_model.items()):
            found = prices.cost(model, usage, upstream=ref.channel) if prices is not None else None
            cost = found.amount * self.price_ratio if found is not None else 0.0
            # Tenancy: the owner's balance pays the batch price × its group's ratio (server/tenancy.py).
            charge = gw.tenancy.charge(owner, (cost, found.currency)) if owner and found is not None else 0
            out.append(
                RequestRecord(
                    request_id=ref.id[:64],
                    ts=ts,
                    key_id=key_id,
                    key_name=key_name,
                    endpoint=BATCH_ENDPOINT,
                    model_requested=model or None,
                    model_served=model or None,
                    upstream=ref.channel,
                    channel=f"{ref.channel}/*",
                    status=200,
                    prompt_tokens=usage.prompt_tokens,
                    completion_tokens=usage.completion_tokens,
                    cached_tokens=usage.cached_tokens,
                    reasoning_tokens=usage.reasoning_tokens,
                    cost=cost,
                    currency=found.currency if found is not None else UNPRICED,
                    record_id=record_id(ref.id, model),
                    charge_owner=owner if charge else None,
                    charge=charge,
                )
            )
        return out

    def _total(self, records: list[RequestRecord]) -> tuple[float, str]:
        """The batch's cost in its currency; in USD when its models are priced in several."""
        priced = [r for r in records if r.currency != UNPRICED]
        currencies = {r.currency for r in priced}
        if not priced:
            return 0.0, ""
        if len(currencies) == 1:
            return sum(r.cost for r in priced), currencies.pop()
        prices = self.gw.recorder.prices
        return sum(prices.to_usd(Cost(r.cost, r.currency)) for r in priced), "USD"

    async def _get(self, upstream: Any, path: str) -> bytes | None:
        return await fetch(self.gw, upstream, path)


def _object(raw: bytes | None) -> dict[str, Any] | None:
    if raw is None:
        return None
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    return obj if isinstance(obj, dict) else None


def balance_owner(owner: Owner) -> str | None:
    """The balance an object's owner pays from: its key's team, else its user (as for requests)."""
    if owner.team_id:
        return f"team:{owner.team_id}"
    if owner.user_id:
        return f"user:{owner.user_id}"
    return None


async def charge_outside_requests(gw: Any, owner: str, micro: int) -> None:
    """Count a charge made off the request path (a batch) in the live balance: a settle of an empty
    reservation adds it to the owner's counter, in memory or in Redis, without any check."""
    if gw.tenancy is None or gw.limits is None:
        return
    from sluicegate.limits import BALANCE, Admission, Demand

    reserved = Admission((Demand(gw.tenancy.quota(owner), 0.0),), ("total",), "", time.time(), None, None)
    try:
        await gw.limits.limiter.settle(reserved, {BALANCE: float(micro)})
    except Exception as exc:
        log.warning("could not count a batch charge in the live balance: %s", type(exc).__name__)
