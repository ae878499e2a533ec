"""`/v1/chat/completions`: the canonical wire itself, so every OpenAI-wire upstream gets it byte for byte.

To a native upstream (Anthropic, Gemini...) the chat request is already canonical: the edge
(`ChatOverAdapter`) sends it as it is to the adapter, which translates it into the upstream's API and
its answer, stream and errors back into chat; this edge only writes the chunks as chat SSE again.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sluicegate.inbound.base import CHAT_PATH, SAME_WIRE, OpenAIWire, SameWire, StreamEncoder, Translation
from sluicegate.protocol.sse import DONE, DONE_EVENT, error_event

if TYPE_CHECKING:
    from sluicegate.providers.upstream import Upstream

# As server/events_relay.py says it for same-wire streams that stop before their end.
INCOMPLETE = "upstream_stream_incomplete"
INCOMPLETE_MESSAGE = "The upstream ended the stream before the answer was complete."


class ChatStream:
    """Canonical chunks (from a native adapter's decoder) out as chat SSE, `[DONE]` at the end.

    The usage chunk (no choices) goes out only if the client asked for it, as on the same wire. The
    decoder yields `[DONE]` only for an answer that ended whole; without it the stream ends with an
    `upstream_stream_incomplete` error event (and `incomplete` tells the shell to log it so)."""

    __slots__ = ("_done", "_usage", "incomplete")

    def __init__(self, client_wants_usage: bool) -> None:
        self._usage = client_wants_usage
        self._done = False
        self.incomplete = False

    def feed(self, data: bytes) -> bytes:
        if data == DONE:
            self._done = True
            return b""
        if not self._usage and b'"choices":[]' in data:
            return b""
        return b"data: " + data + b"\n\n"

    def finish(self, error: str | None = None, code: str = "upstream_stream_error") -> bytes:
        if error is None and not self._done:
            self.incomplete = True
            error, code = INCOMPLETE_MESSAGE, INCOMPLETE
        if error is not None:
            return error_event(error, "api_error", code) + DONE_EVENT
        return DONE_EVENT


class ChatOverAdapter:
    """The edge from a chat client to a native upstream: chat is canonical, so nothing to translate here."""

    __slots__ = ()
    upstream_path = CHAT_PATH

    async def prepare(self, ctx: Any, payload: dict[str, Any]) -> dict[str, Any]:
        return payload

    def request(self, ctx: Any, payload: dict[str, Any], model: str) -> dict[str, Any]:
        return payload

    def answer(self, ctx: Any, data: bytes) -> bytes:
        return data

    def stream(self, ctx: Any) -> StreamEncoder:
        return ChatStream(ctx.client_wants_usage)

    def upstream_error(self, status: int, body: bytes, request_id: str | None = None) -> bytes:
        return body

    async def before_end(self, ctx: Any) -> None:
        return None

    def stopped(self, encoder: Any, stop: Any) -> bytes:
        """A budget reached mid-stream: the same in-band error the same-wire relay writes."""
        return error_event(stop.message, stop.type, stop.code) + DONE_EVENT


class OpenAIChat(OpenAIWire):
    name = "openai_chat"
    path = "/v1/chat/completions"
    _edge = ChatOverAdapter()

    def edge_for(self, upstream: Upstream) -> SameWire | Translation:
        return SAME_WIRE if upstream.adapter.wire == "openai" else self._edge
