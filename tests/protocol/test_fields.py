"""The fields the gateway reads are type-checked: a wrong one is a 400 naming it."""

from __future__ import annotations

from typing import Any

import pytest

from sluicegate.protocol.errors import BadRequest
from sluicegate.protocol.fields import check_fields


@pytest.mark.parametrize(
    "payload",
    [
        {},
        {"stream": True, "stream_options": {"include_usage": True}, "max_tokens": 1, "n": 2},
        {"stream": None, "stream_options": None, "max_completion_tokens": None},
        {"prompt": "x"},
        {"prompt": ["a", "b"]},
        {"prompt": [1, 2, 3]},
        {"prompt": [[1, 2], [3]]},
        {"prompt": []},
        {"best_of": 3},
    ],
)
def test_well_typed_fields_pass(payload: dict[str, Any]) -> None:
    check_fields(payload)


@pytest.mark.parametrize(
    ("payload", "param"),
    [
        ({"stream": "true"}, "stream"),
        ({"stream": 1}, "stream"),
        ({"stream_options": "x"}, "stream_options"),
        ({"stream_options": ["include_usage"]}, "stream_options"),
        ({"stream_options": {"include_usage": "yes"}}, "stream_options.include_usage"),
        ({"max_tokens": "10"}, "max_tokens"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"max_tokens": True}, "max_tokens"),
        ({"max_completion_tokens": 1.5}, "max_completion_tokens"),
        ({"n": -2}, "n"),
        ({"best_of": "3"}, "best_of"),
        ({"prompt": 7}, "prompt"),
        ({"prompt": ["a", 1]}, "prompt"),
        ({"prompt": [[1, "a"]]}, "prompt"),
        ({"prompt": {"text": "x"}}, "prompt"),
    ],
)
def test_a_wrong_type_is_a_400_naming_the_param(payload: dict[str, Any], param: str) -> None:
    with pytest.raises(BadRequest) as raised:
        check_fields(payload)
    assert raised.value.param == param
    assert raised.value.status == 400
