"""The SSE codec: events complete as bytes arrive, in any split, with any line ending."""

from __future__ import annotations

import orjson

from sluicegate.protocol.sse import SSEDecoder, encode_data, error_event

STREAM = (
    b'data: {"a":1}\n\n'
    b": keep-alive comment\n\n"
    b'event: message_start\ndata: {"b":2}\n\n'
    b"data: line1\ndata: line2\n\n"
    b"data: [DONE]\n\n"
)


def decode_all(chunks: list[bytes]) -> list[bytes]:
    d = SSEDecoder()
    out = [e.data for c in chunks for e in d.feed(c)]
    out += [e.data for e in d.flush()]
    return out


def test_whole_stream_in_one_chunk() -> None:
    assert decode_all([STREAM]) == [b'{"a":1}', b"", b'{"b":2}', b"line1\nline2", b"[DONE]"]


def test_every_split_point_gives_the_same_events() -> None:
    expected = decode_all([STREAM])
    for i in range(1, len(STREAM)):
        assert decode_all([STREAM[:i], STREAM[i:]]) == expected


def test_byte_by_byte_feed() -> None:
    assert decode_all([bytes([b]) for b in STREAM]) == decode_all([STREAM])


def test_crlf_line_endings() -> None:
    assert decode_all([STREAM.replace(b"\n", b"\r\n")]) == decode_all([STREAM])


def test_event_field_is_kept() -> None:
    events = SSEDecoder().feed(b"event: ping\ndata: {}\n\n")
    assert events[0].event == b"ping" and events[0].data == b"{}"


def test_raw_bytes_are_the_event_as_received() -> None:
    [ev] = SSEDecoder().feed(b'data: {"x":1}\n\n')
    assert ev.raw == b'data: {"x":1}\n\n'


def test_unterminated_last_event_comes_out_on_flush() -> None:
    d = SSEDecoder()
    assert d.feed(b"data: tail") == []
    assert [e.data for e in d.flush()] == [b"tail"]


def test_encode_multiline_payload_round_trips() -> None:
    encoded = encode_data(b"a\nb")
    assert encoded == b"data: a\ndata: b\n\n"
    assert [e.data for e in SSEDecoder().feed(encoded)] == [b"a\nb"]


def test_error_event_has_openai_error_shape() -> None:
    [ev] = SSEDecoder().feed(error_event("upstream cut", "api_error", "upstream_disconnected"))
    assert orjson.loads(ev.data) == {
        "error": {
            "message": "upstream cut",
            "type": "api_error",
            "param": None,
            "code": "upstream_disconnected",
        }
    }
