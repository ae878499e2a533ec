"""Catalog entries as JSON: reading bodies that mirror the YAML fields, and showing entries masked.

Pure functions over plain data. A body is validated with the same pydantic models as the YAML file
(`UpstreamConfig`, `ChannelConfig`, `PriceConfig`), and every problem names its field path the way a
script needs it (`channels[1].weight`), so the admin API can answer in OpenAI's error format with
`param` set. Secrets are split from the rest on the way in and masked on the way out.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ValidationError

from sluicegate.config.model import ChannelConfig, PriceConfig, UpstreamConfig, normalise_route
from sluicegate.config.secrets import mask

# Sealed under the master key, shown masked (Bedrock's AWS credentials too).
SECRET_FIELDS = (
    "api_key",
    "api_keys",
    "headers",
    "aws_access_key_id",
    "aws_secret_access_key",
    "aws_session_token",
)
_AWS_SECRETS = SECRET_FIELDS[3:]
NAME_LIMIT = 200


class CatalogError(Exception):
    """A change the catalog refuses; `param` names the field at fault when there is one."""

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param


class Invalid(CatalogError):
    """The body is wrong (400)."""


class Conflict(CatalogError):
    """The change clashes with what exists: a name taken, defined in the file, still in use (409)."""


class Missing(CatalogError):
    """No such entry (404)."""


def field_path(loc: tuple[Any, ...], prefix: str = "") -> str:
    """('channels', 1, 'weight') -> 'channels[1].weight'."""
    out = prefix
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _validate(model: type[BaseModel], data: dict[str, Any], prefix: str = "") -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        path = field_path(tuple(err["loc"]), prefix)
        text = "unknown field" if err["type"] == "extra_forbidden" else err["msg"]
        raise Invalid(f"{path}: {text}." if path else f"{text}.", param=path or None) from None


def check_name(value: Any, field: str = "name") -> str:
    """A catalog name: text, not empty, not too long, without '/' (channel names are 'upstream/model')."""
    if not isinstance(value, str) or not value.strip():
        raise Invalid(f"{field} is required and must be text.", param=field)
    if len(value) > NAME_LIMIT:
        raise Invalid(f"{field} is longer than {NAME_LIMIT} characters.", param=field)
    return value.strip()


def check_upstream_name(value: Any) -> str:
    name = check_name(value)
    if "/" in name:
        raise Invalid(
            "name: an upstream name cannot contain '/' (channels are named upstream/model).", "name"
        )
    return name


def check_enabled(body: dict[str, Any]) -> bool | None:
    value = body.get("enabled")
    if value is not None and not isinstance(value, bool):
        raise Invalid("enabled: must be true or false.", param="enabled")
    return value


# -- upstreams ----------------------------------------------------------------------------------------


def upstream_config(fields: dict[str, Any]) -> UpstreamConfig:
    """Validate upstream fields (no name) as the YAML file would, plus the preset/base_url rules."""
    from sluicegate.providers.presets import PRESETS

    clean = {k: v for k, v in fields.items() if v is not None}
    cfg: UpstreamConfig = _validate(UpstreamConfig, clean)
    if cfg.preset is not None and cfg.preset not in PRESETS:
        raise Invalid(
            f"preset: unknown preset {cfg.preset!r}; expected one of: {', '.join(sorted(PRESETS))}.",
            param="preset",
        )
    preset = PRESETS.get(cfg.preset or "")
    if cfg.base_url is None and (preset is None or preset.base_url is None):
        raise Invalid("base_url: needed (or a preset that has one).", param="base_url")
    return cfg


def split_secrets(cfg: UpstreamConfig) -> tuple[dict[str, Any], dict[str, Any]]:
    """(non-secret fields as set, secret fields as set): only the second is ever sealed."""
    data = cfg.model_dump(mode="json", exclude_defaults=True, exclude=set(SECRET_FIELDS))
    secrets: dict[str, Any] = {}
    if cfg.api_key:
        secrets["api_key"] = cfg.api_key
    if cfg.api_keys:
        secrets["api_keys"] = list(cfg.api_keys)
    if cfg.headers:
        secrets["headers"] = dict(cfg.headers)
    for name in _AWS_SECRETS:
        if getattr(cfg, name, None):
            secrets[name] = getattr(cfg, name)
    return data, secrets


def secrets_hint(secrets: dict[str, Any]) -> dict[str, Any]:
    """The secrets as a person may see them: masked, enough to recognise which key is set."""
    return {
        "api_key": mask(secrets.get("api_key")) or None,
        "api_keys": [mask(k) for k in secrets.get("api_keys") or []],
        "headers": {h: mask(v) for h, v in (secrets.get("headers") or {}).items()},
        **{name: mask(secrets.get(name)) or None for name in _AWS_SECRETS},
    }


def upstream_json(
    name: str,
    data: dict[str, Any],
    hint: dict[str, Any],
    *,
    source: str,
    enabled: bool = True,
    used_by: list[str] | None = None,
    created_at: str | None = None,
    updated_at: str | None = None,
) -> dict[str, Any]:
    """An upstream as the API and `--json` show it: the YAML fields, secrets masked, never returned."""
    from sluicegate.providers.presets import PRESETS

    preset = PRESETS.get(data.get("preset") or "")
    return {
        "name": name,
        "source": source,
        "enabled": enabled,
        "preset": data.get("preset"),
        "kind": preset.kind if preset else "openai",
        "base_url": data.get("base_url") or (preset.base_url if preset else None),
        "api_key": hint.get("api_key"),
        "api_keys": list(hint.get("api_keys") or []),
        "auth": data.get("auth"),
        "headers": dict(hint.get("headers") or {}),
        "api_version": data.get("api_version"),
        "timeouts": data.get("timeouts") or {},
        "rpm": data.get("rpm"),
        "tpm": data.get("tpm"),
        **{name: data.get(name) for name in ("project", "region", "credentials_file", "responses")},
        **{name: hint.get(name) for name in _AWS_SECRETS},
        "used_by": used_by or [],
        "created_at": created_at,
        "updated_at": updated_at,
    }


def file_upstream(cfg: UpstreamConfig) -> tuple[dict[str, Any], dict[str, Any]]:
    """A YAML upstream as (data, hint), to be shown like a stored one."""
    data, secrets = split_secrets(cfg)
    return data, secrets_hint(secrets)


# -- model routes -------------------------------------------------------------------------------------


def route_channels(value: Any, known_upstreams: set[str]) -> list[dict[str, Any]]:
    """A route's channels (any YAML form) validated, as plain dicts; upstreams must exist."""
    if value is None:
        raise Invalid("channels: required (a list of {upstream, model, weight, priority}).", "channels")
    items = normalise_route(value)
    if not items:
        raise Invalid("channels: give at least one channel.", param="channels")
    out: list[dict[str, Any]] = []
    seen: set[tuple[str, str | None]] = set()
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise Invalid(f"channels[{i}]: must be an object or 'upstream/model' text.", f"channels[{i}]")
        ch: ChannelConfig = _validate(ChannelConfig, item, prefix=f"channels[{i}]")
        if ch.upstream not in known_upstreams:
            known = ", ".join(sorted(known_upstreams)) or "none"
            raise Invalid(
                f"channels[{i}].upstream: unknown upstream {ch.upstream!r} (upstreams: {known}).",
                param=f"channels[{i}].upstream",
            )
        ident = (ch.upstream, ch.model)
        if ident in seen:
            raise Invalid(f"channels[{i}]: the same channel is listed twice.", param=f"channels[{i}]")
        seen.add(ident)
        out.append(ch.model_dump(mode="json", exclude_none=True))
    return out


def model_json(
    name: str,
    channels: list[dict[str, Any]],
    *,
    source: str,
    enabled: bool = True,
    created_at: str | None = None,
    updated_at: str | None = None,
) -> dict[str, Any]:
    """A model route as the API shows it: each channel with the name GET /admin/channels uses."""
    shown = []
    for c in channels:
        model = c.get("model") or name
        shown.append(
            {
                "name": f"{c['upstream']}/{model}",
                "upstream": c["upstream"],
                "model": model,
                "weight": c.get("weight", 1),
                "priority": c.get("priority", 0),
                "rpm": c.get("rpm"),
                "tpm": c.get("tpm"),
            }
        )
    return {
        "name": name,
        "source": source,
        "enabled": enabled,
        "channels": shown,
        "created_at": created_at,
        "updated_at": updated_at,
    }


# -- prices -------------------------------------------------------------------------------------------


def price_fields(body: dict[str, Any]) -> dict[str, Any]:
    fields = {k: v for k, v in body.items() if k not in ("model", "name")}
    price: PriceConfig = _validate(PriceConfig, fields)
    return price.model_dump(mode="json")


def price_json(
    model: str, data: dict[str, Any], *, source: str, updated_at: str | None = None
) -> dict[str, Any]:
    return {
        "model": model,
        "source": source,
        "input": data.get("input"),
        "output": data.get("output"),
        "cached_input": data.get("cached_input"),
        "currency": data.get("currency", "USD"),
        "updated_at": updated_at,
    }
