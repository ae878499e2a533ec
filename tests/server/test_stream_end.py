"""How the relay tells a complete chat stream from one that stopped short (server/relay.py)."""

from __future__ import annotations

import pytest

from sluicegate.server.relay import has_finish_reason


@pytest.mark.parametrize(
    ("chunk", "finished"),
    [
        (b'{"choices":[{"index":0,"delta":{"content":"hi"},"finish_reason":null}]}', False),
        (b'{"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}', True),
        (b'{"choices":[{"index":0,"delta":{},"finish_reason": "length"}]}', True),  # spaced, as Python's json
        (b'{"choices":[{"index":0,"delta":{},"finish_reason" : null}]}', False),
        (
            b'{"choices":[{"index":0,"delta":{"content":"\\"finish_reason\\":\\"stop\\""},"finish_reason":null}]}',
            False,
        ),
        (
            b'{"choices":[{"index":0,"text":"x","finish_reason":null},{"index":1,"text":"","finish_reason":"stop"}]}',
            True,
        ),
        (b'{"choices":[],"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}', False),
        (b"", False),
    ],
)
def test_a_finish_reason_is_found_without_parsing(chunk: bytes, finished: bool) -> None:
    assert has_finish_reason(chunk) is finished
