"""Responses stored by an upstream that serves the Responses API itself, kept apart per key.

An upstream with `responses: native` (OpenAI's own API) keeps every response not sent with
`store: false`, on the one provider account all keys share; anyone holding an id could read it
(`GET /v1/responses/{id}`, `/input_items`), delete it, cancel it or continue it
(`previous_response_id`). So, as for files and batches (server/objects.py), the gateway records which key
made each such response in `owned_objects` (kind `response`), and answers another key's id as OpenAI
answers an id that does not exist.

When the owner is recorded: a whole answer is read before it goes out, so its id is recorded first. A
stream's id comes in its first event (`response.created`): the record is started then, without holding
that event back, and awaited before the stream's final event goes out, so a client that sends its next
request the moment it sees `response.completed` finds the owner on any worker (the same promise as for
the responses the gateway keeps itself, server/responses_state.py). One insert per stored response.

Responses stored before this version, or made on the provider's console, have no owner: 404 to every key.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import orjson

from sluicegate.protocol.errors import BadRequest, NotFound
from sluicegate.server.objects import owner_of
from sluicegate.store.owned import DELETED, RESPONSE

if TYPE_CHECKING:
    from sluicegate.routing.channel import Channel
    from sluicegate.server.app import Gateway
    from sluicegate.server.context import RequestContext

log = logging.getLogger("sluicegate.responses")

RESPONSES_PATH = "/v1/responses"
_RESPONSE_KEY = b'"response"'


def not_found(response_id: str) -> NotFound:
    return NotFound(f"Response with id '{response_id}' not found.", param="response_id")


async def is_callers(gw: Gateway, ctx: RequestContext, response_id: str) -> bool:
    """Whether the gateway recorded the caller's key as the maker of this natively stored response."""
    if gw.objects is None:
        return False
    ref = await gw.objects.lookup(response_id)
    return (
        ref is not None
        and ref.kind == RESPONSE
        and ref.state != DELETED
        and ref.owner.key_id == owner_of(ctx).key_id
    )


async def check_previous(gw: Gateway, ctx: RequestContext, channels: Sequence[Channel]) -> None:
    """`previous_response_id` naming a natively stored response must name one of the caller's own.

    Only routes with a native channel are checked (a translated route reads the gateway's own state, per
    key already); an id with no owner is refused when every channel is native, as the upstream could
    otherwise continue a conversation that is not the caller's.
    """
    payload = ctx.payload
    previous = payload.get("previous_response_id") if payload is not None else None
    if not isinstance(previous, str) or not previous or gw.objects is None:
        return
    native = [gw.upstreams[c.upstream].responses_native for c in channels]
    if not any(native):
        return
    ref = await gw.objects.lookup(previous)
    if ref is None:
        if not all(native):
            return  # perhaps a response the gateway keeps itself: the translated path decides
    elif ref.kind == RESPONSE and ref.state != DELETED and ref.owner.key_id == owner_of(ctx).key_id:
        return
    raise BadRequest(
        f"Previous response with id '{previous}' not found.",
        param="previous_response_id",
        code="previous_response_not_found",
    )


class OwnerTap:
    """Reads the id of a native Responses answer and records the caller as the response's owner."""

    __slots__ = ("ctx", "gw", "task")

    def __init__(self, gw: Gateway, ctx: RequestContext) -> None:
        self.gw = gw
        self.ctx = ctx
        self.task: asyncio.Future[None] | None = None

    @staticmethod
    def wanted(gw: Gateway, ctx: RequestContext) -> bool:
        """A Responses call the upstream will store (not `store: false`), made with a key."""
        payload = ctx.payload
        return (
            gw.objects is not None
            and ctx.key is not None
            and ctx.method == "POST"
            and ctx.path == RESPONSES_PATH
            and payload is not None
            and payload.get("store") is not False
        )

    def see(self, data: bytes) -> None:
        """One stream event: the first that carries the Response starts the owner's record."""
        if self.task is not None or _RESPONSE_KEY not in data:
            return
        try:
            doc = orjson.loads(data)
        except orjson.JSONDecodeError:
            return
        inner = doc.get("response") if isinstance(doc, dict) else None
        if isinstance(inner, dict):
            self._start(inner)

    async def whole(self, data: bytes) -> None:
        """A whole answer (the Response itself): its owner is recorded before it goes out."""
        try:
            doc = orjson.loads(data)
        except orjson.JSONDecodeError:
            return
        if isinstance(doc, dict):
            self._start(doc)
            await self.settle()

    async def settle(self) -> None:
        """Wait for the record started earlier (if any); it never raises."""
        if self.task is not None:
            await asyncio.shield(self.task)

    def _start(self, response: dict[str, Any]) -> None:
        response_id = response.get("id")
        if isinstance(response_id, str) and response_id:
            self.task = asyncio.ensure_future(self._record(response_id, response.get("status")))

    async def _record(self, response_id: str, status: Any) -> None:
        objects = self.gw.objects
        if objects is None:
            return
        # Only what access needs: never the answer's content.
        obj = {"id": response_id, "object": "response", "status": status if isinstance(status, str) else ""}
        try:
            await objects.record(RESPONSE, obj, self.ctx.upstream or "", owner_of(self.ctx))
        except Exception as exc:  # the answer is good; only reading it back later suffers
            log.error("could not record the owner of response %s: %s", response_id, type(exc).__name__)


__all__ = ["RESPONSES_PATH", "OwnerTap", "check_previous", "is_callers", "not_found"]
