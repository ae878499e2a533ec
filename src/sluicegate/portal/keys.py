"""The signed-in user's own API keys: list, create (within the operator's limits, the secret shown once),
revoke (only their own; another's id is not found); with `owner=team`, a team admin does the same for
the team's keys (charged to the team's balance, within the team's group). Changes go through the same repository calls as
the admin API and then `admin.keys.changed`, so they reach every gateway's key cache the same way."""

from __future__ import annotations

import fnmatch
import logging
import time
from dataclasses import dataclass
from typing import Any

from sluicegate.portal.call import Call, Conflict, check_same_origin, holder, writer_only
from sluicegate.portal.mine import key_view, stored_name
from sluicegate.protocol.errors import BadRequest, Forbidden, NotFound

log = logging.getLogger("sluicegate.portal")


@dataclass(frozen=True, slots=True)
class KeyModels:
    """What a portal key may be given: the models the user's group sees (none listed: every model),
    within `portal.key_models` (globs; none: no further limit)."""

    visible: tuple[str, ...]
    patterns: tuple[str, ...]

    @property
    def restricted(self) -> bool:
        return bool(self.visible or self.patterns)

    def allows(self, model: str) -> bool:
        return (not self.visible or model in self.visible) and (
            not self.patterns or any(fnmatch.fnmatchcase(model, p) for p in self.patterns)
        )

    def listed(self, routes: Any) -> list[str]:
        """The models to offer: the group's, or the gateway's public models, that are allowed."""
        return [m for m in (self.visible or sorted(routes)) if self.allows(m)]

    def default(self) -> list[str]:
        """A key given no models gets all it may use: the allowed names, the globs, or every model."""
        if self.visible:
            return [m for m in self.visible if self.allows(m)]
        return list(self.patterns)


async def key_models(call: Call, group_name: str | None = None) -> KeyModels:
    """What keys may be given, for the user's group (or `group_name`, a team's)."""
    group = await call.gw.store.tenancy.get_group(group_name or call.user.group)
    visible = tuple(group.models) if group is not None else ()
    return KeyModels(visible, tuple(call.gw.settings.portal.key_models))


def audit(call: Call) -> Any:
    from sluicegate.cli.keys import key_json
    from sluicegate.store.keys import KeyAudit

    return KeyAudit(f"portal:{call.user.name}", lambda record: key_json(record, time.time()))


async def list_keys(call: Call) -> tuple[int, Any]:
    include_revoked = call.query.get("all", "").lower() in ("1", "true", "yes")
    now = time.time()
    whose = await holder(call)
    records = await call.portal.mine.keys(whose, include_revoked)
    return 200, {"object": "list", "data": [key_view(r, whose.id, now) for r in records]}


async def create_key(call: Call) -> tuple[int, Any]:
    from sluicegate.admin.keys import changed
    from sluicegate.store.keyfields import InvalidKeyField
    from sluicegate.store.keys import KeyNameTaken

    check_same_origin(call)
    writer_only(call)
    whose = await holder(call)
    body = await call.json()
    unknown = set(body) - {"name", "models"}
    if unknown:
        raise BadRequest(f"Unknown key field(s): {', '.join(sorted(unknown))}.", code="invalid_key_field")
    label = body.get("name")
    if not isinstance(label, str) or not label.strip() or len(label.strip()) > 100:
        raise BadRequest("name is required (at most 100 characters).", param="name", code="invalid_key_field")
    wanted = body.get("models") or []
    if not isinstance(wanted, list) or not all(isinstance(m, str) and m.strip() for m in wanted):
        raise BadRequest("models must be a list of model names.", param="models", code="invalid_key_field")
    allowed = await key_models(call, whose.group)
    refused = [m for m in wanted if not allowed.allows(m.strip())]
    if refused:
        raise BadRequest(
            f"Not a model your keys may use: {', '.join(refused)}.", param="models", code="model_not_allowed"
        )
    models = [m.strip() for m in wanted] or allowed.default()
    if allowed.restricted and not models:
        raise Forbidden("No model is open to your keys; ask the operator.", code="no_models_allowed")
    limit = call.gw.settings.portal.max_keys_per_user
    if len(await call.portal.mine.keys(whose)) >= limit:
        raise Forbidden(
            f"You have {limit} key(s), the most allowed; revoke one first.", code="key_limit_reached"
        )
    fields = {
        "name": stored_name(whose.id, label.strip()),
        "owner": whose.name,
        "models": models,
        whose.column: whose.id,
    }
    try:
        record, secret = await call.gw.store.keys.create(fields, audit(call))
    except KeyNameTaken:
        raise Conflict(
            "You already have a key with this name.", param="name", code="key_name_taken"
        ) from None
    except InvalidKeyField as exc:
        raise BadRequest(str(exc), code="invalid_key_field") from None
    if len(await call.portal.mine.keys(whose)) > limit:
        # Two creations raced past the count above (on any workers): this one gives way, so a user never
        # holds more than the limit (both may give way; trying again then succeeds).
        await call.gw.store.keys.revoke(record.id, audit(call))
        raise Forbidden(
            f"You have {limit} key(s), the most allowed; revoke one first.", code="key_limit_reached"
        )
    await changed(call.gw)
    log.info("portal: %s created key %s for %s", call.user.id, record.id, whose.account)
    return 201, {"key": secret, **key_view(record, whose.id)}


async def revoke_key(call: Call, key_id: str) -> tuple[int, Any]:
    from sluicegate.admin.keys import changed

    check_same_origin(call)
    writer_only(call)
    whose = await holder(call)
    if await call.portal.mine.key(whose, key_id) is None:
        raise NotFound(f"No key with id {key_id!r}.", code="key_not_found")
    record = await call.gw.store.keys.revoke(key_id, audit(call))
    await changed(call.gw)
    log.info("portal: %s revoked key %s of %s", call.user.id, key_id, whose.account)
    return 200, key_view(record, whose.id)
