"""Tenancy on the request path: each key's owner (user or team), its group's ratio and visible models,
and its balance as a quota the limiter holds (docs/tenancy.md).

A balance is enforced by the same reservation as a key's money budget: a `total` budget scoped
``user:<id>`` / ``team:<id>``, metric ``balance``, in micro-units of the operator's currency, whose
**limit is everything ever credited** (balance + charged, from the store) and whose **spent counter is
what was charged**. A request reserves its upper-bound price × ratio at admission (all or nothing with
the key's own quotas, in memory or in one Redis call) and is settled to the exact integer charge, which
also rides the request's log record to the ledger. So the limiter and the ledger add the same integers:
the limiter is ahead only by the charges still queued for the store.

Charges do not move the limit (they move balance down and charged up by the same amount), so a reload
from the store is right however far the log writer lags; a top-up or redemption raises the limit, and
every gateway sees it at its next key-revision reload (the admin API reloads its own at once). The
spent counter is seeded from the store only when the limiter does not have it (a start, a new owner, a
Redis that lost its data), so two gateways on one Redis share one counter.

Nothing here awaits or reads the database on the request path.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sluicegate.limits.quota import BALANCE, Quota
from sluicegate.protocol.errors import ModelNotFound, Unauthorized
from sluicegate.store.ledger import MICRO, micro_of

if TYPE_CHECKING:
    from sluicegate.store.tenancy_types import TenancySnapshot

log = logging.getLogger("sluicegate.tenancy")

_ALL: frozenset[str] = frozenset()


class TenancyState:
    """The tenancy figures a worker holds in memory, replaced whole at each reload."""

    def __init__(self, currency: str, rate_of: Callable[[str], float | None], share: int = 1) -> None:
        self.currency = currency.upper()
        # Several workers and no Redis: each worker holds an equal share of every balance (as LimitGate
        # splits limits), so together they never spend more than the balance.
        self._share = max(1, share)
        self._rate_of = rate_of  # units of a currency per USD (the price table's exchange rates)
        self._quotas: dict[str, Quota] = {}  # owner -> its balance quota (limit = credited total)
        self._group: dict[str, str] = {}  # owner -> group name
        self._disabled: frozenset[str] = frozenset()  # owners ("user:<id>") that may not call
        self._groups: dict[str, tuple[float, frozenset[str]]] = {"default": (1.0, _ALL)}
        self._known: set[str] = set()  # owners whose spent counter this worker has seeded
        self._limits: dict[str, tuple[Quota, ...]] = {}  # owner -> its rates and concurrency (all its keys)
        self._team_of: dict[str, str] = {}  # user id -> team id
        self._per_key: dict[tuple[str, float], tuple[Quota, ...]] = {}  # a key's tenancy quotas, per version

    # -- loading -----------------------------------------------------------------------------------

    def apply(self, snap: TenancySnapshot) -> list[tuple[Quota, float]]:
        """Swap in a snapshot; returns (quota, charged so far) of owners new to this worker, to seed."""
        owners: dict[str, str] = {f"user:{uid}": group for uid, (group, _) in snap.users.items()}
        owners.update({f"team:{tid}": group for tid, group in snap.teams.items()})
        quotas: dict[str, Quota] = {}
        seeds: list[tuple[Quota, float]] = []
        for owner in owners:
            amount, spent = snap.balances.get(owner, (0, 0))
            old = self._quotas.get(owner)
            credited = max(0, amount + spent) / self._share
            q = (
                old
                if old is not None and old.limit == credited
                else Quota.budget(owner, BALANCE, credited, "total")
            )
            quotas[owner] = q
            if owner not in self._known:
                seeds.append((q, spent / self._share))
        self._quotas = quotas
        self._group = owners
        self._disabled = frozenset(f"user:{uid}" for uid, (_, off) in snap.users.items() if off)
        self._groups = dict(snap.groups) or {"default": (1.0, _ALL)}
        self._limits = {owner: self._owner_quotas(owner, values) for owner, values in snap.limits.items()}
        self._team_of = dict(snap.team_of)
        self._per_key = {}
        return seeds

    def _owner_quotas(self, owner: str, values: tuple[int | None, ...]) -> tuple[Quota, ...]:
        """An owner's rpm, rpd, tpm and concurrency, split like key limits across workers without Redis."""
        from sluicegate.limits.quota import REQUESTS, TOKENS

        rpm, rpd, tpm, concurrency = values
        n = self._share
        quotas: list[Quota] = []
        if rpm:
            quotas.append(Quota.rate(owner, REQUESTS, max(1, rpm // n), "minute"))
        if rpd:
            quotas.append(Quota.rate(owner, REQUESTS, max(1, rpd // n), "day"))
        if tpm:
            quotas.append(Quota.rate(owner, TOKENS, tpm / n, "minute"))
        if concurrency:
            quotas.append(Quota.concurrency(owner, max(1, concurrency // n)))
        return tuple(quotas)

    def quotas_for(self, record: Any) -> tuple[Quota, ...]:
        """What a key of a user or team is held to besides its own limits: its owner's balance, its
        user's limits and its team's (the key's team, else its user's team). Built once per key version
        and reload."""
        cache_key = (record.id, record.updated_at)
        found = self._per_key.get(cache_key)
        if found is not None:
            return found
        owner = record.balance_owner
        quotas: tuple[Quota, ...] = (self.quota(owner),)
        if record.user_id:
            quotas += self._limits.get(f"user:{record.user_id}", ())
        team = record.team_id or self._team_of.get(record.user_id or "")
        if team:
            quotas += self._limits.get(f"team:{team}", ())
        if len(self._per_key) > 100_000:
            self._per_key.clear()
        self._per_key[cache_key] = quotas
        return quotas

    def seeded(self, seeds: list[tuple[Quota, float]]) -> None:
        self._known.update(q.scope for q, _ in seeds)

    def forget_seeds(self) -> None:
        """Seed every owner again at the next load (Redis lost its counters)."""
        self._known.clear()

    # -- the request path --------------------------------------------------------------------------

    def quota(self, owner: str) -> Quota:
        """The owner's balance quota; an owner the store does not know (yet) has nothing to spend."""
        q = self._quotas.get(owner)
        if q is None:
            q = Quota.budget(owner, BALANCE, 0.0, "total")
        return q

    def ratio(self, owner: str) -> float:
        return self._groups.get(self._group.get(owner, "default"), (1.0, _ALL))[0]

    def visible(self, owner: str, model: str) -> bool:
        models = self._groups.get(self._group.get(owner, "default"), (1.0, _ALL))[1]
        return not models or model in models

    def check(self, owner: str, model: str | None) -> None:
        """A disabled user's keys are refused; a model the owner's group cannot see does not exist."""
        if owner in self._disabled:
            raise Unauthorized("The account this API key belongs to is disabled.", code="account_disabled")
        if model is not None and not self.visible(owner, model):
            raise ModelNotFound(
                f"The model '{model}' does not exist or you do not have access to it.", param="model"
            )

    def micro_per_usd(self, owner: str) -> float:
        """What one USD of list price reserves from this owner's balance, in micro-units."""
        rate = self._rate_of(self.currency) or 1.0
        return rate * self.ratio(owner) * MICRO

    def charge(self, owner: str, cost: tuple[float, str] | None) -> int:
        """The exact charge of a request: its cost in the balance's currency × the group ratio, rounded
        to the micro-unit. Unpriced requests are free."""
        if cost is None or cost[0] <= 0:
            return 0
        amount, currency = cost
        if currency != self.currency:
            source, target = self._rate_of(currency), self._rate_of(self.currency)
            if not source or not target:
                log.warning(
                    "no exchange rate between %s and %s: request not charged", currency, self.currency
                )
                return 0
            amount = amount / source * target
        return max(0, micro_of(amount * self.ratio(owner)))

    def owners(self) -> list[str]:
        return list(self._quotas)

    def describe(self) -> dict[str, Any]:
        return {"owners": len(self._quotas), "groups": len(self._groups), "currency": self.currency}
