"""Users, teams, groups and their money: the tenancy repository (docs/tenancy.md).

Every change bumps the key revision (row 1), in its own transaction, so running gateways reload their
tenancy state (groups, ratios, balances' credited totals) on the same poll that reloads keys. Balances
and the ledger are in store/ledger.py; passwords in store/passwords.py.
"""

from __future__ import annotations

import builtins
import functools
import hashlib
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from sluicegate.store import ledger as money
from sluicegate.store.ledger import Balance, LedgerEntry, OwnerNotFound
from sluicegate.store.passwords import check_password, hash_password, needs_rehash
from sluicegate.store.schema import (
    balances,
    group_models,
    groups,
    revision,
    sessions,
    team_members,
    teams,
    users,
)

ROLES = ("operator", "team_admin", "member", "viewer")
OWNER_LIMITS = ("rpm", "rpd", "tpm", "concurrency")  # held over all of a user's (or team's) keys together
SESSION_PREFIX = "sgs_"


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


DEFAULT_GROUP = "default"


class TenancyError(ValueError):
    """A tenancy change that cannot be made; the message says why."""


class NameTaken(TenancyError):
    """Another user (or team) already has this name."""


@dataclass(frozen=True, slots=True)
class User:
    id: str
    name: str
    role: str
    group: str
    team_id: str | None
    disabled: bool
    has_password: bool
    created_at: float
    updated_at: float
    limits: tuple[int | None, ...] = (None, None, None, None)  # OWNER_LIMITS, over all the user's keys
    sso: tuple[str, str] | None = None  # (OIDC issuer, subject) the user signs in as, if linked

    def to_json(self) -> dict[str, Any]:
        """Never the password hash: only whether there is one. The SSO link is an identifier, no secret."""
        return {
            "id": self.id, "name": self.name, "role": self.role, "group": self.group, "team_id": self.team_id,
            "disabled": self.disabled, "has_password": self.has_password,
            "sso": None if self.sso is None else {"issuer": self.sso[0], "subject": self.sso[1]},
            "limits": dict(zip(OWNER_LIMITS, self.limits, strict=True)), "created_at": self.created_at,
            "updated_at": self.updated_at,
        }  # fmt: skip


@dataclass(frozen=True, slots=True)
class Team:
    id: str
    name: str
    group: str
    created_at: float
    members: tuple[tuple[str, str], ...] = ()  # (user id, role)
    limits: tuple[int | None, ...] = (None, None, None, None)  # OWNER_LIMITS, over all the team's keys

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "group": self.group,
            "limits": dict(zip(OWNER_LIMITS, self.limits, strict=True)),
            "created_at": self.created_at,
            "members": [{"user_id": u, "role": r} for u, r in self.members],
        }


@dataclass(frozen=True, slots=True)
class Group:
    name: str
    ratio: float
    description: str
    models: tuple[str, ...]  # empty: every model

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "ratio": self.ratio,
            "description": self.description,
            "models": list(self.models),
        }


@dataclass(frozen=True, slots=True)
class TenancySnapshot:
    """What a gateway holds in memory: enough to price, admit and charge without the database."""

    users: dict[str, tuple[str, bool]]  # user id -> (group, disabled)
    teams: dict[str, str]  # team id -> group
    groups: dict[str, tuple[float, frozenset[str]]]  # name -> (ratio, visible models; empty = all)
    balances: dict[str, tuple[int, int]]  # "user:<id>" -> (amount, spent), micro-units
    limits: dict[str, tuple[int | None, ...]] = field(default_factory=dict)  # owner -> OWNER_LIMITS, if any
    team_of: dict[str, str] = field(default_factory=dict)  # user id -> their team's id


def _user(row: Any) -> User:
    m = row._mapping
    return User(
        m["id"], m["name"], m["role"], m["group_name"], m["team_id"], bool(m["disabled"]),
        m["password_hash"] is not None, m["created_at"], m["updated_at"], _limits_of(m),
        (m["sso_issuer"], m["sso_subject"]) if m["sso_subject"] is not None else None,
    )  # fmt: skip


def _sso(value: Any) -> tuple[str | None, str | None]:
    """The (issuer, subject) columns of an SSO link given as a pair (None: no link)."""
    if value is None:
        return None, None
    if isinstance(value, dict) and set(value) == {"issuer", "subject"}:
        value = (value["issuer"], value["subject"])
    if not (isinstance(value, tuple | list) and len(value) == 2):
        raise TenancyError('sso must be {"issuer": ..., "subject": ...} or null')
    return _text(value[0], "sso issuer", 300), _text(value[1], "sso subject", 255)


def _limits_of(m: Any) -> tuple[int | None, ...]:
    return tuple(m[name] for name in OWNER_LIMITS)


def limit_values(fields: dict[str, Any]) -> dict[str, int | None]:
    """Validated rpm / rpd / tpm / concurrency from `fields` (None or 0 removes a limit)."""
    out: dict[str, int | None] = {}
    for name in OWNER_LIMITS:
        if name in fields:
            value = fields.pop(name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
                raise TenancyError(f"{name} must be a whole number (0 or null: no limit)")
            out[name] = value or None
    return out


def _text(value: Any, what: str, max_length: int = 200) -> str:
    if not isinstance(value, str) or not value.strip():
        raise TenancyError(f"{what} must be non-empty text")
    value = value.strip()
    if len(value) > max_length:
        raise TenancyError(f"{what} is longer than {max_length} characters")
    return value


def _role(value: Any) -> str:
    if value not in ROLES:
        raise TenancyError(f"role must be one of {', '.join(ROLES)}")
    return str(value)


async def _bump(conn: AsyncConnection) -> None:
    await conn.execute(update(revision).where(revision.c.id == 1).values(value=revision.c.value + 1))


class TenancyRepository:
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

    # -- portal sessions ------------------------------------------------------------------------------

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


@functools.cache
def _dummy_hash() -> str:
    """A hash checked when the name is unknown, so a login costs the same whether or not it exists."""
    return hash_password(secrets.token_urlsafe(16))
