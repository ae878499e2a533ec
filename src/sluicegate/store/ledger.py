"""Balances and the ledger: credits (top-ups, redemptions, refunds), request charges, redemption codes.

Money is integer micro-units of the balance's currency (1.5 CNY = 1_500_000), never floats: every ledger
entry changes the balance by exactly its amount, so the entries always sum to the balance. Each change
is one transaction that writes the balance first (an UPDATE ... RETURNING, which takes the row's write
lock on PostgreSQL and the database's on SQLite) and the ledger entry with the balance it left.

A code is redeemed by one conditional UPDATE (`redeemed_at IS NULL AND not expired`): of twenty
concurrent redemptions of one code exactly one changes the row, and only it credits.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from sluicegate.store.records import RequestRecord
from sluicegate.store.schema import balances, ledger, redemption_codes, teams, users

MICRO = 1_000_000
CHARGE, TOPUP, REDEEM, REFUND = "charge", "topup", "redeem", "refund"
CREDIT_KINDS = (TOPUP, REDEEM, REFUND)
CODE_PREFIX = "sgc-"


class InvalidAmount(ValueError):
    """An amount of money that cannot be used (not a number, not positive, finer than a micro-unit)."""


class OwnerNotFound(LookupError):
    """No user or team has this id."""


class CodeRefused(ValueError):
    """A redemption code that cannot be redeemed: unknown, already redeemed, or expired (`reason`)."""

    def __init__(self, reason: str) -> None:
        words = {
            "unknown": "this code does not exist",
            "redeemed": "this code was already redeemed",
            "expired": "this code has expired",
        }
        super().__init__(words[reason])
        self.reason = reason


def to_micro(value: Any) -> int:
    """An amount in currency units ("12.5", 12.5, 12) as integer micro-units, exactly."""
    if isinstance(value, bool):
        raise InvalidAmount("an amount must be a number")
    try:
        d = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        raise InvalidAmount(f"not an amount: {value!r}") from None
    if not d.is_finite():
        raise InvalidAmount(f"not an amount: {value!r}")
    micro = d * MICRO
    if micro != micro.to_integral_value():
        raise InvalidAmount("an amount has at most 6 decimal places")
    return int(micro)


def from_micro(micro: int) -> float:
    """Micro-units as a number of currency units, for JSON (exact to the micro-unit when printed)."""
    return float(Decimal(micro) / MICRO)


def micro_of(amount: float) -> int:
    """A computed money amount (a request's cost × ratio) rounded to whole micro-units."""
    return int(Decimal(repr(amount)).scaleb(6).to_integral_value(ROUND_HALF_EVEN))


def parse_owner(owner: str) -> tuple[str, str]:
    """("user", id) or ("team", id) from "usr_…", "team_…", "user:usr_…" or "team:team_…"."""
    kind, sep, rest = owner.partition(":")
    if sep and kind in ("user", "team") and rest:
        return kind, rest
    if owner.startswith("usr_"):
        return "user", owner
    if owner.startswith("team_"):
        return "team", owner
    raise OwnerNotFound(owner)


def hash_code(code: str) -> str:
    return hashlib.sha256(code.strip().encode()).hexdigest()


def new_code() -> str:
    """A redemption code: 144 random bits, URL-safe, easy to paste."""
    return CODE_PREFIX + secrets.token_urlsafe(18)


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    id: int
    owner: str  # "user:<id>" / "team:<id>"
    kind: str
    amount: int  # micro-units, signed
    balance_after: int
    reason: str
    request_id: str | None
    actor: str
    created_at: float

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "owner": self.owner,
            "kind": self.kind,
            "amount": from_micro(self.amount),
            "amount_micro": self.amount,
            "balance_after": from_micro(self.balance_after),
            "reason": self.reason,
            "request_id": self.request_id,
            "actor": self.actor,
            "created_at": self.created_at,
        }


@dataclass(frozen=True, slots=True)
class Balance:
    owner: str
    currency: str
    amount: int  # micro-units
    spent: int  # micro-units ever charged: amount + spent is everything credited

    def to_json(self) -> dict[str, Any]:
        return {
            "owner": self.owner,
            "balance": from_micro(self.amount),
            "balance_micro": self.amount,
            "currency": self.currency,
            "spent": from_micro(self.spent),
        }


def _entry(row: Any) -> LedgerEntry:
    m = row._mapping
    return LedgerEntry(
        m["id"], f"{m['owner_kind']}:{m['owner_id']}", m["kind"], m["amount"], m["balance_after"],
        m["reason"], m["request_id"], m["actor"], m["created_at"],
    )  # fmt: skip


async def owner_exists(conn: AsyncConnection, kind: str, owner_id: str) -> bool:
    table = users if kind == "user" else teams
    return (await conn.execute(select(table.c.id).where(table.c.id == owner_id))).first() is not None


async def change_balance(
    conn: AsyncConnection, kind: str, owner_id: str, delta: int, spent: int, now: float, currency: str
) -> int:
    """Add `delta` to the balance (and `spent` to what was charged); returns the balance after.

    The UPDATE comes first so the transaction takes its write lock before reading anything (SQLite
    cannot upgrade a stale read lock, it fails at once); the row is made when the owner has none yet.
    """
    c = balances.c
    row = (
        await conn.execute(
            update(balances)
            .where(c.owner_kind == kind, c.owner_id == owner_id)
            .values(amount=c.amount + delta, spent=c.spent + spent, updated_at=now)
            .returning(c.amount)
        )
    ).first()
    if row is not None:
        return int(row[0])
    await conn.execute(
        insert(balances).values(
            owner_kind=kind, owner_id=owner_id, currency=currency, amount=delta, spent=spent, updated_at=now
        )
    )
    return delta


async def credit(
    conn: AsyncConnection,
    owner: str,
    kind: str,
    amount: int,
    reason: str,
    actor: str,
    now: float,
    currency: str,
) -> LedgerEntry:
    """Credit `amount` (> 0) to an existing user's or team's balance, with its ledger entry."""
    if kind not in CREDIT_KINDS:
        raise ValueError(f"a credit is one of {CREDIT_KINDS}, not {kind!r}")
    if amount <= 0:
        raise InvalidAmount("a credit must be greater than zero")
    owner_kind, owner_id = parse_owner(owner)
    after = await change_balance(conn, owner_kind, owner_id, amount, 0, now, currency)
    if not await owner_exists(conn, owner_kind, owner_id):
        raise OwnerNotFound(owner)
    result = await conn.execute(
        insert(ledger)
        .values(
            owner_kind=owner_kind,
            owner_id=owner_id,
            kind=kind,
            amount=amount,
            balance_after=after,
            reason=reason,
            request_id=None,
            actor=actor,
            created_at=now,
        )
        .returning(ledger.c.id)
    )
    entry_id = int(result.scalar_one())
    return LedgerEntry(entry_id, f"{owner_kind}:{owner_id}", kind, amount, after, reason, None, actor, now)


async def apply_charges(
    conn: AsyncConnection, records: Sequence[RequestRecord], now: float, currency: str
) -> int:
    """The balance charges of logged requests, in the log's own transaction: one UPDATE per owner and
    one ledger row per charged request. Returns how many were charged."""
    by_owner: dict[str, list[RequestRecord]] = {}
    for r in records:
        if r.charge_owner and r.charge:
            by_owner.setdefault(r.charge_owner, []).append(r)
    if not by_owner:
        return 0
    rows: list[dict[str, Any]] = []
    for owner, charged in by_owner.items():
        kind, owner_id = parse_owner(owner)
        total = sum(r.charge for r in charged)
        after = await change_balance(conn, kind, owner_id, -total, total, now, currency)
        running = after + total
        for r in charged:
            running -= r.charge
            rows.append(
                {
                    "owner_kind": kind,
                    "owner_id": owner_id,
                    "kind": CHARGE,
                    "amount": -r.charge,
                    "balance_after": running,
                    "reason": r.model_requested or r.model_served or r.endpoint,
                    "request_id": r.request_id,
                    "actor": "",
                    "created_at": r.ts,
                }
            )
    await conn.execute(insert(ledger), rows)
    return len(rows)


async def read_balance(conn: AsyncConnection, owner: str, currency: str) -> Balance:
    kind, owner_id = parse_owner(owner)
    c = balances.c
    row = (
        await conn.execute(
            select(c.currency, c.amount, c.spent).where(c.owner_kind == kind, c.owner_id == owner_id)
        )
    ).first()
    if row is None:
        if not await owner_exists(conn, kind, owner_id):
            raise OwnerNotFound(owner)
        return Balance(f"{kind}:{owner_id}", currency, 0, 0)
    return Balance(f"{kind}:{owner_id}", row[0], int(row[1]), int(row[2]))


async def read_ledger(
    conn: AsyncConnection, owner: str, limit: int = 100, before: int | None = None
) -> list[LedgerEntry]:
    """Newest first."""
    kind, owner_id = parse_owner(owner)
    c = ledger.c
    query = select(ledger).where(c.owner_kind == kind, c.owner_id == owner_id)
    if before is not None:
        query = query.where(c.id < before)
    query = query.order_by(c.id.desc()).limit(max(1, min(limit, 10_000)))
    return [_entry(row) for row in await conn.execute(query)]


async def make_codes(
    conn: AsyncConnection, amount: int, count: int, expires_at: float | None, now: float, currency: str
) -> tuple[str, list[str]]:
    """A batch of `count` codes worth `amount` each; returns (batch id, the plaintext codes)."""
    if amount <= 0:
        raise InvalidAmount("a code must be worth more than zero")
    if not 1 <= count <= 10_000:
        raise ValueError("a batch has between 1 and 10000 codes")
    batch_id = "cb_" + secrets.token_hex(6)
    codes = [new_code() for _ in range(count)]
    await conn.execute(
        insert(redemption_codes),
        [
            {
                "code_hash": hash_code(code),
                "prefix": code[: len(CODE_PREFIX) + 4],
                "batch_id": batch_id,
                "amount": amount,
                "currency": currency,
                "created_at": now,
                "expires_at": expires_at,
            }
            for code in codes
        ],
    )
    return batch_id, codes


async def redeem_code(conn: AsyncConnection, code: str, user_id: str, now: float) -> LedgerEntry:
    """Redeem `code` for `user_id`: exactly one of any number of concurrent attempts credits."""
    c = redemption_codes.c
    digest = hash_code(code)
    row = (
        await conn.execute(
            update(redemption_codes)
            .where(
                c.code_hash == digest,
                c.redeemed_at.is_(None),
                (c.expires_at.is_(None)) | (c.expires_at > now),
            )
            .values(redeemed_by=user_id, redeemed_at=now)
            .returning(c.amount, c.currency, c.prefix, c.batch_id)
        )
    ).first()
    if row is None:
        found = (await conn.execute(select(c.redeemed_at).where(c.code_hash == digest))).first()
        raise CodeRefused("unknown" if found is None else "redeemed" if found[0] is not None else "expired")
    amount, currency, prefix, batch_id = int(row[0]), row[1], row[2], row[3]
    reason = f"code {prefix}… (batch {batch_id})"
    return await credit(conn, f"user:{user_id}", REDEEM, amount, reason, f"user:{user_id}", now, currency)


async def list_codes(conn: AsyncConnection, batch_id: str | None = None) -> list[dict[str, Any]]:
    """Codes without their plaintext (only a prefix): for an operator to see what was redeemed."""
    c = redemption_codes.c
    query = select(
        c.prefix, c.batch_id, c.amount, c.currency, c.created_at, c.expires_at, c.redeemed_by, c.redeemed_at
    ).order_by(c.created_at, c.prefix)
    if batch_id is not None:
        query = query.where(c.batch_id == batch_id)
    return [
        {
            "prefix": r.prefix,
            "batch_id": r.batch_id,
            "amount": from_micro(r.amount),
            "currency": r.currency,
            "created_at": r.created_at,
            "expires_at": r.expires_at,
            "redeemed_by": r.redeemed_by,
            "redeemed_at": r.redeemed_at,
        }
        for r in await conn.execute(query)
    ]
