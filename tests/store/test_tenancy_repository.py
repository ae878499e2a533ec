"""TenancyRepository on SQLite and PostgreSQL: users, teams, groups, exact balances and their ledger,
and redemption codes that credit once however many redeem them at once."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import pytest
from sqlalchemy import select

from sluicegate.store import Store
from sluicegate.store.ledger import CodeRefused, InvalidAmount, OwnerNotFound, to_micro
from sluicegate.store.records import RequestRecord
from sluicegate.store.schema import redemption_codes, users
from sluicegate.store.tenancy_types import NameTaken, TenancyError

if TYPE_CHECKING:
    from conftest import Clock


def charged_record(owner: str, micro: int, request_id: str, ts: float) -> RequestRecord:
    return RequestRecord(
        request_id=request_id, ts=ts, key_id="key_x", key_name="k", endpoint="/v1/chat/completions",
        model_requested="gpt-4o-mini", model_served="gpt-4o-mini", upstream="up", channel="up",
        status=200, cost=0.1, charge_owner=owner, charge=micro,
    )  # fmt: skip


async def ledger_sum(store: Store, owner: str) -> int:
    return sum(e.amount for e in await store.tenancy.ledger(owner, limit=10_000))


async def test_a_user_is_created_listed_shown_and_updated(store: Store) -> None:
    await store.tenancy.set_group("vip", ratio=0.8, description="friends")
    team = await store.tenancy.create_team("research")
    user = await store.tenancy.create_user("alice", group="vip", team_id=team.id, role="team_admin")
    assert user.id.startswith("usr_") and user.group == "vip" and user.team_id == team.id
    assert [u.name for u in await store.tenancy.list_users()] == ["alice"]
    assert await store.tenancy.get_user("alice") == await store.tenancy.get_user(user.id) == user
    changed = await store.tenancy.update_user(user.id, name="alice2", disabled=True, group="default")
    assert (changed.name, changed.disabled, changed.group) == ("alice2", True, "default")
    assert (await store.tenancy.get_team("research")).members == ((user.id, "member"),)  # type: ignore[union-attr]


async def test_names_are_unique_and_groups_and_roles_must_exist(store: Store) -> None:
    await store.tenancy.create_user("bob")
    with pytest.raises(NameTaken):
        await store.tenancy.create_user("bob")
    with pytest.raises(TenancyError, match="no group named 'gold'"):
        await store.tenancy.create_user("carol", group="gold")
    with pytest.raises(TenancyError, match="role must be one of"):
        await store.tenancy.create_user("dave", role="root")
    await store.tenancy.create_team("ops")
    with pytest.raises(NameTaken):
        await store.tenancy.create_team("ops")


async def test_a_member_added_to_a_team_gets_it_as_their_team(store: Store) -> None:
    team = await store.tenancy.create_team("ml")
    user = await store.tenancy.create_user("erin")
    updated = await store.tenancy.add_member(team.id, user.id, "team_admin")
    assert updated.members == ((user.id, "team_admin"),)
    assert (await store.tenancy.get_user(user.id)).team_id == team.id  # type: ignore[union-attr]
    assert [t.members for t in await store.tenancy.list_teams()] == [((user.id, "team_admin"),)]


async def test_passwords_are_stored_as_argon2_hashes_and_verified(store: Store) -> None:
    user = await store.tenancy.create_user("frank", password="correct horse battery")
    async with store.engine.connect() as conn:
        stored = (await conn.execute(select(users.c.password_hash))).scalar_one()
    assert stored.startswith("$argon2id$") and "correct horse" not in stored
    assert user.has_password and "password_hash" not in user.to_json()
    assert await store.tenancy.verify_password("frank", "correct horse battery") == user
    assert await store.tenancy.verify_password("frank", "wrong horse battery") is None
    assert await store.tenancy.verify_password("nobody", "correct horse battery") is None
    await store.tenancy.update_user(user.id, disabled=True)
    assert await store.tenancy.verify_password("frank", "correct horse battery") is None


async def test_groups_have_a_ratio_and_visible_models(store: Store) -> None:
    assert [(g.name, g.ratio, g.models) for g in await store.tenancy.list_groups()] == [("default", 1.0, ())]
    vip = await store.tenancy.set_group("vip", ratio=0.5, models=["gpt-4o", "gpt-4o-mini"])
    assert (vip.ratio, vip.models) == (0.5, ("gpt-4o", "gpt-4o-mini"))
    vip = await store.tenancy.set_group("vip", models=[])
    assert (vip.ratio, vip.models) == (0.5, ())


async def test_topups_and_charges_keep_the_ledger_summing_to_the_balance(store: Store, clock: Clock) -> None:
    user = await store.tenancy.create_user("gina")
    owner = f"user:{user.id}"
    await store.tenancy.topup(user.id, to_micro("10.10"), "opening credit", actor="cli:test")
    records = [charged_record(owner, 333_333, f"req_{i}", clock.now + i) for i in range(7)]
    await store.usage.write_batch(records[:4])
    await store.usage.write_batch(records[4:])
    await store.tenancy.topup(owner, to_micro("0.000001"), "rounding gift")
    balance = await store.tenancy.balance(owner)
    assert balance.amount == 10_100_000 - 7 * 333_333 + 1
    assert balance.spent == 7 * 333_333
    assert await ledger_sum(store, owner) == balance.amount
    entries = await store.tenancy.ledger(owner)
    assert [e.kind for e in entries] == ["topup", *["charge"] * 7, "topup"]
    assert entries[0].balance_after == balance.amount  # newest first
    charges = [e for e in entries if e.kind == "charge"]
    assert {e.request_id for e in charges} == {f"req_{i}" for i in range(7)}
    assert all(
        b.balance_after - a.balance_after == 333_333 for a, b in zip(charges, charges[1:], strict=False)
    )


async def test_a_replayed_batch_charges_nothing_twice(store: Store, clock: Clock) -> None:
    team = await store.tenancy.create_team("replay")
    owner = f"team:{team.id}"
    record = charged_record(owner, 1_500_000, "req_once", clock.now)
    record.record_id = "rec-1"
    await store.usage.write_batch([record], replay=True)
    await store.usage.write_batch([record], replay=True)
    assert (await store.tenancy.balance(owner)).amount == -1_500_000
    assert await ledger_sum(store, owner) == -1_500_000


async def test_a_topup_needs_a_positive_exact_amount_a_reason_and_an_owner(store: Store) -> None:
    user = await store.tenancy.create_user("hank")
    with pytest.raises(InvalidAmount):
        await store.tenancy.topup(user.id, 0, "nothing")
    with pytest.raises(InvalidAmount):
        to_micro("0.0000001")
    with pytest.raises(TenancyError, match="reason"):
        await store.tenancy.topup(user.id, 5, " ")
    with pytest.raises(OwnerNotFound):
        await store.tenancy.topup("usr_missing", 5, "ghost")
    assert await store.tenancy.ledger(user.id) == []


async def test_codes_are_shown_once_stored_hashed_and_redeemed_once(store: Store) -> None:
    user = await store.tenancy.create_user("ivy")
    batch, codes = await store.tenancy.create_codes(to_micro(5), 3)
    assert len(set(codes)) == 3
    async with store.engine.connect() as conn:
        stored = repr((await conn.execute(select(redemption_codes))).all())
    assert not any(code in stored for code in codes)
    entry = await store.tenancy.redeem(codes[0], user.id)
    assert (entry.kind, entry.amount, entry.balance_after) == ("redeem", 5_000_000, 5_000_000)
    with pytest.raises(CodeRefused, match="already redeemed"):
        await store.tenancy.redeem(codes[0], user.id)
    with pytest.raises(CodeRefused, match="does not exist"):
        await store.tenancy.redeem("sgc-not-a-code", user.id)
    listed = await store.tenancy.list_codes(batch)
    assert sorted(c["redeemed_by"] or "" for c in listed) == ["", "", user.id]
    assert all("code" not in c and len(c["prefix"]) == 8 for c in listed)


async def test_an_expired_code_is_refused_and_credits_nothing(store: Store, clock: Clock) -> None:
    user = await store.tenancy.create_user("jack")
    _, (code,) = await store.tenancy.create_codes(to_micro(1), 1, expires_at=clock.now + 60)
    clock.advance(61)
    with pytest.raises(CodeRefused, match="expired"):
        await store.tenancy.redeem(code, user.id)
    assert (await store.tenancy.balance(user.id)).amount == 0


async def test_a_code_for_an_unknown_user_stays_unredeemed(store: Store) -> None:
    user = await store.tenancy.create_user("kim")
    _, (code,) = await store.tenancy.create_codes(to_micro(1), 1)
    with pytest.raises(OwnerNotFound):
        await store.tenancy.redeem(code, "usr_nobody")
    assert (await store.tenancy.redeem(code, user.id)).amount == 1_000_000


async def test_one_code_redeemed_twenty_times_at_once_credits_exactly_once(store: Store) -> None:
    people = [await store.tenancy.create_user(f"racer{i}") for i in range(20)]
    _, (code,) = await store.tenancy.create_codes(to_micro("7.5"), 1)

    async def attempt(user_id: str) -> bool:
        try:
            await store.tenancy.redeem(code, user_id)
        except CodeRefused:
            return False
        return True

    results = await asyncio.gather(*(attempt(p.id) for p in people))
    assert results.count(True) == 1
    balances = [(await store.tenancy.balance(p.id)).amount for p in people]
    assert sorted(balances) == [0] * 19 + [7_500_000]
    winner = people[results.index(True)]
    assert await ledger_sum(store, winner.id) == 7_500_000


async def test_the_snapshot_holds_what_a_gateway_needs(store: Store, clock: Clock) -> None:
    await store.tenancy.set_group("vip", ratio=0.8, models=["gpt-4o"])
    user = await store.tenancy.create_user("lee", group="vip")
    team = await store.tenancy.create_team("t1")
    await store.tenancy.topup(user.id, 3_000_000, "start")
    await store.usage.write_batch([charged_record(f"user:{user.id}", 1_000_000, "req_s", clock.now)])
    snap = await store.tenancy.snapshot()
    assert snap.users[user.id] == ("vip", False)
    assert snap.teams[team.id] == "default"
    assert snap.groups["vip"] == (0.8, frozenset({"gpt-4o"}))
    assert snap.groups["default"] == (1.0, frozenset())
    assert snap.balances[f"user:{user.id}"] == (2_000_000, 1_000_000)


async def test_a_key_may_belong_to_an_existing_user_or_team_only(store: Store) -> None:
    user = await store.tenancy.create_user("max")
    record, _ = await store.keys.create({"name": "max-key", "user_id": user.id})
    assert record.user_id == user.id and record.balance_owner == f"user:{user.id}"
    from sluicegate.store import InvalidKeyField

    with pytest.raises(InvalidKeyField, match="no team"):
        await store.keys.create({"name": "ghost-key", "team_id": "team_nothere"})


async def test_a_session_names_its_user_until_it_expires_or_ends(store: Store, clock: Clock) -> None:
    user = await store.tenancy.create_user("nora", password="a fine password")
    token, expires = await store.tenancy.create_session(user.id, ttl_s=3600)
    assert token.startswith("sgs_") and expires == clock.now + 3600
    assert await store.tenancy.session_user(token) == user
    assert await store.tenancy.session_user(token + "x") is None
    clock.advance(3601)
    assert await store.tenancy.session_user(token) is None
    second, _ = await store.tenancy.create_session(user.id, ttl_s=3600)
    await store.tenancy.end_session(second)
    assert await store.tenancy.session_user(second) is None


async def test_a_disabled_users_sessions_stop_working(store: Store) -> None:
    user = await store.tenancy.create_user("otto", password="a fine password")
    token, _ = await store.tenancy.create_session(user.id, ttl_s=3600)
    await store.tenancy.update_user(user.id, disabled=True)
    assert await store.tenancy.session_user(token) is None


async def test_sessions_are_stored_as_hashes(store: Store) -> None:
    from sluicegate.store.schema import sessions

    user = await store.tenancy.create_user("pia")
    token, _ = await store.tenancy.create_session(user.id, ttl_s=60)
    async with store.engine.connect() as conn:
        stored = repr((await conn.execute(select(sessions))).all())
    assert token not in stored and token[4:] not in stored


async def test_users_and_teams_hold_limits_over_all_their_keys(store: Store) -> None:
    team = await store.tenancy.create_team("limited")
    user = await store.tenancy.create_user("quinn", team_id=team.id)
    changed = await store.tenancy.update_user(user.id, rpm=30, concurrency=2)
    assert changed.to_json()["limits"] == {"rpm": 30, "rpd": None, "tpm": None, "concurrency": 2}
    updated = await store.tenancy.update_team(team.id, tpm=5000, name="limited-2")
    assert updated.name == "limited-2" and updated.to_json()["limits"]["tpm"] == 5000
    cleared = await store.tenancy.update_user(user.id, rpm=0)
    assert cleared.to_json()["limits"]["rpm"] is None
    with pytest.raises(TenancyError, match="whole number"):
        await store.tenancy.update_user(user.id, rpm=1.5)
    snap = await store.tenancy.snapshot()
    assert snap.limits[f"user:{user.id}"] == (None, None, None, 2)
    assert snap.limits[f"team:{team.id}"] == (None, None, 5000, None)
    assert snap.team_of[user.id] == team.id
