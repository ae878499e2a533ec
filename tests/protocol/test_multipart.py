"""The multipart `model` field reader: correct on what real clients send, linear on what attackers send."""

from __future__ import annotations

import time

import httpx
from hypothesis import given
from hypothesis import strategies as st

from sluicegate.protocol.content import header_param
from sluicegate.protocol.multipart import MAX_PARTS, UNREADABLE, form_field

BOUNDARY = st.text(
    st.sampled_from("abcdefghijklmnopqrstuvwxyz0123456789'()+_,-./:=?"), min_size=1, max_size=70
)
FIELD_TEXT = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=40).filter(
    lambda t: "\r" not in t
)


def encode(fields: dict[str, str], files: dict[str, bytes]) -> tuple[str, bytes]:
    """A body as httpx (the OpenAI SDK's client) writes it."""
    request = httpx.Request(
        "POST",
        "http://x/v1/audio/transcriptions",
        data=fields,
        files={k: ("a.wav", v) for k, v in files.items()},
    )
    return request.headers["content-type"], request.read()


def test_the_model_of_an_sdk_style_upload_is_found() -> None:
    content_type, body = encode({"model": "whisper-1", "language": "en"}, {"file": b"RIFF" + b"\0" * 100})
    assert form_field(body, header_param(content_type, "boundary") or "") == "whisper-1"


@given(
    FIELD_TEXT,
    st.dictionaries(st.sampled_from(["language", "prompt", "temperature"]), FIELD_TEXT, max_size=3),
    st.binary(max_size=300),
)
def test_the_model_field_round_trips_through_an_encoder(
    model: str, others: dict[str, str], audio: bytes
) -> None:
    content_type, body = encode({**others, "model": model}, {"file": audio})
    assert form_field(body, header_param(content_type, "boundary") or "") == model


@given(BOUNDARY, st.binary(max_size=300))
def test_a_file_named_model_is_not_the_model_field(boundary: str, data: bytes) -> None:
    b = boundary.encode()
    if b"\r\n--" + b in data:
        return
    body = (
        b"--"
        + b
        + b'\r\nContent-Disposition: form-data; name="model"; filename="m.bin"\r\n\r\n'
        + data
        + b"\r\n--"
        + b
        + b"--\r\n"
    )
    assert form_field(body, boundary) is None


def test_two_different_model_fields_are_unreadable() -> None:
    body = (
        b'--b\r\nContent-Disposition: form-data; name="model"\r\n\r\nallowed\r\n'
        b'--b\r\nContent-Disposition: form-data; name="model"\r\n\r\nforbidden\r\n--b--\r\n'
    )
    assert form_field(body, "b") is UNREADABLE


def test_a_body_without_its_closing_delimiter_is_unreadable() -> None:
    assert form_field(b'--b\r\nContent-Disposition: form-data; name="model"\r\n\r\nm', "b") is UNREADABLE


def test_more_parts_than_any_upload_has_is_unreadable() -> None:
    part = b'--b\r\nContent-Disposition: form-data; name="x"\r\n\r\n1\r\n'
    body = part * (MAX_PARTS + 1) + b'--b\r\nContent-Disposition: form-data; name="model"\r\n\r\nm\r\n--b--'
    assert form_field(body, "b") is UNREADABLE


@given(st.binary(max_size=2000), BOUNDARY)
def test_any_bytes_give_a_string_none_or_unreadable_and_never_raise(body: bytes, boundary: str) -> None:
    result = form_field(body, boundary)
    assert result is None or result is UNREADABLE or isinstance(result, str)


MIB = 1024 * 1024


def hostile_bodies(size: int) -> dict[str, tuple[str, bytes]]:
    """Bodies built to make a naive scanner go quadratic: every shape costs one pass."""
    long_b = "a" * 69 + "b"
    return {
        "model-names-everywhere": (
            "x",
            b'--x\r\nContent-Disposition: form-data; name="f"; filename="a"\r\n\r\n'
            + b'name="model"\r\n' * (size // 14),
        ),
        "near-miss-delimiters": (
            long_b,
            b"--"
            + long_b.encode()
            + b'\r\nContent-Disposition: form-data; name="f"; filename="a"\r\n\r\n'
            + (b"\r\n--" + b"a" * 69 + b"c") * (size // 75),
        ),
        "blank-lines": ("x", b"--x\r\n" + b"\r\n" * (size // 2)),
        "tiny-parts": ("x", b"--x\r\n\r\n\r\n" * (size // 10)),
        "header-without-end": (
            "x",
            b'--x\r\nContent-Disposition: form-data; name="model"\r\n' + b"X: y\r\n" * (size // 6),
        ),
    }


def worst_seconds(size: int) -> float:
    """The most CPU time (this process's, so other work on a shared box does not count) any shape costs."""
    worst = 0.0
    for boundary, body in hostile_bodies(size).values():
        t0 = time.process_time()
        form_field(body, boundary)
        worst = max(worst, time.process_time() - t0)
    return worst


def test_a_32_mib_hostile_body_is_read_in_well_under_two_seconds() -> None:
    # The old regex took 3.8 s on 140 KB of `name="model"\r\n`; this bound leaves a loaded 2-core box
    # a wide margin (measured here: ~20 ms per 32 MiB body).
    assert worst_seconds(32 * MIB) < 2.0


def test_cost_grows_linearly_with_the_body() -> None:
    """256x the bytes costs far less than 256^2 / 16 x the time: the scan is not quadratic."""
    small = min(worst_seconds(128 * 1024) for _ in range(3))
    large = worst_seconds(32 * MIB)
    assert large < max(small, 1e-3) * 256 * 16
