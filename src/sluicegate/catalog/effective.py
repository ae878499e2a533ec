"""The Settings a gateway serves from: the YAML file's, with the store's catalog added.

Which wins: a name defined in the file (upstream, model, price) is the file's, read-only through the
API and CLI; the store holds every other name. So a store row can never change what the file says,
and removing a name from the file hands it back to nobody (a store row of that name, made before the
file took it, shows again). Channel switches (enable/disable) are the one thing the store may set on
the file's channels: they are a person's hand on a running service, like a reset, not configuration.

Pure apart from decrypting secrets: a stored upstream whose keys cannot be opened (no or another
master key) is still built, with no key, so its models answer 503 "not configured" and the reason is
reported in `problems` instead of the gateway refusing to start.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sluicegate.config.model import ChannelConfig, PriceConfig, Settings, UpstreamConfig
from sluicegate.store.catalog import CatalogRows
from sluicegate.store.crypto import MasterKeyMissing, SecretBox, SecretsUnreadable


@dataclass(frozen=True, slots=True)
class Effective:
    settings: Settings
    disabled_channels: frozenset[str] = frozenset()
    problems: tuple[str, ...] = ()
    stored: frozenset[str] = field(default_factory=frozenset)  # upstream names that came from the store


def stored_upstream_config(data: dict[str, Any], secrets: dict[str, Any]) -> UpstreamConfig:
    return UpstreamConfig.model_validate({**data, **secrets})


def merge(settings: Settings, rows: CatalogRows, box: SecretBox) -> Effective:
    """The file's settings plus the store's rows (file names win); see the module docstring."""
    problems: list[str] = []
    upstreams = dict(settings.upstreams)
    stored: set[str] = set()
    for name, row in rows.upstreams.items():
        if name in settings.upstreams or not row.enabled:
            continue
        secrets: dict[str, Any] = {}
        if row.secrets:
            try:
                secrets = box.open(row.secrets)
            except (MasterKeyMissing, SecretsUnreadable) as exc:
                problems.append(f"upstream {name}: {exc}")
        try:
            upstreams[name] = stored_upstream_config(row.data, secrets)
        except ValueError as exc:
            problems.append(f"upstream {name}: {exc}")
            continue
        stored.add(name)
    routable = set(upstreams) | {"mock"}
    models = dict(settings.models)
    for name, model in rows.models.items():
        if name in settings.models or not model.enabled:
            continue
        channels = [ChannelConfig.model_validate(c) for c in model.channels if c.get("upstream") in routable]
        if channels:
            models[name] = channels
    prices = dict(settings.prices)
    for model_name, price in rows.prices.items():
        if model_name not in settings.prices:
            prices[model_name] = PriceConfig.model_validate(price.data)
    effective = settings.model_copy(update={"upstreams": upstreams, "models": models, "prices": prices})
    disabled = frozenset(name for name, enabled in rows.channels.items() if not enabled)
    return Effective(effective, disabled, tuple(problems), frozenset(stored))
