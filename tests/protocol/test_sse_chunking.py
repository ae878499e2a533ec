"""Any chunking of a valid SSE byte stream decodes to the same events as the stream fed whole."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from sluicegate.protocol.sse import Event, SSEDecoder

ENDINGS = st.sampled_from([b"\n", b"\r\n", b"\r"])
TEXT = st.text(
    alphabet=st.characters(blacklist_characters="\r\n", blacklist_categories=("Cs",)), max_size=20
).map(lambda t: t.encode())


@st.composite
def field_line(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from([b"data: ", b"data:", b"event: ", b": ", b"id: "]))
    return kind + draw(TEXT) + draw(ENDINGS)


@st.composite
def sse_stream(draw: st.DrawFn) -> bytes:
    events = draw(st.lists(st.lists(field_line(), min_size=1, max_size=4), max_size=6))
    return b"".join(b"".join(lines) + draw(ENDINGS) for lines in events)


def decode(chunks: list[bytes]) -> list[tuple[bytes, bytes, bytes | None]]:
    decoder = SSEDecoder()
    events: list[Event] = []
    for chunk in chunks:
        events.extend(decoder.feed(chunk))
    events.extend(decoder.flush())
    return [(e.raw, e.data, e.event) for e in events]


def split(stream: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(stream) + 1) for c in cuts})
    bounds = [0, *points, len(stream)]
    return [stream[a:b] for a, b in zip(bounds, bounds[1:])]


@settings(max_examples=400, deadline=None)
@given(stream=sse_stream(), cuts=st.lists(st.integers(min_value=0, max_value=10_000), max_size=12))
def test_any_chunking_yields_the_events_of_the_whole_stream(stream: bytes, cuts: list[int]) -> None:
    assert decode(split(stream, cuts)) == decode([stream])


@settings(max_examples=100, deadline=None)
@given(stream=sse_stream())
def test_byte_by_byte_yields_the_events_of_the_whole_stream(stream: bytes) -> None:
    assert decode([stream[i : i + 1] for i in range(len(stream))]) == decode([stream])


def test_a_crlf_split_between_two_chunks_is_one_line_ending() -> None:
    chunks = [b"data: a\r", b"\ndata: b\r\n\r\n"]
    assert decode(chunks) == [(b"data: a\ndata: b\n\n", b"a\nb", None)]


def decode_fast(chunks: list[bytes]) -> list[tuple[bytes, bytes, bytes | None]]:
    """As the relay decodes: a chunk that is one whole event by `single`, any other by `feed`."""
    decoder = SSEDecoder()
    events: list[tuple[bytes, bytes, bytes | None]] = []
    for chunk in chunks:
        data = decoder.single(chunk)
        if data is not None:
            events.append((chunk, data, None))
        else:
            events.extend((e.raw, e.data, e.event) for e in decoder.feed(chunk))
    events.extend((e.raw, e.data, e.event) for e in decoder.flush())
    return events


@settings(max_examples=400, deadline=None)
@given(stream=sse_stream(), cuts=st.lists(st.integers(min_value=0, max_value=10_000), max_size=12))
def test_the_one_event_shortcut_decodes_any_chunking_as_feed_does(stream: bytes, cuts: list[int]) -> None:
    assert decode_fast(split(stream, cuts)) == decode([stream])


def test_the_one_event_shortcut_takes_only_a_whole_one_line_data_event() -> None:
    decoder = SSEDecoder()
    assert decoder.single(b'data: {"a":1}\n\n') == b'{"a":1}'
    assert decoder.single(b"data: a\r\n\r\n") is None
    assert decoder.single(b"data: a\n\ndata: b\n\n") is None
    assert decoder.single(b"event: x\ndata: a\n\n") is None
    assert decoder.single(b"data: a\n") is None
    decoder.feed(b"data: a")  # something buffered: the next chunk completes it, not a new event
    assert decoder.single(b"data: b\n\n") is None
