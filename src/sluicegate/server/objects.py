"""Files, uploads and batches kept apart per key on the one provider account the gateway shares.

Every key reaches the same provider account, where any caller could list and read any upload. So the
gateway records who created each object (the `owned_objects` table, store/objects.py) when the provider
answers the create, and then:

- lists (`GET /v1/files`, `GET /v1/batches`) are served from the store: the caller's own objects only,
  paged by the caller's own ids, so no other id is ever shown (not even as a cursor);
- any request naming an id (`GET`/`DELETE /v1/files/{id}`, `/content`, `/v1/batches/{id}/cancel`,
  `/v1/uploads/{id}/parts`...) answers 404 in OpenAI's format unless the id is the caller's: the same
  answer as for an id that does not exist, so ids do not leak existence (a 403 would);
- a batch may only read the caller's own input file, and its output and error files become the
  caller's when the gateway sees them (a `GET` of the batch, or the poller: server/batches.py).

Endpoints whose objects the gateway cannot attribute (vector stores, assistants, fine-tuning...) are
refused with 403 `endpoint_not_isolated`, or relayed shared with `files.shared_endpoints: relay`.

Only these paths come here (one set lookup on the chat path decides it, server/proxy.py); recent owners
are cached per worker, so reading one's own file again costs no query.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

import orjson

from sluicegate.protocol.errors import BadRequest, Forbidden, NotFound, UpstreamUnavailable
from sluicegate.providers.upstream import CLIENT_HEADERS_READ
from sluicegate.store.owned import BATCH, DELETED, FILE, UPLOAD, OwnedRef, Owner

if TYPE_CHECKING:
    from sluicegate.providers.upstream import Upstream
    from sluicegate.server.app import Gateway
    from sluicegate.server.context import RequestContext
    from sluicegate.store.objects import ObjectsRepository

log = logging.getLogger("sluicegate.objects")

OWNED = {"files": FILE, "batches": BATCH, "uploads": UPLOAD}
# Provider endpoints holding objects the gateway does not attribute to a key.
SHARED = frozenset(
    {
        "vector_stores",
        "assistants",
        "threads",
        "fine_tuning",
        "containers",
        "evals",
        "conversations",
        "videos",
        "chatkit",
    }
)
OWNED_PREFIXES = tuple(f"/v1/{name}" for name in OWNED)
OBJECT_PREFIXES = (*OWNED_PREFIXES, *(f"/v1/{name}" for name in sorted(SHARED)))
LABELS = {FILE: "File", BATCH: "Batch", UPLOAD: "Upload"}
LIST_LIMITS = {FILE: (10_000, 10_000), BATCH: (20, 100)}  # (default, most) per page, as OpenAI's
BATCH_OUTPUTS = ("output_file_id", "error_file_id")


def owner_of(ctx: RequestContext) -> Owner:
    """The caller as an owner: its key, and the key's user and team once keys carry them."""
    if ctx.key is None:
        return Owner("")
    record = ctx.key.record
    return Owner(record.id, getattr(record, "user_id", None), getattr(record, "team_id", None))


def not_found(kind: str, object_id: str) -> NotFound:
    return NotFound(f"No such {LABELS.get(kind, 'Object')} object: {object_id}", param="id")


class Ownership:
    """The store's owner records behind a per-worker cache of recent lookups."""

    def __init__(self, repo: ObjectsRepository, cache_size: int) -> None:
        self.repo = repo
        self.cache_size = cache_size
        self._cache: OrderedDict[str, OwnedRef] = OrderedDict()

    def _remember(self, ref: OwnedRef) -> None:
        if not self.cache_size:
            return
        self._cache[ref.id] = ref
        self._cache.move_to_end(ref.id)
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)

    async def lookup(self, object_id: str) -> OwnedRef | None:
        ref = self._cache.get(object_id)
        if ref is not None:
            return ref
        ref = await self.repo.find(object_id)
        if ref is not None:
            self._remember(ref)
        return ref

    async def owned(self, owner: Owner, kind: str, object_id: str) -> OwnedRef:
        """The caller's object, or the 404 an unknown id gets."""
        ref = await self.lookup(object_id)
        if ref is None or ref.kind != kind or ref.owner.key_id != owner.key_id or ref.state == DELETED:
            raise not_found(kind, object_id)
        return ref

    async def record(
        self, kind: str, obj: dict[str, Any], channel: str, owner: Owner, *, purpose: str | None = None
    ) -> None:
        object_id = str(obj["id"])
        state = str(obj.get("status") or "")
        await self.repo.record(kind, object_id, channel, owner, obj, state=state, purpose=purpose)
        self._remember(OwnedRef(object_id, kind, channel, owner, state))

    async def refresh(self, ref: OwnedRef, obj: dict[str, Any]) -> None:
        state = obj.get("status")
        await self.repo.refresh(ref.id, obj, str(state) if state is not None else None)

    async def deleted(self, ref: OwnedRef) -> None:
        await self.repo.mark_deleted(ref.id)
        self._remember(OwnedRef(ref.id, ref.kind, ref.channel, ref.owner, DELETED))

    async def adopt_outputs(self, batch: dict[str, Any], channel: str, owner: Owner) -> None:
        """A batch's output and error files belong to whoever owns the batch."""
        for field in BATCH_OUTPUTS:
            file_id = batch.get(field)
            if not isinstance(file_id, str) or not file_id or file_id in self._cache:
                continue
            stub = {"id": file_id, "object": "file", "purpose": "batch_output", "status": "processed"}
            await self.repo.record(
                FILE, file_id, channel, owner, stub, state="processed", purpose="batch_output"
            )
            found = await self.repo.find(file_id)
            if found is not None:
                self._remember(found)


async def handle_objects(
    gw: Gateway,
    proto: Any,
    ctx: RequestContext,
    body: bytes,
    payload: dict[str, Any] | None,
    headers: Any,
    query: str,
) -> bool:
    """Serve an object endpoint; False when the request should be relayed as any other (shared mode)."""
    parts = ctx.path[4:].split("/")
    kind = OWNED.get(parts[0])
    if kind is None:
        if parts[0] not in SHARED:
            return False
        if gw.settings.files.shared_endpoints == "refuse":
            raise Forbidden(
                f"{ctx.path.split('/', 3)[2]} objects live on the gateway's shared provider account, where "
                "the gateway cannot keep them apart per key; this endpoint is turned off here.",
                code="endpoint_not_isolated",
            )
        return False
    ownership: Ownership | None = gw.objects
    if ownership is None:  # no store (never in a started gateway): nothing could be kept apart
        raise Forbidden("Files and batches need the gateway's store.", code="endpoint_not_isolated")
    owner = owner_of(ctx)
    object_id = parts[1] if len(parts) > 1 else ""
    if len(parts) > 3 or (len(parts) > 1 and not object_id):
        raise NotFound(f"Unknown path {ctx.path}.")
    if (admitting := gw.admit(ctx)) is not None:
        await admitting
    if not object_id:
        if ctx.method == "GET" and kind in LIST_LIMITS:
            await list_owned(gw, proto, ctx, ownership, owner, kind, query)
            return True
        if ctx.method == "POST":
            await create(gw, proto, ctx, ownership, owner, kind, body, payload, headers, query)
            return True
        raise NotFound(f"Unknown path {ctx.method} {ctx.path}.")
    ref = await ownership.owned(owner, kind, object_id)
    action = parts[2] if len(parts) > 2 else ""
    upstream = gw.upstreams.get(ref.channel) or default_upstream(gw, ctx)
    resp = await send(gw, ctx, upstream, body, headers, query)
    try:
        if resp.status >= 300 or not (
            (kind == FILE and not action and ctx.method in ("GET", "DELETE"))
            or (kind == BATCH and action in ("", "cancel"))
            or (kind == UPLOAD and action in ("complete", "cancel"))
        ):
            await relay_answer(gw, proto, ctx, resp, upstream)
            return True
        data = await read_answer(resp)
        obj = parse_object(data)
        if obj is not None:
            if kind == FILE and ctx.method == "DELETE":
                await ownership.deleted(ref)
            else:
                await ownership.refresh(ref, obj)
            if kind == BATCH:
                await ownership.adopt_outputs(obj, ref.channel, ref.owner)
            elif kind == UPLOAD and isinstance(obj.get("file"), dict) and obj["file"].get("id"):
                await ownership.record(
                    FILE, obj["file"], ref.channel, ref.owner, purpose=_purpose(obj["file"])
                )
        await relay_answer(gw, proto, ctx, resp, upstream, data)
    finally:
        await resp.aclose()
    return True


async def create(
    gw: Gateway,
    proto: Any,
    ctx: RequestContext,
    ownership: Ownership,
    owner: Owner,
    kind: str,
    body: bytes,
    payload: dict[str, Any] | None,
    headers: Any,
    query: str,
) -> None:
    if kind == BATCH:  # a batch reads its input file: it must be the caller's
        input_id = payload.get("input_file_id") if payload is not None else None
        if not isinstance(input_id, str) or not input_id:
            raise BadRequest("'input_file_id' is required.", param="input_file_id")
        source = await ownership.owned(owner, FILE, input_id)
        if ctx.key is not None and (not ctx.key.all_models or ctx.key.record.endpoints):
            await check_batch_input(gw, ctx, source)
    upstream = default_upstream(gw, ctx)
    resp = await send(gw, ctx, upstream, body, headers, query)
    try:
        if resp.status >= 300:
            await relay_answer(gw, proto, ctx, resp, upstream)
            return
        data = await read_answer(resp)
        obj = parse_object(data)
        if obj is None or not obj.get("id"):
            log.warning("the upstream's answer to %s names no object id; nothing recorded", ctx.path)
        else:
            await ownership.record(
                kind, obj, upstream.name, owner, purpose=_purpose(obj) if kind == FILE else None
            )
        await relay_answer(gw, proto, ctx, resp, upstream, data)
    finally:
        await resp.aclose()


async def check_batch_input(gw: Gateway, ctx: RequestContext, source: OwnedRef) -> None:
    """A key held to some models or endpoints may not reach others through a batch: every request in
    the input file must be one the key could send itself (403 naming the first that is not)."""
    assert ctx.key is not None
    upstream = gw.upstreams.get(source.channel) or default_upstream(gw, ctx)
    content = await fetch(gw, upstream, f"/v1/files/{source.id}/content")
    if content is None:
        raise NotFound(f"No such File object: {source.id}", param="input_file_id")
    for number, line in enumerate(content.splitlines(), 1):
        if not line.strip():
            continue
        item = parse_object(line) or {}
        body = item.get("body")
        model = body.get("model") if isinstance(body, dict) else None
        url = item.get("url")
        try:
            ctx.key.check_request(
                model if isinstance(model, str) else None,
                url if isinstance(url, str) and url.startswith("/v1/") else "/v1/batches",
                ctx.client_ip,
                model_needed=True,
            )
        except Forbidden as exc:
            exc.message = f"Line {number} of the batch input file: {exc.message}"
            exc.args = (exc.message,)
            raise


async def fetch(gw: Gateway, upstream: Upstream, path: str) -> bytes | None:
    """The gateway's own GET of an object on `upstream` (a batch, a file's content); None unless 2xx."""
    pending = upstream.pending()
    if pending is not None:
        await pending
    req = upstream.request(path, "", None, {}, None, None)
    resp = await gw.client.send("GET", req.url, req.headers, None, upstream.timeouts)
    try:
        if resp.status >= 300:
            log.warning("GET %s on upstream %s answered %d", path, upstream.name, resp.status)
            return None
        data: bytes = await resp.read()
        return data
    finally:
        await resp.aclose()


async def list_owned(
    gw: Gateway, proto: Any, ctx: RequestContext, ownership: Ownership, owner: Owner, kind: str, query: str
) -> None:
    params = {k: v[-1] for k, v in parse_qs(query).items()}
    default, most = LIST_LIMITS[kind]
    try:
        limit = int(params.get("limit", default))
    except ValueError:
        raise BadRequest("'limit' must be an integer.", param="limit") from None
    if not 1 <= limit <= most:
        raise BadRequest(f"'limit' must be between 1 and {most}.", param="limit")
    order = params.get("order", "desc")
    if order not in ("asc", "desc"):
        raise BadRequest("'order' must be 'asc' or 'desc'.", param="order")
    items, more = await ownership.repo.page(
        owner.key_id,
        kind,
        limit=limit,
        after=params.get("after") or None,
        order=order,
        purpose=params.get("purpose"),
    )
    answer = {
        "object": "list",
        "data": items,
        "first_id": items[0]["id"] if items else None,
        "last_id": items[-1]["id"] if items else None,
        "has_more": more,
    }
    ctx.status = 200
    out = [("content-type", "application/json"), ("x-request-id", ctx.request_id)]
    proto.response_bytes(200, [*out, *gw.cors.response_headers(ctx.origin)], orjson.dumps(answer))


def default_upstream(gw: Gateway, ctx: RequestContext) -> Upstream:
    channels = gw.default_channels
    if not channels:
        raise NotFound(f"No upstream is configured for {ctx.path}.")
    return gw.upstreams[channels[0].upstream]


async def send(
    gw: Gateway, ctx: RequestContext, upstream: Upstream, body: bytes, headers: Any, query: str
) -> Any:
    """The request to the account holding the objects (no failover: the objects live on that one)."""
    ctx.upstream = upstream.name
    ctx.channel = f"{upstream.name}/*"
    client_headers = {name: value for name in CLIENT_HEADERS_READ if (value := headers.get(name))}
    if body:
        client_headers.setdefault("content-type", "application/json")
    pending = upstream.pending()
    if pending is not None:
        await pending
    req = upstream.request(ctx.path, query, None, client_headers, None, body or None)
    return await gw.client.send(ctx.method, req.url, req.headers, req.body, upstream.timeouts)


async def read_answer(resp: Any) -> bytes:
    from sluicegate.server.answers import read_whole

    return await read_whole(resp)


async def relay_answer(
    gw: Gateway, proto: Any, ctx: RequestContext, resp: Any, upstream: Upstream, whole: bytes | None = None
) -> None:
    from sluicegate.server.proxy import relay

    if resp.status == 401:  # the provider refused the gateway's own key: not the client's fault
        gw.upstream_failed(upstream.name, "auth_error")
        log.error("upstream %s refused the gateway's credentials on %s", upstream.name, ctx.path)
        raise UpstreamUnavailable(
            "The upstream refused the gateway's credentials; the operator has been alerted. "
            "Your own API key is fine.",
            code="upstream_auth_error",
        )

    await relay(gw, proto, ctx, resp, upstream, whole)


def parse_object(data: bytes) -> dict[str, Any] | None:
    try:
        obj = orjson.loads(data)
    except orjson.JSONDecodeError:
        return None
    return obj if isinstance(obj, dict) else None


def _purpose(obj: dict[str, Any]) -> str | None:
    purpose = obj.get("purpose")
    return purpose[:64] if isinstance(purpose, str) else None
