"""Who is calling, and what they may call: keys compiled once into fast checks, and the key cache.

The hot path never touches the database: the cache holds every active key by hash, is replaced whole
when the store's revision changes, and a lookup is one SHA-256 and one dict get.
"""

from __future__ import annotations

import fnmatch
import hashlib
import ipaddress
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC

from sluicegate.config.model import KeyConfig
from sluicegate.protocol.errors import Forbidden, Unauthorized
from sluicegate.store.records import ENDPOINT_NAMES, KeyLimits, KeyRecord

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class KeyEntry:
    """A KeyRecord with its rules compiled: exact model names in a set, globs in one regex."""

    __slots__ = ("_endpoints", "_models_exact", "_models_re", "_networks", "all_models", "record")

    def __init__(self, record: KeyRecord) -> None:
        self.record = record
        exact = {m for m in record.models if not any(c in m for c in "*?[")}
        globs = [m for m in record.models if m not in exact]
        self._models_exact = frozenset(exact)
        self._models_re = re.compile("|".join(fnmatch.translate(g) for g in globs)) if globs else None
        self.all_models = not record.models
        prefixes: list[str] = []
        for e in record.endpoints:
            prefixes.extend(ENDPOINT_NAMES.get(e, (e,)))
        self._endpoints = tuple(prefixes)
        self._networks: tuple[IPNetwork, ...] = tuple(
            ipaddress.ip_network(n, strict=False) for n in record.networks
        )

    def allows_model(self, model: str) -> bool:
        if self.all_models or model in self._models_exact:
            return True
        return self._models_re is not None and self._models_re.match(model) is not None

    def allows_endpoint(self, path: str) -> bool:
        if not self._endpoints:
            return True
        return any(path == p or path.startswith(p + "/") for p in self._endpoints)

    def allows_network(self, client_ip: str | None) -> bool:
        if not self._networks:
            return True
        if client_ip is None:
            return False
        try:
            addr = ipaddress.ip_address(client_ip)
        except ValueError:
            return False
        return any(addr in net for net in self._networks)

    def check_active(self, now: float) -> None:
        r = self.record
        if r.revoked_at is not None:
            raise Unauthorized("This API key has been revoked.", code="key_revoked")
        if not r.enabled:
            raise Unauthorized("This API key is disabled.", code="key_disabled")
        if r.expires_at is not None and now >= r.expires_at:
            raise Unauthorized("This API key has expired.", code="key_expired")

    def check_request(
        self, model: str | None, path: str, client_ip: str | None, *, model_needed: bool = False
    ) -> None:
        """403s name what was refused and nothing about what else exists.

        `model_needed`: the request carries a body, which an upstream may read a model from. A key held
        to some models is then refused when the gateway could not read one (an unreadable body must
        not be a way around the allow-list).
        """
        if not self.allows_endpoint(path):
            raise Forbidden(f"This API key may not call {path}.", code="endpoint_not_allowed")
        if model is None and model_needed and not self.all_models:
            raise Forbidden(
                "This API key may only use certain models, and the gateway could not read a model from "
                "this request: send a JSON body (or form field) with a 'model'.",
                param="model",
                code="model_not_allowed",
            )
        if model is not None and not self.allows_model(model):
            raise Forbidden(
                f"This API key may not use the model '{model}'.", param="model", code="model_not_allowed"
            )
        if not self.allows_network(client_ip):
            raise Forbidden(
                "This API key may not be used from your network address.", code="network_not_allowed"
            )


def record_from_config(cfg: KeyConfig) -> KeyRecord:
    expires = _parse_expiry(cfg.expires) if cfg.expires else None
    limits = KeyLimits(
        rpm=cfg.rpm,
        rpd=cfg.rpd,
        tpm=cfg.tpm,
        concurrency=cfg.concurrency,
        budget_tokens_day=cfg.budget_tokens_day,
        budget_tokens_month=cfg.budget_tokens_month,
        budget_tokens_total=cfg.budget_tokens_total,
        budget_usd_day=cfg.budget_usd_day,
        budget_usd_month=cfg.budget_usd_month,
        budget_usd_total=cfg.budget_usd_total,
    )
    secret_hash = hash_secret(cfg.key)
    return KeyRecord(
        id=f"cfg-{cfg.name}",
        name=cfg.name,
        key_hash=secret_hash,
        prefix=cfg.key[:6],
        owner=cfg.owner,
        enabled=cfg.enabled,
        expires_at=expires,
        models=tuple(cfg.models),
        endpoints=tuple(cfg.endpoints),
        networks=tuple(cfg.networks),
        limits=limits,
        store_bodies=cfg.store_bodies,
        cache=cfg.cache,
        source="config",
    )


def _parse_expiry(text: str) -> float:
    from datetime import datetime

    dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.timestamp()


@dataclass(slots=True)
class KeyCache:
    """Active keys by hash. Static keys come from the file; managed keys are swapped in from the store."""

    _static: dict[str, KeyEntry]
    _managed: dict[str, KeyEntry]
    revision: int = -1

    @classmethod
    def from_config(cls, keys: Iterable[KeyConfig]) -> KeyCache:
        static = {e.record.key_hash: e for e in (KeyEntry(record_from_config(k)) for k in keys)}
        return cls(static, {})

    @property
    def empty(self) -> bool:
        """No key was ever configured: the gateway runs open (loopback only).

        Once the store has had a key (its revision moved), revoking the last one must not open the
        gateway to everyone, the revoked key included.
        """
        return not self._static and not self._managed and self.revision <= 0

    def replace_managed(self, records: Iterable[KeyRecord], revision: int) -> None:
        """Swap in the store's keys; entries whose record did not change are kept (no recompiling)."""
        old = {(e.record.id, e.record.updated_at): e for e in self._managed.values()}
        self._managed = {r.key_hash: old.get((r.id, r.updated_at)) or KeyEntry(r) for r in records}
        self.revision = revision

    def lookup(self, secret: str) -> KeyEntry | None:
        digest = hash_secret(secret)
        entry = self._static.get(digest)
        return entry if entry is not None else self._managed.get(digest)

    def authenticate(self, secret: str | None, now: float | None = None) -> KeyEntry:
        if not secret:
            raise Unauthorized(
                "You didn't provide an API key. Send it as 'Authorization: Bearer YOUR_KEY'.",
                code="missing_api_key",
            )
        entry = self.lookup(secret)
        if entry is None:
            raise Unauthorized("Incorrect API key provided.", code="invalid_api_key")
        entry.check_active(time.time() if now is None else now)
        return entry

    def entries(self) -> list[KeyEntry]:
        return [*self._static.values(), *self._managed.values()]
