"""The inbound seam: what every client API (a codec) must say about its own wire.

A codec is chosen once per request, by path. It never does I/O: it turns bytes and dicts into bytes
and dicts, so each is tested without a socket. The shell asks it, per attempt, for the *edge* between
the client's wire and the upstream's: `SAME_WIRE` (relay as is, the fast path) or a `Translation`
(the client's request turned into the canonical chat request, and canonical answers, chunks and errors
turned back into the client's shapes).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

import orjson

from sluicegate.protocol.errors import BadRequest, GatewayError

if TYPE_CHECKING:
    from sluicegate.providers.upstream import Upstream

CHAT_PATH = "/v1/chat/completions"


def parse_answer(data: bytes) -> Any:
    """An upstream's whole answer, parsed for translation; not JSON is the upstream's fault (502)."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        raise GatewayError(
            "The upstream sent an answer that is not JSON.", code="bad_upstream_response"
        ) from None


class StreamEncoder(Protocol):
    """Canonical chunk payloads in, the client's stream bytes out (h11-style, no sockets)."""

    def feed(self, data: bytes) -> bytes:
        """One upstream event's `data:` payload (a chat chunk, or `[DONE]`); the frames to send, maybe b''."""
        ...

    def finish(self, error: str | None = None) -> bytes:
        """The stream's end: the closing frames, or, with `error`, the client wire's in-band error.

        An encoder that finds the upstream stopped before it said it was done (no finish reason, no
        `[DONE]`) writes its wire's error itself and sets `incomplete`, so the shell logs it as one.
        """
        ...


class StreamEnd(Protocol):
    """How a same-wire stream of a wire that ends with an event (not `[DONE]`) is judged and failed."""

    def is_final(self, data: bytes) -> bool:
        """Whether this event's `data:` payload ends the stream complete."""
        ...

    def failure(self, message: str, code: str, events_seen: int) -> bytes:
        """The wire's in-band error frames, after `events_seen` events already went out."""
        ...


class Translation(Protocol):
    """The edge of a request whose client wire differs from the upstream's (canonical chat inside)."""

    upstream_path: str

    async def prepare(self, ctx: Any, payload: dict[str, Any]) -> dict[str, Any]:
        """The client's request made whole before translation (the shell's state, e.g. a previous
        response's conversation, read through what the codec was given at start)."""
        ...

    def request(self, ctx: Any, payload: dict[str, Any], model: str) -> dict[str, Any]:
        """The client's request as a canonical chat request (raises BadRequest when it cannot be)."""
        ...

    def answer(self, ctx: Any, data: bytes) -> bytes:
        """A whole `chat.completion` as the client's answer."""
        ...

    def stream(self, ctx: Any) -> StreamEncoder:
        """A fresh encoder for one streamed answer."""
        ...

    def upstream_error(self, status: int, body: bytes, request_id: str | None = None) -> bytes:
        """An upstream's (OpenAI-shaped) error answer in the client's error shape."""
        ...

    async def before_end(self, ctx: Any) -> None:
        """Called after the answer is complete and before its last bytes go out (state to keep)."""
        ...

    def stopped(self, encoder: Any, stop: Any) -> bytes:
        """The wire's end when the gateway stops the answer (`relay.EndStream`: a budget reached)."""
        ...


class SameWire:
    """The edge when client and upstream speak the same wire: bytes pass as they are."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "SAME_WIRE"


SAME_WIRE = SameWire()


class InboundCodec(Protocol):
    """One client API. Small on purpose: a wire, its edges, its errors, how its streams end."""

    name: str

    def edge_for(self, upstream: Upstream) -> SameWire | Translation:
        """Same wire, or a translation, for this upstream: decided by the upstream's API type."""
        ...

    def error_body(self, exc: GatewayError, request_id: str | None = None) -> bytes:
        """The gateway's own error (before any upstream byte) in this wire's error shape."""
        ...

    # For same-wire streams that end with an event rather than `[DONE]` (the Responses API): how the
    # relay judges their end; None for the OpenAI wires, whose `[DONE]` the plain relay checks.
    stream_end: StreamEnd | None

    # Answers the gateway gives itself on this path (Anthropic's count_tokens), or None: called as
    # `local_answer(counter_for, payload, model) -> bytes` before anything is relayed.
    local_answer: Any


class NotServed:
    """The edge to an upstream that cannot serve this path at all (embeddings on a Messages API):
    the request is refused as the client's (400) before anything is sent."""

    __slots__ = ("path",)
    upstream_path = CHAT_PATH

    def __init__(self, path: str) -> None:
        self.path = path

    async def prepare(self, ctx: Any, payload: dict[str, Any]) -> dict[str, Any]:
        return payload

    def request(self, ctx: Any, payload: dict[str, Any], model: str) -> dict[str, Any]:
        raise BadRequest(f"{self.path} is not served by this model's upstream (it speaks another API).")

    def answer(self, ctx: Any, data: bytes) -> bytes:
        return data

    def stream(self, ctx: Any) -> StreamEncoder:
        raise NotImplementedError  # never reached: request() refuses

    def upstream_error(self, status: int, body: bytes, request_id: str | None = None) -> bytes:
        return body

    async def before_end(self, ctx: Any) -> None:
        return None

    def stopped(self, encoder: Any, stop: Any) -> bytes:
        return b""  # never reached: request() refuses


class OpenAIWire:
    """Base of the codecs whose client wire is OpenAI's own: same wire to every OpenAI-wire upstream;
    native upstreams (Anthropic, Gemini...) serve only chat, through the chat codec's own edge."""

    name = "openai"
    path = ""
    stream_end: StreamEnd | None = None
    local_answer: Any = None

    def edge_for(self, upstream: Upstream) -> SameWire | Translation:
        return SAME_WIRE if upstream.adapter.openai_fallback else NotServed(self.path or "This path")

    def error_body(self, exc: GatewayError, request_id: str | None = None) -> bytes:
        return exc.body()
