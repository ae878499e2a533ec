"""The repository of kept Responses API state (table `responses`): save, load, delete, purge.

Rows are JSON text (the Response object and the conversation items), read back whole: nothing queries
inside them. A row belongs to one key; a lookup with another key's id finds nothing, exactly as if the
id did not exist, so ids never leak across keys.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import orjson
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncEngine

from sluicegate.store.schema import responses

_PURGE_CHUNK = 5_000


class ResponsesRepository:
    def __init__(self, engine: AsyncEngine, clock: Callable[[], float] = time.time) -> None:
        self._engine = engine
        self._clock = clock

    async def save(self, key_id: str, response: dict[str, Any], items: list[Any], ttl_s: float) -> None:
        now = self._clock()
        row = {
            "id": str(response["id"]),
            "key_id": key_id,
            "created_at": now,
            "expires_at": now + ttl_s,
            "response": orjson.dumps(response).decode(),
            "items": orjson.dumps(items).decode(),
        }
        async with self._engine.begin() as conn:
            await conn.execute(delete(responses).where(responses.c.id == row["id"]))
            await conn.execute(responses.insert().values(**row))

    async def load(self, key_id: str, response_id: str) -> dict[str, Any] | None:
        """`{"response": ..., "items": ...}` of an unexpired response of this key, or None."""
        query = select(responses.c.response, responses.c["items"]).where(
            responses.c.id == response_id,
            responses.c.key_id == key_id,
            responses.c.expires_at > self._clock(),
        )
        async with self._engine.connect() as conn:
            row = (await conn.execute(query)).first()
        if row is None:
            return None
        return {"response": orjson.loads(row[0]), "items": orjson.loads(row[1])}

    async def delete(self, key_id: str, response_id: str) -> bool:
        async with self._engine.begin() as conn:
            result = await conn.execute(
                delete(responses).where(responses.c.id == response_id, responses.c.key_id == key_id)
            )
        return bool(result.rowcount)

    async def purge_expired(self) -> int:
        """Delete expired rows in chunks (each its own transaction); returns how many."""
        old = select(responses.c.id).where(responses.c.expires_at <= self._clock()).limit(_PURGE_CHUNK)
        deleted = 0
        while True:
            async with self._engine.begin() as conn:
                result = await conn.execute(
                    delete(responses).where(responses.c.id.in_(old.scalar_subquery()))
                )
            deleted += result.rowcount
            if result.rowcount < _PURGE_CHUNK:
                return deleted
