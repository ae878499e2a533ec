"""Changing the catalog: one method per operation, each checked, audited, and applied in one transaction.

The admin API and the CLI call the same methods, so a route added with `curl` and one added with
`sluicegate models add` are the same row with the same audit entry. `actor` names who is acting
(`admin:<fingerprint of the admin key>` or `cli:<user>`), never a secret. Before and after states in
the audit log are the JSON views, whose secrets are already masked.
"""

from __future__ import annotations

from typing import Any

from sluicegate.catalog.audit import audit_json, iso
from sluicegate.catalog.fields import (
    SECRET_FIELDS,
    Conflict,
    Invalid,
    Missing,
    check_enabled,
    check_name,
    check_upstream_name,
    file_upstream,
    model_json,
    price_fields,
    price_json,
    route_channels,
    secrets_hint,
    split_secrets,
    upstream_config,
    upstream_json,
)
from sluicegate.config.model import Settings
from sluicegate.store.catalog import Audit, CatalogRows
from sluicegate.store.crypto import SecretBox, SecretsUnreadable

_FILE = "file"
_STORE = "store"


def _read_only(kind: str, name: str) -> Conflict:
    return Conflict(
        f"{kind} {name!r} is defined in the configuration file, which wins over the store: "
        "change it there (and restart), or use another name.",
        param="name",
    )


class CatalogService:
    """The catalog operations on one store, for one actor; `settings` are the file's own."""

    def __init__(self, store: Any, settings: Settings, box: SecretBox, actor: str) -> None:
        self._repo = store.catalog
        self._settings = settings
        self._box = box
        self._actor = actor

    async def rows(self) -> CatalogRows:
        rows: CatalogRows = await self._repo.load()
        return rows

    def _audit(self, action: str, kind: str, target: str, before: Any, after: Any) -> Audit:
        return Audit(self._actor, action, kind, target, before, after)

    # -- upstreams -------------------------------------------------------------------------------------

    def _used_by(self, rows: CatalogRows) -> dict[str, list[str]]:
        used: dict[str, list[str]] = {}
        for public, channels in self._settings.models.items():
            for c in channels:
                used.setdefault(c.upstream, []).append(public)
        for public, model in rows.models.items():
            if public in self._settings.models:
                continue
            for stored in model.channels:
                used.setdefault(stored["upstream"], []).append(public)
        return {k: sorted(set(v)) for k, v in used.items()}

    def _upstream_view(self, name: str, rows: CatalogRows, used: dict[str, list[str]]) -> dict[str, Any]:
        if name in self._settings.upstreams:
            data, hint = file_upstream(self._settings.upstreams[name])
            return upstream_json(name, data, hint, source=_FILE, used_by=used.get(name))
        row = rows.upstreams[name]
        return upstream_json(
            name,
            row.data,
            row.hint,
            source=_STORE,
            enabled=row.enabled,
            used_by=used.get(name),
            created_at=iso(row.created_at),
            updated_at=iso(row.updated_at),
        )

    async def list_upstreams(self) -> list[dict[str, Any]]:
        rows = await self.rows()
        used = self._used_by(rows)
        names = [*self._settings.upstreams, *(n for n in rows.upstreams if n not in self._settings.upstreams)]
        return [self._upstream_view(n, rows, used) for n in names]

    async def get_upstream(self, name: str) -> dict[str, Any]:
        rows = await self.rows()
        if name not in self._settings.upstreams and name not in rows.upstreams:
            raise Missing(f"No upstream named {name!r}.", param="name")
        return self._upstream_view(name, rows, self._used_by(rows))

    def _seal(self, secrets: dict[str, Any]) -> tuple[str | None, dict[str, Any]]:
        if not secrets:
            return None, secrets_hint({})
        return self._box.seal(secrets), secrets_hint(secrets)  # MasterKeyMissing: nothing stored

    async def create_upstream(self, body: dict[str, Any]) -> dict[str, Any]:
        name = check_upstream_name(body.get("name"))
        enabled = check_enabled(body)
        if name in self._settings.upstreams:
            raise _read_only("upstream", name)
        if name == "mock":
            raise Conflict("'mock' is the built-in mock upstream; choose another name.", param="name")
        cfg = upstream_config({k: v for k, v in body.items() if k not in ("name", "enabled")})
        data, secrets = split_secrets(cfg)
        sealed, hint = self._seal(secrets)
        rows = await self.rows()
        if name in rows.upstreams:
            raise Conflict(f"An upstream named {name!r} already exists; PATCH it instead.", param="name")
        after = upstream_json(name, data, hint, source=_STORE, enabled=enabled is not False)
        await self._repo.put_upstream(
            name,
            data,
            sealed,
            hint,
            enabled is not False,
            self._audit("create", "upstream", name, None, after),
            create=True,
        )
        return await self.get_upstream(name)

    async def update_upstream(self, name: str, body: dict[str, Any]) -> dict[str, Any]:
        if name in self._settings.upstreams:
            raise _read_only("upstream", name)
        rows = await self.rows()
        row = rows.upstreams.get(name)
        if row is None:
            raise Missing(f"No upstream named {name!r} in the store.", param="name")
        if "name" in body and body["name"] != name:
            raise Invalid("name: an upstream cannot be renamed; create a new one.", param="name")
        enabled = check_enabled(body)
        patch = {k: v for k, v in body.items() if k not in ("name", "enabled")}
        if not patch and enabled is None:
            raise Invalid("Nothing to change: give at least one field.")
        data = {**row.data, **{k: v for k, v in patch.items() if k not in SECRET_FIELDS}}
        data = {k: v for k, v in data.items() if v is not None}
        touches_secrets = any(k in patch for k in SECRET_FIELDS)
        sealed, hint = row.secrets, row.hint
        if touches_secrets:
            secrets = {
                **self._old_secrets(row.secrets, patch),
                **{k: patch[k] for k in SECRET_FIELDS if k in patch},
            }
            cfg = upstream_config({**data, **secrets})
            data, secrets = split_secrets(cfg)
            sealed, hint = self._seal(secrets)
        else:
            cfg = upstream_config(data)
            data, _ = split_secrets(cfg)
        used = self._used_by(rows)
        before = self._upstream_view(name, rows, used)
        now_enabled = row.enabled if enabled is None else enabled
        after = upstream_json(name, data, hint, source=_STORE, enabled=now_enabled, used_by=used.get(name))
        after["created_at"] = before["created_at"]
        await self._repo.put_upstream(
            name,
            data,
            sealed,
            hint,
            now_enabled,
            self._audit("update", "upstream", name, before, after),
            create=False,
        )
        return await self.get_upstream(name)

    def _old_secrets(self, sealed: str | None, patch: dict[str, Any]) -> dict[str, Any]:
        """The stored secrets a PATCH merges into. Sealed under another master key (lost or rotated),
        they cannot be read: a PATCH that gives a new `api_key` or `api_keys` then replaces them all
        (what it leaves out is gone), which is how keys are re-entered under a new master key."""
        if not sealed:
            return {}
        try:
            return self._box.open(sealed)
        except SecretsUnreadable:
            if "api_key" in patch or "api_keys" in patch:
                return {}
            raise

    async def delete_upstream(self, name: str) -> dict[str, Any]:
        if name in self._settings.upstreams:
            raise _read_only("upstream", name)
        rows = await self.rows()
        if name not in rows.upstreams:
            raise Missing(f"No upstream named {name!r} in the store.", param="name")
        used = self._used_by(rows)
        if used.get(name):
            raise Conflict(
                f"Upstream {name!r} is used by model(s) {', '.join(used[name])}: "
                "remove it from their channels first.",
                param="name",
            )
        before = self._upstream_view(name, rows, used)
        await self._repo.delete_upstream(name, self._audit("delete", "upstream", name, before, None))
        return {"name": name, "object": "upstream", "deleted": True}

    # -- model routes ----------------------------------------------------------------------------------

    def _known_upstreams(self, rows: CatalogRows) -> set[str]:
        return {*self._settings.upstreams, *rows.upstreams, "mock"}

    def _model_view(self, name: str, rows: CatalogRows) -> dict[str, Any]:
        if name in self._settings.models:
            channels = [c.model_dump(mode="json", exclude_none=True) for c in self._settings.models[name]]
            return model_json(name, channels, source=_FILE)
        row = rows.models[name]
        return model_json(
            name,
            row.channels,
            source=_STORE,
            enabled=row.enabled,
            created_at=iso(row.created_at),
            updated_at=iso(row.updated_at),
        )

    async def list_models(self) -> list[dict[str, Any]]:
        rows = await self.rows()
        names = [*self._settings.models, *(n for n in rows.models if n not in self._settings.models)]
        return [self._model_view(n, rows) for n in names]

    async def get_model(self, name: str) -> dict[str, Any]:
        rows = await self.rows()
        if name not in self._settings.models and name not in rows.models:
            raise Missing(f"No model route named {name!r}.", param="name")
        return self._model_view(name, rows)

    async def create_model(self, body: dict[str, Any]) -> dict[str, Any]:
        name = check_name(body.get("name"))
        enabled = check_enabled(body)
        unknown = set(body) - {"name", "channels", "enabled"}
        if unknown:
            field = sorted(unknown)[0]
            raise Invalid(f"{field}: unknown field (a model route has name, channels, enabled).", field)
        if name in self._settings.models:
            raise _read_only("model", name)
        rows = await self.rows()
        channels = route_channels(body.get("channels"), self._known_upstreams(rows))
        if name in rows.models:
            raise Conflict(f"A model route named {name!r} already exists; PATCH it instead.", param="name")
        after = model_json(name, channels, source=_STORE, enabled=enabled is not False)
        await self._repo.put_model(
            name,
            channels,
            enabled is not False,
            self._audit("create", "model", name, None, after),
            create=True,
        )
        return await self.get_model(name)

    async def update_model(self, name: str, body: dict[str, Any]) -> dict[str, Any]:
        if name in self._settings.models:
            raise _read_only("model", name)
        rows = await self.rows()
        row = rows.models.get(name)
        if row is None:
            raise Missing(f"No model route named {name!r} in the store.", param="name")
        if "name" in body and body["name"] != name:
            raise Invalid("name: a model route cannot be renamed; create a new one.", param="name")
        unknown = set(body) - {"name", "channels", "enabled"}
        if unknown:
            field = sorted(unknown)[0]
            raise Invalid(f"{field}: unknown field (a model route has name, channels, enabled).", field)
        enabled = check_enabled(body)
        if "channels" not in body and enabled is None:
            raise Invalid("Nothing to change: give channels or enabled.")
        channels = (
            route_channels(body["channels"], self._known_upstreams(rows))
            if "channels" in body
            else row.channels
        )
        before = self._model_view(name, rows)
        now_enabled = row.enabled if enabled is None else enabled
        after = model_json(name, channels, source=_STORE, enabled=now_enabled)
        after["created_at"] = before["created_at"]
        await self._repo.put_model(
            name, channels, now_enabled, self._audit("update", "model", name, before, after), create=False
        )
        return await self.get_model(name)

    async def delete_model(self, name: str) -> dict[str, Any]:
        if name in self._settings.models:
            raise _read_only("model", name)
        rows = await self.rows()
        if name not in rows.models:
            raise Missing(f"No model route named {name!r} in the store.", param="name")
        before = self._model_view(name, rows)
        await self._repo.delete_model(name, self._audit("delete", "model", name, before, None))
        return {"name": name, "object": "model", "deleted": True}

    # -- channel switches ------------------------------------------------------------------------------

    async def set_channel(self, name: str, enabled: bool, known: set[str]) -> dict[str, Any]:
        """Enable or disable a channel (by its GET /admin/channels name), file-defined ones included."""
        rows = await self.rows()
        if name not in known and name not in rows.channels:
            raise Missing(f"No channel named {name!r} (see GET /admin/channels).", param="name")
        was = rows.channels.get(name, True)
        action = "enable" if enabled else "disable"
        await self._repo.set_channel(
            name,
            enabled,
            self._audit(
                action, "channel", name, {"name": name, "enabled": was}, {"name": name, "enabled": enabled}
            ),
        )
        return {"name": name, "object": "channel", "enabled": enabled}

    async def known_channels(self) -> set[str]:
        """Every channel name the file and the store route (enabled or not), as GET /admin/channels names them."""
        from sluicegate.catalog.effective import merge
        from sluicegate.routing.routes import build_routes

        rows = await self.rows()
        settings = merge(self._settings, rows, self._box).settings
        return {c.name for channels in build_routes(settings).values() for c in channels} | set(rows.channels)

    async def audit(
        self,
        *,
        since: float | None = None,
        until: float | None = None,
        target: str | None = None,
        kind: str | None = None,
        limit: int = 1000,
    ) -> list[dict[str, Any]]:
        """Audit entries as JSON, newest first."""
        entries = await self._repo.audit(since=since, until=until, target=target, kind=kind, limit=limit)
        return [audit_json(e) for e in entries]

    # -- prices ----------------------------------------------------------------------------------------

    async def list_prices(self) -> list[dict[str, Any]]:
        rows = await self.rows()
        out = [
            price_json(m, p.model_dump(mode="json"), source=_FILE) for m, p in self._settings.prices.items()
        ]
        out += [
            price_json(m, p.data, source=_STORE, updated_at=iso(p.updated_at))
            for m, p in rows.prices.items()
            if m not in self._settings.prices
        ]
        return out

    async def set_price(self, body: dict[str, Any]) -> tuple[bool, dict[str, Any]]:
        """Create or replace a price override; True when it is new."""
        model = check_name(body.get("model", body.get("name")), "model")
        if model in self._settings.prices:
            raise _read_only("price of", model)
        data = price_fields(body)
        rows = await self.rows()
        old = rows.prices.get(model)
        before = price_json(model, old.data, source=_STORE) if old else None
        after = price_json(model, data, source=_STORE)
        action = "update" if old else "create"
        await self._repo.put_price(
            model, data, self._audit(action, "price", model, before, after), create=old is None
        )
        return old is None, after

    async def delete_price(self, model: str) -> dict[str, Any]:
        if model in self._settings.prices:
            raise _read_only("price of", model)
        rows = await self.rows()
        old = rows.prices.get(model)
        if old is None:
            raise Missing(f"No price override for {model!r} in the store.", param="model")
        before = price_json(model, old.data, source=_STORE)
        await self._repo.delete_price(model, self._audit("delete", "price", model, before, None))
        return {"model": model, "object": "price", "deleted": True}
