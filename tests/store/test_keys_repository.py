"""KeyRepository on SQLite and PostgreSQL: keys as hashes, changes bump the revision."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from sqlalchemy import select

from sluicegate.store import InvalidKeyField, KeyNotFound, KeyRevoked, Store
from sluicegate.store.records import KeyLimits
from sluicegate.store.schema import api_keys
from sluicegate.store.secrets import hash_key, key_prefix

if TYPE_CHECKING:
    from conftest import Clock


async def test_create_returns_the_secret_and_stores_only_its_hash(store: Store) -> None:
    record, secret = await store.keys.create({"name": "billing"})
    assert secret.startswith("sk-sg-")
    assert record.key_hash == hash_key(secret)
    assert record.prefix == key_prefix(secret)
    async with store.engine.connect() as conn:
        stored = (await conn.execute(select(api_keys))).one()
    assert secret not in repr(tuple(stored))


async def test_every_field_survives_a_round_trip(store: Store, clock: Clock) -> None:
    limits = KeyLimits(rpm=60, rpd=1000, tpm=90_000, concurrency=4, budget_tokens_month=5_000_000,
                       budget_usd_day=2.5, budget_usd_total=100.0)  # fmt: skip
    created, _ = await store.keys.create({
        "name": "chat-ui", "owner": "team-a", "models": ["gpt-4o*", "qwen-max"],
        "endpoints": ["chat", "/v1/responses"], "networks": ["10.0.0.0/8"], "limits": limits,
        "store_bodies": True, "expires_at": clock.now + 86400,
    })  # fmt: skip
    fetched = await store.keys.get(created.id)
    assert fetched == created
    assert fetched is not None
    assert (fetched.models, fetched.endpoints, fetched.networks) == (
        ("gpt-4o*", "qwen-max"),
        ("chat", "/v1/responses"),
        ("10.0.0.0/8",),
    )
    assert fetched.limits == limits
    assert (fetched.owner, fetched.store_bodies, fetched.expires_at) == ("team-a", True, clock.now + 86400)
    assert (fetched.created_at, fetched.updated_at, fetched.source) == (clock.now, clock.now, "store")


async def test_create_requires_a_name(store: Store) -> None:
    with pytest.raises(InvalidKeyField, match="name is required"):
        await store.keys.create({"owner": "x"})


async def test_create_refuses_a_bad_network_and_stores_nothing(store: Store) -> None:
    with pytest.raises(InvalidKeyField, match="invalid network"):
        await store.keys.create({"name": "x", "networks": ["10.0.0.0/99"]})
    assert await store.keys.list(include_revoked=True) == []
    assert await store.keys.revision() == 0


async def test_get_of_an_unknown_id_is_none(store: Store) -> None:
    assert await store.keys.get("key_missing") is None


async def test_list_is_oldest_first_and_leaves_out_revoked_keys(store: Store, clock: Clock) -> None:
    first, _ = await store.keys.create({"name": "first"})
    clock.advance(1)
    second, _ = await store.keys.create({"name": "second"})
    clock.advance(1)
    third, _ = await store.keys.create({"name": "third"})
    await store.keys.revoke(second.id)
    assert [k.name for k in await store.keys.list()] == ["first", "third"]
    assert [k.name for k in await store.keys.list(include_revoked=True)] == ["first", "second", "third"]


async def test_update_changes_only_the_given_fields(store: Store, clock: Clock) -> None:
    created, _ = await store.keys.create({"name": "k", "owner": "o", "rpm": 60, "tpm": 1000})
    clock.advance(5)
    updated = await store.keys.update(created.id, name="renamed", tpm=2000, models=["gpt-4o"])
    assert (updated.name, updated.owner, updated.models) == ("renamed", "o", ("gpt-4o",))
    assert (updated.limits.rpm, updated.limits.tpm) == (60, 2000)
    assert (updated.created_at, updated.updated_at) == (created.created_at, clock.now)
    assert await store.keys.get(created.id) == updated


async def test_update_with_none_clears_a_limit_and_the_expiry(store: Store, clock: Clock) -> None:
    created, _ = await store.keys.create({"name": "k", "rpm": 60, "expires_at": clock.now + 60})
    updated = await store.keys.update(created.id, rpm=None, expires_at=None)
    assert updated.limits.rpm is None
    assert updated.expires_at is None


async def test_update_of_an_unknown_key_raises_not_found(store: Store) -> None:
    with pytest.raises(KeyNotFound):
        await store.keys.update("key_missing", rpm=5)


async def test_a_revoked_key_cannot_be_updated_or_re_enabled(store: Store) -> None:
    created, _ = await store.keys.create({"name": "k"})
    await store.keys.revoke(created.id)
    with pytest.raises(KeyRevoked):
        await store.keys.update(created.id, enabled=True)
    record = await store.keys.get(created.id)
    assert record is not None and record.enabled is False


async def test_revoke_disables_the_key_and_records_when(store: Store, clock: Clock) -> None:
    created, _ = await store.keys.create({"name": "k"})
    clock.advance(10)
    revoked = await store.keys.revoke(created.id)
    assert (revoked.enabled, revoked.revoked_at, revoked.updated_at) == (False, clock.now, clock.now)


async def test_revoking_twice_keeps_the_first_time(store: Store, clock: Clock) -> None:
    created, _ = await store.keys.create({"name": "k"})
    first = await store.keys.revoke(created.id)
    clock.advance(10)
    assert (await store.keys.revoke(created.id)).revoked_at == first.revoked_at


async def test_revoke_of_an_unknown_key_raises_not_found(store: Store) -> None:
    with pytest.raises(KeyNotFound):
        await store.keys.revoke("key_missing")


async def test_the_revision_moves_on_create_update_and_revoke(store: Store) -> None:
    assert await store.keys.revision() == 0
    created, _ = await store.keys.create({"name": "k"})
    assert await store.keys.revision() == 1
    await store.keys.update(created.id, rpm=5)
    assert await store.keys.revision() == 2
    await store.keys.revoke(created.id)
    assert await store.keys.revision() == 3


async def test_the_revision_stays_when_nothing_changed(store: Store) -> None:
    created, _ = await store.keys.create({"name": "k"})
    await store.keys.revoke(created.id)
    before = await store.keys.revision()
    await store.keys.revoke(created.id)
    with pytest.raises(KeyRevoked):
        await store.keys.update(created.id, rpm=5)
    await store.keys.update(created.id)
    assert await store.keys.revision() == before


async def test_a_second_gateway_sees_changes_through_the_revision(store: Store, db_url: str) -> None:
    async with await Store.open(db_url) as other_worker:
        seen = await other_worker.keys.revision()
        created, secret = await store.keys.create({"name": "new"})
        assert await other_worker.keys.revision() != seen
        active = {k.key_hash: k for k in await other_worker.keys.load_all_active()}
        assert active[hash_key(secret)].id == created.id


async def test_load_all_active_leaves_out_disabled_revoked_and_expired_keys(
    store: Store, clock: Clock
) -> None:
    usable, _ = await store.keys.create({"name": "usable", "expires_at": clock.now + 60})
    disabled, _ = await store.keys.create({"name": "disabled"})
    await store.keys.update(disabled.id, enabled=False)
    revoked, _ = await store.keys.create({"name": "revoked"})
    await store.keys.revoke(revoked.id)
    await store.keys.create({"name": "expired", "expires_at": clock.now + 1})
    clock.advance(2)
    assert [k.name for k in await store.keys.load_all_active()] == ["usable"]
