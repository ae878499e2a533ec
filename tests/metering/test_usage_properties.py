"""Usage extraction never raises and always yields bounded non-negative counts, whatever an upstream sends."""

from __future__ import annotations

from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from sluicegate.metering.usage import MAX_TOKENS, Usage, usage_from_body, usage_from_mapping

KNOWN = [
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "cached_tokens",
    "prompt_cache_hit_tokens",
    "prompt_tokens_details",
    "completion_tokens_details",
    "reasoning_tokens",
    "input_tokens",
    "output_tokens",
    "cache_read_input_tokens",
    "cache_creation_input_tokens",
    "promptTokenCount",
    "candidatesTokenCount",
    "thoughtsTokenCount",
    "cachedContentTokenCount",
    "usage",
    "usageMetadata",
    "message",
]
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=8)
)
KEYS = st.sampled_from(KNOWN) | st.text(max_size=6)
JSONISH = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(KEYS, inner, max_size=6),
    max_leaves=30,
)


def assert_bounded(usage: Usage | None) -> None:
    if usage is None:
        return
    for value in (usage.prompt_tokens, usage.completion_tokens, usage.cached_tokens, usage.reasoning_tokens):
        assert isinstance(value, int) and not isinstance(value, bool)
        assert 0 <= value <= MAX_TOKENS


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(KEYS, JSONISH, max_size=8))
def test_any_usage_object_yields_bounded_non_negative_ints(obj: dict[str, Any]) -> None:
    assert_bounded(usage_from_mapping(obj))


@settings(max_examples=150, deadline=None)
@given(JSONISH)
def test_any_answer_body_never_raises(doc: Any) -> None:
    assert_bounded(usage_from_body(doc) if isinstance(doc, dict) else None)
    try:
        raw = orjson.dumps(doc)
    except (TypeError, orjson.JSONEncodeError):
        return  # nan/inf or huge ints are not JSON; the dict form above covers them
    assert_bounded(usage_from_body(raw))


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=64))
def test_any_bytes_never_raise(raw: bytes) -> None:
    assert_bounded(usage_from_body(raw))


def test_an_absurd_figure_is_clamped_not_raised() -> None:
    usage = usage_from_mapping({"prompt_tokens": 1e300, "completion_tokens": float("inf")})
    assert usage == Usage(prompt_tokens=MAX_TOKENS, completion_tokens=MAX_TOKENS)
