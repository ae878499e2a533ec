"""Checking and normalising the fields of a managed key before they reach the database.

Both the CLI and the admin API write keys through `KeyRepository`, which runs these checks, so a
bad CIDR or an unknown endpoint name is refused in one place with a message a person can act on,
instead of surfacing later as a key that silently matches nothing.
"""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Iterable, Mapping
from dataclasses import fields as dataclass_fields
from typing import Any

from sluicegate.store.records import ENDPOINT_NAMES, KeyLimits

LIMIT_FIELDS: tuple[str, ...] = tuple(f.name for f in dataclass_fields(KeyLimits))
_INT_LIMITS = frozenset(name for name in LIMIT_FIELDS if not name.startswith("budget_usd"))
_TEXT_FIELDS = {"name": 200, "owner": 200}
_OWNER_FIELDS = ("user_id", "team_id")  # tenancy: the user or team a key belongs to
_LIST_FIELDS = ("models", "endpoints", "networks")
_FLAG_FIELDS = ("enabled", "store_bodies")
EDITABLE_FIELDS: frozenset[str] = frozenset(
    (
        *_TEXT_FIELDS,
        *_LIST_FIELDS,
        *_FLAG_FIELDS,
        *LIMIT_FIELDS,
        *_OWNER_FIELDS,
        "expires_at",
        "limits",
        "cache",
    )
)


class InvalidKeyField(ValueError):
    """A key field the caller supplied cannot be stored; the message says which and why."""


def normalise_key_fields(fields: Mapping[str, Any]) -> dict[str, Any]:
    """Validated column values for the given key fields (a partial set is fine, for updates).

    `limits` may be a whole KeyLimits (every limit replaced) and individual limits may be given by
    name (`rpm=60`, `budget_usd_month=None`); None clears a limit. Lists become tuples, CIDRs are
    written in canonical form, endpoint short names and `/v1/...` prefixes are checked.
    """
    unknown = set(fields) - EDITABLE_FIELDS
    if unknown:
        raise InvalidKeyField(f"unknown key field(s): {', '.join(sorted(unknown))}")
    out: dict[str, Any] = {}
    limits = fields.get("limits")
    if limits is not None:
        if not isinstance(limits, KeyLimits):
            raise InvalidKeyField("limits must be a KeyLimits")
        out.update({name: _limit(name, getattr(limits, name)) for name in LIMIT_FIELDS})
    for name, value in fields.items():
        if name == "limits":
            continue
        if name in _TEXT_FIELDS:
            out[name] = _text(name, value, _TEXT_FIELDS[name])
        elif name == "models":
            out[name] = _strings("models", value)
        elif name == "endpoints":
            out[name] = _endpoints(value)
        elif name == "networks":
            out[name] = _networks(value)
        elif name in _FLAG_FIELDS:
            if not isinstance(value, bool):
                raise InvalidKeyField(f"{name} must be true or false")
            out[name] = value
        elif name == "expires_at":
            out[name] = _expires_at(value)
        elif name in _OWNER_FIELDS:
            if value is not None and (not isinstance(value, str) or not value.strip() or len(value) > 32):
                raise InvalidKeyField(f"{name} must be a user or team id, or null")
            out[name] = value.strip() if value is not None else None
        elif name == "cache":
            if value not in (None, "on", "off"):
                raise InvalidKeyField('cache must be "on", "off" or null (the config decides)')
            out[name] = value
        else:
            out[name] = _limit(name, value)
    return out


def _text(name: str, value: Any, max_length: int) -> str:
    if not isinstance(value, str):
        raise InvalidKeyField(f"{name} must be text")
    value = value.strip()
    if name == "name" and not value:
        raise InvalidKeyField("name must not be empty")
    if len(value) > max_length:
        raise InvalidKeyField(f"{name} is longer than {max_length} characters")
    return value


def _strings(name: str, value: Any) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise InvalidKeyField(f"{name} must be a list of text values")
    items = []
    for item in value:
        if not isinstance(item, str) or not item.strip():
            raise InvalidKeyField(f"{name} must contain only non-empty text values")
        if item.strip() not in items:
            items.append(item.strip())
    return tuple(items)


def _endpoints(value: Any) -> tuple[str, ...]:
    endpoints = _strings("endpoints", value)
    for endpoint in endpoints:
        if endpoint not in ENDPOINT_NAMES and not endpoint.startswith("/v1/"):
            known = ", ".join(sorted(ENDPOINT_NAMES))
            raise InvalidKeyField(
                f"unknown endpoint {endpoint!r}: use one of {known}, or a path prefix starting with /v1/"
            )
    return endpoints


def _networks(value: Any) -> tuple[str, ...]:
    networks = []
    for text in _strings("networks", value):
        try:
            networks.append(str(ipaddress.ip_network(text, strict=False)))
        except ValueError:
            raise InvalidKeyField(
                f"invalid network {text!r}: expected an IP address or CIDR such as 10.0.0.0/8"
            ) from None
    return tuple(dict.fromkeys(networks))


def _expires_at(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidKeyField("expires_at must be epoch seconds or None")
    return float(value)


def _limit(name: str, value: Any) -> int | float | None:
    if value is None:
        return None
    if name in _INT_LIMITS:
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidKeyField(f"{name} must be a whole number")
    elif isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidKeyField(f"{name} must be a number")
    if value <= 0:
        raise InvalidKeyField(f"{name} must be greater than zero (leave it unset for no limit)")
    return value if name in _INT_LIMITS else float(value)
