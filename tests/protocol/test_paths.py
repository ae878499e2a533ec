"""The path check: what is refused before authentication and routing, and what passes untouched."""

from __future__ import annotations

import posixpath

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sluicegate.protocol.paths import path_problem

SAFE_CHARS = st.characters(
    codec="utf-8",
    exclude_categories=("Cc", "Cs", "Zl", "Zp", "Cf", "Co", "Cn", "Zs"),
    exclude_characters="/\\%?#;",
)
SEGMENT = st.text(SAFE_CHARS, min_size=1, max_size=12).filter(lambda s: s not in (".", ".."))


@pytest.mark.parametrize(
    "path",
    [
        "/v1/chat/completions",
        "/v1/embeddings",
        "/v1/models/gpt-4o-mini",
        "/v1/files/file-abc123/content",
        "/passthrough/v1/chat/completions",
        "/",
        "/healthz",
        "/v1/models/qwen2.5:7b",
        "/v1/models/.hidden-name",
        "/v1/models/a..b",
    ],
)
def test_ordinary_api_paths_pass(path: str) -> None:
    assert path_problem(path) is None


@pytest.mark.parametrize(
    "path",
    [
        "/v1/embeddings/x/../../chat/completions",
        "/v1/../x",
        "/v1/./chat/completions",
        "/v1/..",
        "/v1/.",
        "/passthrough/v1/../../x",
        "/v1/..;/x",
        "/v1/a\\..\\b",
        "/v1/a\\b",
        "/v1//chat/completions",
        "//v1/chat/completions",
    ],
)
def test_dot_segments_backslashes_and_empty_segments_are_refused(path: str) -> None:
    assert path_problem(path) is not None


@pytest.mark.parametrize("char", ["\x00", "\x01", "\n", "\r", "\t", "\x1f", "\x7f", "\x85", "\u2028"])
def test_control_characters_are_refused(char: str) -> None:
    assert path_problem(f"/v1/chat{char}/completions") is not None


@pytest.mark.parametrize(
    "path", ["/v1/%2e%2e/x", "/v1/%2E%2e/x", "/v1/a%5cb", "/v1/a%2fb", "/v1/a%00b", "/v1/x%3f"]
)
def test_a_second_layer_of_percent_encoding_is_refused(path: str) -> None:
    """The server decoded the path once; a '%' left in it would be decoded again by the next hop."""
    assert path_problem(path) is not None


@pytest.mark.parametrize("path", ["/v1/chat?x", "/v1/chat#frag", "v1/chat", ""])
def test_query_and_fragment_marks_and_relative_paths_are_refused(path: str) -> None:
    assert path_problem(path) is not None


@given(st.lists(SEGMENT, min_size=1, max_size=8), st.booleans())
def test_paths_made_of_plain_segments_pass(segments: list[str], trailing: bool) -> None:
    path = "/" + "/".join(segments) + ("/" if trailing else "")
    assert path_problem(path) is None


@given(st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=40))
def test_an_accepted_path_is_its_own_normal_form(path: str) -> None:
    """Whatever is accepted, resolving it the way a server would (dot-segments, doubled slashes,
    backslashes as slashes) gives back the very same path: what is checked is what is reached."""
    if path_problem(path) is None:
        resolved = posixpath.normpath(path.replace("\\", "/"))
        if path.endswith("/") and path != "/":
            resolved += "/"
        assert resolved == path
        assert "%" not in path and path.isprintable()


@given(
    st.lists(SEGMENT, max_size=4),
    st.sampled_from([".", "..", "", "a\\b", "a%2e", "x\x00", "..;x"]),
    st.lists(SEGMENT, min_size=1, max_size=4),
)
def test_one_bad_segment_anywhere_refuses_the_path(before: list[str], bad: str, after: list[str]) -> None:
    path = "/" + "/".join([*before, bad, *after])
    assert path_problem(path) is not None
