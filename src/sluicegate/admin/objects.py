"""`GET /admin/objects`: who made which file, upload and batch, and what each batch was charged.

The operator's view of `owned_objects` (docs/files-and-batches.md): every key's objects, newest first,
filtered by key and kind. The provider's object is shown as the gateway last saw it.
"""

from __future__ import annotations

from typing import Any

from sluicegate.admin.keys import AdminRequest
from sluicegate.protocol.errors import BadRequest
from sluicegate.store.owned import BATCH, FILE, UPLOAD

MAX_LIMIT = 1000


async def list_objects(req: AdminRequest) -> tuple[int, Any]:
    kind = req.query.get("kind") or None
    if kind is not None and kind not in (FILE, UPLOAD, BATCH):
        raise BadRequest("kind must be file, upload or batch.", param="kind", code="invalid_kind")
    try:
        limit = int(req.query.get("limit", "100"))
    except ValueError:
        limit = -1
    if not 1 <= limit <= MAX_LIMIT:
        raise BadRequest(
            f"limit must be a whole number from 1 to {MAX_LIMIT}.", param="limit", code="invalid_limit"
        )
    rows = await req.gw.store.objects.listing(key_id=req.query.get("key") or None, kind=kind, limit=limit)
    return 200, {"object": "list", "data": rows}
