"""Reading a batch output file's usage (server/batches.py): per model, summed, junk skipped."""

from __future__ import annotations

import orjson

from sluicegate.metering.usage import Usage
from sluicegate.server.batches import output_usage, record_id


def line(model: str, prompt: int, completion: int, cached: int = 0) -> bytes:
    usage = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": cached},
    }
    body = {"model": model, "object": "chat.completion", "usage": usage, "choices": []}
    return orjson.dumps({"custom_id": "x", "response": {"status_code": 200, "body": body}, "error": None})


def test_usage_is_summed_per_model_and_junk_is_skipped() -> None:
    content = b"\n".join(
        [
            line("a", 10, 5, cached=4),
            line("a", 20, 7),
            b"",
            b"not json",
            orjson.dumps({"custom_id": "y", "response": None, "error": {"code": "server_error"}}),
            orjson.dumps({"custom_id": "z", "response": {"status_code": 200, "body": {"model": "a"}}}),
            line("b", 1, 1),
        ]
    )
    found = output_usage(content)
    assert found == {
        "a": (Usage(prompt_tokens=30, completion_tokens=12, cached_tokens=4), 2),
        "b": (Usage(prompt_tokens=1, completion_tokens=1), 1),
    }


def test_record_ids_are_the_same_on_every_gateway_and_fit_the_column() -> None:
    assert record_id("batch_1", "gpt-4o") == record_id("batch_1", "gpt-4o")
    assert record_id("batch_1", "gpt-4o") != record_id("batch_1", "gpt-4o-mini")
    assert len(record_id("batch_" + "x" * 200, "m" * 200)) <= 64
