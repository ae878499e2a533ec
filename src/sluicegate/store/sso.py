"""Single sign-on logins under way (table `oidc_logins`, migration 0008; docs/portal.md).

A login is started on one gateway and may be finished on another behind the same load balancer, so
what the callback needs (the nonce, the PKCE verifier, the redirect URI, the expiry) is kept in the
shared database, keyed by the SHA-256 of the `state` sent to the provider. `take` deletes the row in the
transaction that reads it and goes on only if its own DELETE removed it, so a state is good for exactly
one callback however many arrive at once, on however many nodes.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from sluicegate.store.schema import oidc_logins


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class PendingLogin:
    binding_hash: str  # SHA-256 of the value in the starting browser's cookie
    nonce: str
    verifier: str
    redirect_uri: str

    def bound_to(self, binding: str | None) -> bool:
        return binding is not None and _sha256(binding) == self.binding_hash


class PendingLogins:
    def __init__(self, engine: AsyncEngine, clock: Callable[[], float] = time.time) -> None:
        self._engine = engine
        self._clock = clock

    async def start(
        self, state: str, binding: str, nonce: str, verifier: str, redirect_uri: str, ttl_s: float
    ) -> None:
        """Keep a new login; expired ones are deleted on the way."""
        now = self._clock()
        async with self._engine.begin() as conn:
            await conn.execute(delete(oidc_logins).where(oidc_logins.c.expires_at <= now))
            await conn.execute(
                insert(oidc_logins).values(
                    state_hash=_sha256(state), binding_hash=_sha256(binding), nonce=nonce,
                    verifier=verifier, redirect_uri=redirect_uri, created_at=now, expires_at=now + ttl_s,
                )
            )  # fmt: skip

    async def take(self, state: str) -> PendingLogin | None:
        """The unexpired login started with `state`, removed so it cannot be used again; else None."""
        c = oidc_logins.c
        async with self._engine.begin() as conn:
            row = (
                await conn.execute(
                    select(c.binding_hash, c.nonce, c.verifier, c.redirect_uri, c.expires_at).where(
                        c.state_hash == _sha256(state)
                    )
                )
            ).first()
            if row is None:
                return None
            gone = await conn.execute(delete(oidc_logins).where(c.state_hash == _sha256(state)))
        if gone.rowcount != 1 or row.expires_at <= self._clock():
            return None  # another callback took it first, or it is too old
        return PendingLogin(row.binding_hash, row.nonce, row.verifier, row.redirect_uri)
