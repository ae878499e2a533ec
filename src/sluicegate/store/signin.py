"""Signing in: password checks and portal sessions, as part of the tenancy repository.

Session tokens are returned once and stored only as their SHA-256; a password check costs the same
whether or not the name exists (a dummy hash is checked for an unknown name).
"""

from __future__ import annotations

import functools
import hashlib
import secrets
from collections.abc import Callable

from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from sluicegate.store.passwords import check_password, hash_password, needs_rehash
from sluicegate.store.schema import sessions, users
from sluicegate.store.tenancy_types import User, _user

SESSION_PREFIX = "sgs_"


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class SignIn:
    """Passwords and sessions; mixed into TenancyRepository, which owns the engine and the clock."""

    _engine: AsyncEngine
    _clock: Callable[[], float]

    async def verify_password(self, name: str, password: str) -> User | None:
        """The user when `password` is theirs and they are not disabled; None otherwise.

        A hash made with older parameters is replaced on a successful check.
        """
        async with self._engine.connect() as conn:
            row = (await conn.execute(select(users).where(users.c.name == name))).first()
        if row is None:
            check_password(_dummy_hash(), password)  # the same work whether or not the name exists
            return None
        stored = row._mapping["password_hash"]
        if not check_password(stored, password) or row._mapping["disabled"]:
            return None
        if needs_rehash(stored):
            async with self._engine.begin() as conn:
                await conn.execute(
                    update(users)
                    .where(users.c.id == row._mapping["id"])
                    .values(password_hash=hash_password(password))
                )
        return _user(row)

    async def create_session(self, user_id: str, ttl_s: float) -> tuple[str, float]:
        """A new session token for `user_id` (returned once; only its hash is kept) and its expiry.
        Expired sessions are deleted on the way."""
        token = SESSION_PREFIX + secrets.token_urlsafe(32)
        now = self._clock()
        expires = now + ttl_s
        async with self._engine.begin() as conn:
            await conn.execute(delete(sessions).where(sessions.c.expires_at <= now))
            await conn.execute(
                insert(sessions).values(
                    token_hash=_token_hash(token), user_id=user_id, created_at=now, expires_at=expires
                )
            )
        return token, expires

    async def session_user(self, token: str) -> User | None:
        """The signed-in user of an unexpired session, unless the user is disabled."""
        if not token.startswith(SESSION_PREFIX):
            return None
        query = (
            select(users)
            .join(sessions, sessions.c.user_id == users.c.id)
            .where(sessions.c.token_hash == _token_hash(token), sessions.c.expires_at > self._clock())
        )
        async with self._engine.connect() as conn:
            row = (await conn.execute(query)).first()
        if row is None or row._mapping["disabled"]:
            return None
        return _user(row)

    async def end_session(self, token: str) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(delete(sessions).where(sessions.c.token_hash == _token_hash(token)))

    async def end_other_sessions(self, user_id: str, keep_token: str | None) -> int:
        """End every session of `user_id` but the one holding `keep_token`; returns how many ended."""
        query = delete(sessions).where(sessions.c.user_id == user_id)
        if keep_token is not None:
            query = query.where(sessions.c.token_hash != _token_hash(keep_token))
        async with self._engine.begin() as conn:
            return int((await conn.execute(query)).rowcount or 0)


@functools.cache
def _dummy_hash() -> str:
    """A hash checked when the name is unknown, so a login costs the same whether or not it exists."""
    return hash_password(secrets.token_urlsafe(16))
