"""Server-Sent Events, incrementally, over bytes as they arrive from the network.

The relay must forward each event as soon as it is complete, and must be able to look at an event's
data (usage chunk, errors) without re-encoding it: so the decoder yields each event's raw bytes
(what is forwarded) together with its `data` payload (what is inspected).
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson

DONE = b"[DONE]"
DONE_EVENT = b"data: [DONE]\n\n"


@dataclass(slots=True)
class Event:
    raw: bytes  # the event exactly as received, with its terminating blank line, normalised to \n\n
    data: bytes  # the data lines joined with \n (b"" for comment-only or event-only blocks)
    event: bytes | None = None  # the `event:` field, if any (Anthropic uses it)


class SSEDecoder:
    """Feed it chunks; it returns the events completed so far. Handles \\n, \\r\\n and \\r endings.

    Works on whole chunks with `bytes.find` rather than per line, because an upstream chunk usually
    holds exactly one event and the common case should cost one search.
    """

    __slots__ = ("_buf", "_cr")

    def __init__(self) -> None:
        self._buf = b""
        self._cr = False  # the last chunk ended with \r: a \n opening the next one completes that CRLF

    def feed(self, chunk: bytes) -> list[Event]:
        if self._cr:
            # "\r\n" split across two network chunks is one line ending, not two (which would end the
            # event early and split it in two).
            self._cr = False
            if chunk[:1] == b"\n":
                chunk = chunk[1:]
        if b"\r" in chunk:
            self._cr = chunk[-1:] == b"\r"
            chunk = chunk.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        buf = self._buf + chunk if self._buf else chunk
        events: list[Event] = []
        start = 0
        while True:
            end = buf.find(b"\n\n", start)
            if end < 0:
                break
            block = buf[start:end]
            start = end + 2
            if block:
                events.append(_parse_block(block))
        self._buf = buf[start:]
        return events

    def single(self, chunk: bytes) -> bytes | None:
        """The data of `chunk` when it is exactly one whole one-line `data:` event and nothing is
        buffered: the common network chunk, decoded with no Event, list or copy of the event (the
        caller forwards `chunk` itself). None otherwise: then `feed` the chunk as usual."""
        if (
            self._buf
            or self._cr
            or not chunk.startswith(b"data: ")
            or chunk.find(b"\n", 6) != len(chunk) - 2
            or not chunk.endswith(b"\n\n")
            or b"\r" in chunk
        ):
            return None
        return chunk[6:-2]

    def flush(self) -> list[Event]:
        """Whatever is left when the stream ends (an event without its final blank line)."""
        rest, self._buf, self._cr = self._buf.strip(b"\n"), b"", False
        return [_parse_block(rest)] if rest else []

    @property
    def pending(self) -> bytes:
        return self._buf


def _parse_block(block: bytes) -> Event:
    if block.startswith(b"data: ") and b"\n" not in block:  # the common one-line event
        return Event(block + b"\n\n", block[6:])
    data: list[bytes] = []
    event: bytes | None = None
    for line in block.split(b"\n"):
        if not line or line.startswith(b":"):
            continue
        name, _, value = line.partition(b":")
        if value.startswith(b" "):
            value = value[1:]
        if name == b"data":
            data.append(value)
        elif name == b"event":
            event = value
    return Event(block + b"\n\n", b"\n".join(data), event)


def encode_data(payload: bytes) -> bytes:
    """One `data:` event. Payloads from JSON encoders hold no newlines; others are split per SSE."""
    if b"\n" not in payload:
        return b"data: " + payload + b"\n\n"
    return b"".join(b"data: " + line + b"\n" for line in payload.split(b"\n")) + b"\n"


def error_event(message: str, type_: str = "api_error", code: str | None = None) -> bytes:
    """An error reported inside a stream, the shape OpenAI's SDKs raise from (`{"error": {...}}`)."""
    return encode_data(
        orjson.dumps({"error": {"message": message, "type": type_, "param": None, "code": code}})
    )
