"""Users, teams, groups and their money: the tenancy repository (docs/tenancy.md).

Every change bumps the key revision (row 1), in its own transaction, so running gateways reload their
tenancy state (groups, ratios, balances' credited totals) on the same poll that reloads keys. Balances
and the ledger are in store/ledger.py; passwords in store/passwords.py; sign-in and sessions in
store/signin.py; the types it hands out and the validation of input in store/tenancy_types.py.
"""

from __future__ import annotations

import builtins
import secrets
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from sluicegate.store import ledger as money
from sluicegate.store.ledger import Balance, LedgerEntry, OwnerNotFound
from sluicegate.store.passwords import hash_password
from sluicegate.store.schema import (
    balances,
    group_models,
    groups,
    revision,
    team_members,
    teams,
    users,
)
from sluicegate.store.signin import SignIn
from sluicegate.store.tenancy_types import (
    DEFAULT_GROUP,
    OWNER_LIMITS,
    Group,
    NameTaken,
    Team,
    TenancyError,
    TenancySnapshot,
    User,
    _limits_of,
    _role,
    _sso,
    _text,
    _user,
    limit_values,
)


async def _bump(conn: AsyncConnection) -> None:
    await conn.execute(update(revision).where(revision.c.id == 1).values(value=revision.c.value + 1))


class TenancyRepository(SignIn):
    """Users, teams, groups, balances, the ledger and redemption codes on the shared engine."""

    def __init__(self, engine: AsyncEngine, clock: Callable[[], float] = time.time) -> None:
        self._engine = engine
        self._clock = clock
        self.currency = "USD"  # the operator's currency for new balances (settings.tenancy.currency)

    # -- users ------------------------------------------------------------------------------------------

    async def create_user(
        self,
        name: str,
        *,
        role: str = "member",
        group: str = DEFAULT_GROUP,
        team_id: str | None = None,
        password: str | None = None,
        sso: tuple[str, str] | None = None,
        password_hash: str | None = None,
    ) -> User:
        """`password_hash` instead of `password`: a hash made beforehand (off the event loop)."""
        now = self._clock()
        sso_issuer, sso_subject = _sso(sso)
        group_name = _text(group, "group", 64)
        values: dict[str, Any] = {
            "id": "usr_" + secrets.token_hex(8), "name": _text(name, "name"), "role": _role(role),
            "group_name": _text(group, "group", 64), "team_id": team_id, "disabled": False,
            "password_hash": hash_password(password) if password is not None else password_hash,
            "created_at": now, "updated_at": now, "sso_issuer": sso_issuer, "sso_subject": sso_subject,
        }  # fmt: skip
        async with self._engine.begin() as conn:
            await _bump(conn)
            await self._check_group(conn, group_name)
            if team_id is not None:
                await self._check_team(conn, team_id)
            try:
                await conn.execute(insert(users).values(values))
            except IntegrityError:
                raise _taken(values) from None
            if team_id is not None:
                await conn.execute(
                    insert(team_members).values(team_id=team_id, user_id=values["id"], role="member")
                )
            await conn.execute(
                insert(balances).values(
                    owner_kind="user",
                    owner_id=values["id"],
                    currency=self.currency,
                    amount=0,
                    spent=0,
                    updated_at=now,
                )
            )
            row = (await conn.execute(select(users).where(users.c.id == values["id"]))).one()
        return _user(row)

    async def get_user(self, id_or_name: str) -> User | None:
        async with self._engine.connect() as conn:
            row = (
                await conn.execute(
                    select(users).where((users.c.id == id_or_name) | (users.c.name == id_or_name))
                )
            ).first()
        return None if row is None else _user(row)

    async def user_by_sso(self, issuer: str, subject: str) -> User | None:
        """The user linked to this single sign-on identity, if any."""
        u = users.c
        async with self._engine.connect() as conn:
            row = (
                await conn.execute(select(users).where(u.sso_issuer == issuer, u.sso_subject == subject))
            ).first()
        return None if row is None else _user(row)

    async def list_users(self) -> builtins.list[User]:
        async with self._engine.connect() as conn:
            return [
                _user(r) for r in await conn.execute(select(users).order_by(users.c.created_at, users.c.id))
            ]

    async def update_user(self, user_id: str, **fields: Any) -> User:
        """Change name, role, group, team_id, disabled, password (None removes the password) or the
        single sign-on link `sso` ((issuer, subject); None removes it)."""
        allowed = {"name", "role", "group", "team_id", "disabled", "password", "password_hash", "sso"}
        allowed.update(OWNER_LIMITS)
        unknown = set(fields) - allowed
        if unknown:
            raise TenancyError(f"unknown user field(s): {', '.join(sorted(unknown))}")
        fields = dict(fields)
        values: dict[str, Any] = dict(limit_values(fields))
        if "name" in fields:
            values["name"] = _text(fields["name"], "name")
        if "role" in fields:
            values["role"] = _role(fields["role"])
        if "group" in fields:
            values["group_name"] = _text(fields["group"], "group", 64)
        if "team_id" in fields:
            values["team_id"] = fields["team_id"]
        if "disabled" in fields:
            if not isinstance(fields["disabled"], bool):
                raise TenancyError("disabled must be true or false")
            values["disabled"] = fields["disabled"]
        if "password" in fields:
            pw = fields["password"]
            values["password_hash"] = hash_password(pw) if pw is not None else None
        if "password_hash" in fields:  # made beforehand, off the event loop
            values["password_hash"] = fields["password_hash"]
        if "sso" in fields:
            values["sso_issuer"], values["sso_subject"] = _sso(fields["sso"])
        values["updated_at"] = self._clock()
        async with self._engine.begin() as conn:
            await _bump(conn)
            if "group_name" in values:
                await self._check_group(conn, values["group_name"])
            if values.get("team_id") is not None:
                await self._check_team(conn, values["team_id"])
            try:
                result = await conn.execute(update(users).where(users.c.id == user_id).values(values))
            except IntegrityError:
                raise _taken(values) from None
            if result.rowcount == 0:
                raise OwnerNotFound(user_id)
            row = (await conn.execute(select(users).where(users.c.id == user_id))).one()
        return _user(row)

    async def set_password(self, user_id: str, password: str) -> None:
        await self.update_user(user_id, password=password)

    # -- teams ------------------------------------------------------------------------------------------

    async def create_team(self, name: str, *, group: str = DEFAULT_GROUP) -> Team:
        now = self._clock()
        team_id = "team_" + secrets.token_hex(8)
        async with self._engine.begin() as conn:
            await _bump(conn)
            await self._check_group(conn, _text(group, "group", 64))
            try:
                await conn.execute(
                    insert(teams).values(
                        id=team_id, name=_text(name, "name"), group_name=group.strip(), created_at=now
                    )
                )
            except IntegrityError:
                raise NameTaken(f"a team named {name.strip()!r} already exists") from None
            await conn.execute(
                insert(balances).values(
                    owner_kind="team",
                    owner_id=team_id,
                    currency=self.currency,
                    amount=0,
                    spent=0,
                    updated_at=now,
                )
            )
        team = await self.get_team(team_id)
        assert team is not None
        return team

    async def get_team(self, id_or_name: str) -> Team | None:
        async with self._engine.connect() as conn:
            row = (
                await conn.execute(
                    select(teams).where((teams.c.id == id_or_name) | (teams.c.name == id_or_name))
                )
            ).first()
            if row is None:
                return None
            members = await conn.execute(
                select(team_members.c.user_id, team_members.c.role)
                .where(team_members.c.team_id == row.id)
                .order_by(team_members.c.user_id)
            )
            return Team(
                row.id,
                row.name,
                row.group_name,
                row.created_at,
                tuple((m[0], m[1]) for m in members),
                _limits_of(row._mapping),
            )

    async def list_teams(self) -> builtins.list[Team]:
        async with self._engine.connect() as conn:
            rows = (await conn.execute(select(teams).order_by(teams.c.created_at, teams.c.id))).all()
            members: dict[str, builtins.list[tuple[str, str]]] = {}
            for m in await conn.execute(select(team_members).order_by(team_members.c.user_id)):
                members.setdefault(m.team_id, []).append((m.user_id, m.role))
        return [
            Team(
                r.id, r.name, r.group_name, r.created_at, tuple(members.get(r.id, ())), _limits_of(r._mapping)
            )
            for r in rows
        ]

    async def update_team(self, team_id: str, **fields: Any) -> Team:
        """Change a team's name, group, or limits (rpm, rpd, tpm, concurrency; 0 or None removes one)."""
        fields = dict(fields)
        values: dict[str, Any] = dict(limit_values(fields))
        if "name" in fields:
            values["name"] = _text(fields.pop("name"), "name")
        if "group" in fields:
            values["group_name"] = _text(fields.pop("group"), "group", 64)
        if fields:
            raise TenancyError(f"unknown team field(s): {', '.join(sorted(fields))}")
        if not values:
            raise TenancyError("nothing to change")
        async with self._engine.begin() as conn:
            await _bump(conn)
            if "group_name" in values:
                await self._check_group(conn, values["group_name"])
            try:
                result = await conn.execute(update(teams).where(teams.c.id == team_id).values(values))
            except IntegrityError:
                raise NameTaken(f"a team named {values.get('name')!r} already exists") from None
            if result.rowcount == 0:
                raise OwnerNotFound(team_id)
        team = await self.get_team(team_id)
        assert team is not None
        return team

    async def add_member(self, team_id: str, user_id: str, role: str = "member") -> Team:
        """Put a user in a team (their team too, when they had none); adding again changes the role."""
        if role not in ("team_admin", "member", "viewer"):
            raise TenancyError("a member's role is team_admin, member or viewer")
        async with self._engine.begin() as conn:
            await _bump(conn)
            await self._check_team(conn, team_id)
            user = (await conn.execute(select(users.c.team_id).where(users.c.id == user_id))).first()
            if user is None:
                raise OwnerNotFound(user_id)
            c = team_members.c
            await conn.execute(delete(team_members).where(c.team_id == team_id, c.user_id == user_id))
            await conn.execute(insert(team_members).values(team_id=team_id, user_id=user_id, role=role))
            if user[0] is None:
                await conn.execute(update(users).where(users.c.id == user_id).values(team_id=team_id))
        team = await self.get_team(team_id)
        assert team is not None
        return team

    # -- groups -----------------------------------------------------------------------------------------

    async def set_group(
        self, name: str, *, ratio: float | None = None, description: str | None = None, models: Any = None
    ) -> Group:
        """Create or change a group; `models` (a list) replaces its visible models ([] = every model)."""
        name = _text(name, "group name", 64)
        if ratio is not None and (
            isinstance(ratio, bool) or not isinstance(ratio, int | float) or not 0 <= ratio < 1e6
        ):
            raise TenancyError("ratio must be a number >= 0")
        async with self._engine.begin() as conn:
            await _bump(conn)
            exists = (
                await conn.execute(select(groups.c.name).where(groups.c.name == name))
            ).first() is not None
            values: dict[str, Any] = {}
            if ratio is not None:
                values["ratio"] = float(ratio)
            if description is not None:
                values["description"] = str(description)
            if exists:
                if values:
                    await conn.execute(update(groups).where(groups.c.name == name).values(values))
            else:
                await conn.execute(
                    insert(groups).values(
                        name=name, ratio=values.get("ratio", 1.0), description=values.get("description", "")
                    )
                )
            if models is not None:
                if isinstance(models, str) or not all(isinstance(m, str) and m.strip() for m in models):
                    raise TenancyError("models must be a list of model names")
                await conn.execute(delete(group_models).where(group_models.c.group_name == name))
                wanted = sorted({m.strip() for m in models})
                if wanted:
                    await conn.execute(
                        insert(group_models), [{"group_name": name, "model": m} for m in wanted]
                    )
        found = await self.get_group(name)
        assert found is not None
        return found

    async def get_group(self, name: str) -> Group | None:
        return next((g for g in await self.list_groups() if g.name == name), None)

    async def list_groups(self) -> builtins.list[Group]:
        async with self._engine.connect() as conn:
            models: dict[str, builtins.list[str]] = {}
            for r in await conn.execute(select(group_models).order_by(group_models.c.model)):
                models.setdefault(r.group_name, []).append(r.model)
            rows = (await conn.execute(select(groups).order_by(groups.c.name))).all()
        return [Group(r.name, r.ratio, r.description, tuple(models.get(r.name, ()))) for r in rows]

    # -- money ------------------------------------------------------------------------------------------

    async def topup(
        self, owner: str, amount: int, reason: str, actor: str = "", kind: str = money.TOPUP
    ) -> LedgerEntry:
        """Credit `amount` micro-units to a user's or team's balance (kind topup or refund)."""
        if not isinstance(reason, str) or not reason.strip():
            raise TenancyError("a top-up needs a reason")
        async with self._engine.begin() as conn:
            entry = await money.credit(
                conn, owner, kind, amount, reason.strip(), actor, self._clock(), self.currency
            )
            await _bump(conn)
        return entry

    async def balance(self, owner: str) -> Balance:
        async with self._engine.connect() as conn:
            return await money.read_balance(conn, owner, self.currency)

    async def ledger(
        self, owner: str, limit: int = 100, before: int | None = None
    ) -> builtins.list[LedgerEntry]:
        async with self._engine.connect() as conn:
            if not await money.owner_exists(conn, *money.parse_owner(owner)):
                raise OwnerNotFound(owner)
            return await money.read_ledger(conn, owner, limit, before)

    async def create_codes(
        self, amount: int, count: int, expires_at: float | None = None
    ) -> tuple[str, builtins.list[str]]:
        """A batch of codes; the plaintext is returned here and never again (only hashes are kept)."""
        async with self._engine.begin() as conn:
            return await money.make_codes(conn, amount, count, expires_at, self._clock(), self.currency)

    async def list_codes(self, batch_id: str | None = None) -> builtins.list[dict[str, Any]]:
        async with self._engine.connect() as conn:
            return await money.list_codes(conn, batch_id)

    async def redeem(self, code: str, user_id: str) -> LedgerEntry:
        """Credit the code's amount to `user_id`, once per code however many try at once."""
        async with self._engine.begin() as conn:
            entry = await money.redeem_code(conn, code, user_id, self._clock())
            await _bump(conn)
        return entry

    # -- what a gateway loads -----------------------------------------------------------------------------

    async def snapshot(self) -> TenancySnapshot:
        async with self._engine.connect() as conn:
            u = {
                r.id: (r.group_name, bool(r.disabled))
                for r in await conn.execute(select(users.c.id, users.c.group_name, users.c.disabled))
            }
            t = {r.id: r.group_name for r in await conn.execute(select(teams.c.id, teams.c.group_name))}
            visible: dict[str, set[str]] = {}
            for r in await conn.execute(select(group_models)):
                visible.setdefault(r.group_name, set()).add(r.model)
            g = {
                r.name: (float(r.ratio), frozenset(visible.get(r.name, ())))
                for r in await conn.execute(select(groups))
            }
            b = {
                f"{r.owner_kind}:{r.owner_id}": (int(r.amount), int(r.spent))
                for r in await conn.execute(
                    select(balances.c.owner_kind, balances.c.owner_id, balances.c.amount, balances.c.spent)
                )
            }
            limits: dict[str, tuple[int | None, ...]] = {}
            team_of: dict[str, str] = {}
            for kind, table in (("user", users), ("team", teams)):
                columns = [table.c.id, *(table.c[name] for name in OWNER_LIMITS)]
                if kind == "user":
                    columns.append(users.c.team_id)
                for r in await conn.execute(select(*columns)):
                    values = tuple(r[1:5])
                    if any(v is not None for v in values):
                        limits[f"{kind}:{r[0]}"] = values
                    if kind == "user" and r[5] is not None:
                        team_of[r[0]] = r[5]
        return TenancySnapshot(u, t, g, b, limits, team_of)

    # -- checks -------------------------------------------------------------------------------------------

    @staticmethod
    async def _check_group(conn: AsyncConnection, name: str) -> None:
        if (await conn.execute(select(groups.c.name).where(groups.c.name == name))).first() is None:
            raise TenancyError(
                f"no group named {name!r} (create it first: sluicegate groups set {name} --ratio R)"
            )

    @staticmethod
    async def _check_team(conn: AsyncConnection, team_id: str) -> None:
        if (await conn.execute(select(teams.c.id).where(teams.c.id == team_id))).first() is None:
            raise OwnerNotFound(team_id)


def _taken(values: dict[str, Any]) -> TenancyError:
    """The unique index a user insert or update ran into: the name, or the SSO identity."""
    if values.get("sso_subject") is not None:
        return NameTaken(
            f"a user named {values.get('name')!r} already exists, or that single sign-on identity is linked"
        )
    return NameTaken(f"a user named {values.get('name')!r} already exists")
