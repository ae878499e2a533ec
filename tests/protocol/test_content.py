"""Recognising a JSON body the way an upstream would: any letter case, any parameters, leading space."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sluicegate.protocol.content import JSON, MULTIPART, body_kind, header_param, media_type
from sluicegate.server.body import body_model

WHITESPACE = st.text(st.sampled_from(" \t\r\n"), max_size=20)
MODEL = st.text(min_size=1, max_size=30)


def random_case(text: str, flips: list[bool]) -> str:
    return "".join(c.upper() if f else c.lower() for c, f in zip(text, flips + [False] * len(text)))


@given(
    st.lists(st.booleans(), max_size=16),
    st.sampled_from(["", "; charset=utf-8", ";charset=UTF-8 ", " ; x=y"]),
)
def test_json_media_type_is_recognised_in_any_case_with_any_parameters(
    flips: list[bool], params: str
) -> None:
    content_type = random_case("application/json", flips) + params
    assert body_kind(content_type, b"") == JSON


@given(WHITESPACE, MODEL, st.sampled_from(["", "text/plain", "application/octet-stream", "x/y"]))
def test_a_json_object_after_whitespace_is_json_whatever_the_content_type(
    space: str, model: str, content_type: str
) -> None:
    body = space.encode() + orjson.dumps({"model": model, "messages": []})
    assert body_kind(content_type, body) == JSON
    assert body_model(content_type, body, False)[1] == model


@given(st.lists(st.booleans(), max_size=16), WHITESPACE, MODEL)
def test_the_model_is_read_from_every_json_body_an_upstream_would_read(
    flips: list[bool], space: str, model: str
) -> None:
    content_type = random_case("application/json", flips) + "; charset=utf-8"
    body = space.encode() + orjson.dumps({"model": model})
    payload, found = body_model(content_type, body, False)
    assert found == model
    assert payload == {"model": model}


@given(st.binary(max_size=64).filter(lambda b: not b.lstrip(b" \t\r\n").startswith(b"{")))
def test_other_bodies_with_other_types_are_not_read(body: bytes) -> None:
    assert body_kind("audio/wav", body) is None
    assert body_model("audio/wav", body, False) == (None, None)


def test_multipart_is_recognised_in_any_case() -> None:
    assert body_kind("Multipart/Form-Data; boundary=x", b"") == MULTIPART


@pytest.mark.parametrize(
    ("content_type", "boundary"),
    [
        ("multipart/form-data; boundary=abc", "abc"),
        ('multipart/form-data; BOUNDARY="a b;c"', "a b;c"),
        ("multipart/form-data; charset=x; boundary=zz", "zz"),
        ("multipart/form-data", None),
    ],
)
def test_boundary_parameter(content_type: str, boundary: str | None) -> None:
    assert header_param(content_type, "boundary") == boundary


def test_media_type_drops_parameters_and_case() -> None:
    assert media_type(" Application/JSON ; charset=utf-8") == "application/json"
