"""What the tenancy repository hands out and checks: users, teams, groups, the snapshot a gateway loads,
the errors, and the validation of what callers send (docs/tenancy.md)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

ROLES = ("operator", "team_admin", "member", "viewer")
OWNER_LIMITS = ("rpm", "rpd", "tpm", "concurrency")  # held over all of a user's (or team's) keys together


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
