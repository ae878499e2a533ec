"""Portal sessions in the store: an opaque random token in the user's cookie, its SHA-256 in the table.

Why the database and not a signed cookie: a session must end when the user signs out or is disabled,
on every worker and node at once, and a signed cookie cannot be taken back before it expires. The token
carries 256 random bits, so a plain SHA-256 is enough to make a copy of the table useless (no slow hash
needed, as for API keys). Expired rows are deleted at each sign-in: no background task.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from sluicegate.store.schema import portal_sessions, users


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Session:
    """A live session and the signed-in user's current state (read together, in one query)."""

    user_id: str
    user_name: str
    role: str
    group: str
    team_id: str | None
    expires_at: float


class SessionRepository:
    def __init__(self, engine: AsyncEngine, clock: Callable[[], float] = time.time) -> None:
        self._engine = engine
        self._clock = clock

    async def create(self, user_id: str, ttl_s: float, client_ip: str | None = None) -> tuple[str, float]:
        """A new session for `user_id`; returns (the token, for the cookie only; its expiry)."""
        token = secrets.token_urlsafe(32)
        now = self._clock()
        expires_at = now + ttl_s
        async with self._engine.begin() as conn:
            await conn.execute(delete(portal_sessions).where(portal_sessions.c.expires_at <= now))
            await conn.execute(
                insert(portal_sessions).values(
                    token_hash=token_hash(token),
                    user_id=user_id,
                    created_at=now,
                    expires_at=expires_at,
                    client_ip=(client_ip or "")[:64] or None,
                )
            )
        return token, expires_at

    async def lookup(self, token: str) -> Session | None:
        """The session for `token` when it has not expired and its user exists and is not disabled."""
        if not token or len(token) > 200:
            return None
        s, u = portal_sessions.c, users.c
        query = (
            select(u.id, u.name, u.role, u.group_name, u.team_id, s.expires_at)
            .select_from(portal_sessions.join(users, users.c.id == s.user_id))
            .where(s.token_hash == token_hash(token), s.expires_at > self._clock(), u.disabled.is_(False))
        )
        async with self._engine.connect() as conn:
            row = (await conn.execute(query)).first()
        return None if row is None else Session(*row)

    async def end(self, token: str) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(
                delete(portal_sessions).where(portal_sessions.c.token_hash == token_hash(token))
            )

    async def password_hash(self, name: str) -> tuple[str, str | None, bool] | None:
        """(user id, password hash, disabled) of the user named `name`, or None."""
        u = users.c
        async with self._engine.connect() as conn:
            row = (
                await conn.execute(select(u.id, u.password_hash, u.disabled).where(u.name == name))
            ).first()
        return None if row is None else (row[0], row[1], bool(row[2]))
