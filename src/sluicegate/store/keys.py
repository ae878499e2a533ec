"""Managed API keys in the database, and the revision counter running gateways poll.

Every transaction that changes a key also bumps the single `revision` row, so a gateway worker
can run `SELECT value FROM revision` every half second and reload its key cache only when the
number moved: a new key works, and a revoked key is refused, within a second of the change.
"""

from __future__ import annotations

import builtins
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import Row, literal, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from sluicegate.store.catalog import Audit, write_audit
from sluicegate.store.keyfields import LIMIT_FIELDS, InvalidKeyField, normalise_key_fields
from sluicegate.store.records import KeyLimits, KeyRecord
from sluicegate.store.schema import api_keys, revision, teams, users
from sluicegate.store.secrets import generate_secret, hash_key, key_prefix

_LIST_COLUMNS = ("models", "endpoints", "networks")


class KeyNotFound(LookupError):
    """No managed key has this id."""


class KeyRevoked(ValueError):
    """The key was revoked; revocation is final, so it cannot be changed or re-enabled."""


class KeyNameTaken(InvalidKeyField):
    """Another key (not revoked) already has this name: names are how people tell keys apart."""

    def __init__(self, name: str) -> None:
        super().__init__(f"a key named {name!r} already exists; choose another name (or revoke that key)")
        self.name = name


class KeyAmbiguous(LookupError):
    """A prefix matches several keys."""


@dataclass(frozen=True, slots=True)
class KeyAudit:
    """Who is changing keys, and how a key is shown in the audit log (never its secret or hash)."""

    actor: str
    describe: Callable[[KeyRecord], Any]


class KeyRepository:
    """Create, read, change and revoke managed keys; the engine is shared with the rest of the store."""

    def __init__(self, engine: AsyncEngine, clock: Callable[[], float] = time.time) -> None:
        self._engine = engine
        self._clock = clock

    async def create(self, fields: Mapping[str, Any], audit: KeyAudit | None = None) -> tuple[KeyRecord, str]:
        """Store a new key and return it with its secret, which is never retrievable again.

        `fields` takes the editable KeyRecord fields (`name` is required) plus individual limits
        by name (`rpm=60`); see `normalise_key_fields`.
        """
        if "name" not in fields:
            raise InvalidKeyField("name is required")
        values = _to_columns(normalise_key_fields(fields))
        secret = generate_secret()
        now = self._clock()
        values.update(
            id="key_" + secrets.token_hex(8),
            key_hash=hash_key(secret),
            prefix=key_prefix(secret),
            created_at=now,
            updated_at=now,
        )
        async with self._engine.begin() as conn:
            await _check_name_free(conn, values["name"])
            await _check_owner_exists(conn, values)
            await conn.execute(api_keys.insert().values(values))
            await _bump_revision(conn)
            record = await _fetch(conn, values["id"])
            assert record is not None
            if audit is not None:
                entry = Audit(audit.actor, "create", "key", record.id, None, audit.describe(record))
                await write_audit(conn, entry, now)
        return record, secret

    async def get(self, key_id: str) -> KeyRecord | None:
        """The key with this id, revoked or not; None if there is none."""
        async with self._engine.connect() as conn:
            return await _fetch(conn, key_id)

    async def resolve(self, id_or_prefix: str) -> str:
        """The id of the key this id, unique id prefix or unique secret prefix names.

        KeyNotFound when nothing matches, KeyAmbiguous (with the matching ids) when several do.
        """
        text = id_or_prefix.strip().rstrip("…")
        if not text:
            raise KeyNotFound(id_or_prefix)
        async with self._engine.connect() as conn:
            if await _fetch(conn, text) is not None:
                return text
            like = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            rows = await conn.execute(
                select(api_keys.c.id).where(
                    api_keys.c.id.like(like, escape="\\")
                    | api_keys.c.prefix.like(like, escape="\\")
                    # more of the secret than the list shows: its shown prefix starts what was typed
                    | (api_keys.c.key_hash == hash_key(text))
                    | literal(text).like(api_keys.c.prefix + "%")
                )
            )
            ids = sorted({row[0] for row in rows})
        if not ids:
            raise KeyNotFound(id_or_prefix)
        if len(ids) > 1:
            raise KeyAmbiguous(id_or_prefix, ids)
        return ids[0]

    async def list(self, include_revoked: bool = False) -> list[KeyRecord]:
        """Keys oldest first; revoked ones only when asked for."""
        query = select(api_keys).order_by(api_keys.c.created_at, api_keys.c.id)
        if not include_revoked:
            query = query.where(api_keys.c.revoked_at.is_(None))
        async with self._engine.connect() as conn:
            return [_to_record(row) for row in await conn.execute(query)]

    async def update(self, key_id: str, audit: KeyAudit | None = None, **fields: Any) -> KeyRecord:
        """Change some fields of a key (None clears a limit or the expiry); returns the new state."""
        values = _to_columns(normalise_key_fields(fields))
        if not values:
            record = await self.get(key_id)
            if record is None:
                raise KeyNotFound(key_id)
            return record
        values["updated_at"] = self._clock()
        async with self._engine.begin() as conn:
            if "name" in values:
                await _check_name_free(conn, values["name"], key_id)
            await _check_owner_exists(conn, values)
            before = await _fetch(conn, key_id) if audit is not None else None
            result = await conn.execute(
                update(api_keys)
                .where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None))
                .values(values)
            )
            if result.rowcount == 0:
                raise (KeyNotFound(key_id) if await _fetch(conn, key_id) is None else KeyRevoked(key_id))
            await _bump_revision(conn)
            record = await _fetch(conn, key_id)
            assert record is not None
            if audit is not None and before is not None:
                entry = Audit(
                    audit.actor, "update", "key", key_id, audit.describe(before), audit.describe(record)
                )
                await write_audit(conn, entry, values["updated_at"])
        return record

    async def revoke(self, key_id: str, audit: KeyAudit | None = None) -> KeyRecord:
        """Disable a key for good; revoking twice keeps the first revocation time."""
        now = self._clock()
        async with self._engine.begin() as conn:
            before = await _fetch(conn, key_id) if audit is not None else None
            result = await conn.execute(
                update(api_keys)
                .where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None))
                .values(revoked_at=now, enabled=False, updated_at=now)
            )
            if result.rowcount:
                await _bump_revision(conn)
            record = await _fetch(conn, key_id)
            if result.rowcount and audit is not None and before is not None and record is not None:
                entry = Audit(
                    audit.actor, "revoke", "key", key_id, audit.describe(before), audit.describe(record)
                )
                await write_audit(conn, entry, now)
        if record is None:
            raise KeyNotFound(key_id)
        return record

    async def load_all_active(self) -> builtins.list[KeyRecord]:
        """Keys that may be used now (enabled, not revoked, not expired), for the gateway's cache.

        A key can expire between two reloads, so the request path still checks `expires_at`.
        """
        query = select(api_keys).where(
            api_keys.c.revoked_at.is_(None),
            api_keys.c.enabled.is_(True),
            (api_keys.c.expires_at.is_(None)) | (api_keys.c.expires_at > self._clock()),
        )
        async with self._engine.connect() as conn:
            return [_to_record(row) for row in await conn.execute(query)]

    async def revision(self) -> int:
        """The key revision counter; it changes whenever any key does."""
        async with self._engine.connect() as conn:
            return int((await conn.execute(select(revision.c.value).where(revision.c.id == 1))).scalar_one())


async def _check_name_free(conn: AsyncConnection, name: str, key_id: str | None = None) -> None:
    query = select(api_keys.c.id).where(api_keys.c.name == name, api_keys.c.revoked_at.is_(None))
    if key_id is not None:
        query = query.where(api_keys.c.id != key_id)
    if (await conn.execute(query.limit(1))).first() is not None:
        raise KeyNameTaken(name)


async def _check_owner_exists(conn: AsyncConnection, values: Mapping[str, Any]) -> None:
    """A key given to a user or team that does not exist would be charged to no balance."""
    for column, table, what in (("user_id", users, "user"), ("team_id", teams, "team")):
        wanted = values.get(column)
        if wanted is not None:
            found = (await conn.execute(select(table.c.id).where(table.c.id == wanted))).first()
            if found is None:
                raise InvalidKeyField(f"no {what} has the id {wanted!r}")


async def _bump_revision(conn: AsyncConnection) -> None:
    await conn.execute(update(revision).where(revision.c.id == 1).values(value=revision.c.value + 1))


async def _fetch(conn: AsyncConnection, key_id: str) -> KeyRecord | None:
    row = (await conn.execute(select(api_keys).where(api_keys.c.id == key_id))).first()
    return None if row is None else _to_record(row)


def _to_columns(fields: dict[str, Any]) -> dict[str, Any]:
    return {
        name: orjson.dumps(list(value)).decode() if name in _LIST_COLUMNS else value
        for name, value in fields.items()
    }


def _to_record(row: Row[Any]) -> KeyRecord:
    m = row._mapping
    return KeyRecord(
        id=m["id"],
        name=m["name"],
        key_hash=m["key_hash"],
        prefix=m["prefix"],
        owner=m["owner"],
        enabled=bool(m["enabled"]),
        expires_at=m["expires_at"],
        revoked_at=m["revoked_at"],
        models=tuple(orjson.loads(m["models"])),
        endpoints=tuple(orjson.loads(m["endpoints"])),
        networks=tuple(orjson.loads(m["networks"])),
        limits=KeyLimits(**{name: m[name] for name in LIMIT_FIELDS}),
        store_bodies=bool(m["store_bodies"]),
        cache=m.get("cache"),
        source="store",
        created_at=m["created_at"],
        updated_at=m["updated_at"],
        user_id=m.get("user_id"),
        team_id=m.get("team_id"),
    )
