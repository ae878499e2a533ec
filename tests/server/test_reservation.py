"""What a request reserves and how a budget's clamp rewrites its body: pure functions."""

from __future__ import annotations

import pytest

from sluicegate.limits import INSUFFICIENT_QUOTA, Quota, Refusal
from sluicegate.server.reservation import answers_asked, budget_refusal_message, clamp_body, completion_size

CHAT = "/v1/chat/completions"
COMPLETIONS = "/v1/completions"


@pytest.mark.parametrize(
    ("payload", "path", "size"),
    [
        ({"max_tokens": 50}, CHAT, (50, 1)),
        ({"max_completion_tokens": 70, "max_tokens": 50}, CHAT, (70, 1)),
        ({}, CHAT, (1024, 1)),
        ({"n": 3}, CHAT, (1024, 3)),
        ({"prompt": ["a", "b", "c"], "n": 2, "max_tokens": 10}, COMPLETIONS, (10, 6)),
        ({"prompt": [1, 2, 3], "max_tokens": 10}, COMPLETIONS, (10, 1)),
        ({"prompt": [[1, 2], [3]], "max_tokens": 10}, COMPLETIONS, (10, 2)),
        ({"prompt": "x", "n": 2, "best_of": 5, "max_tokens": 10}, COMPLETIONS, (10, 5)),
        ({"input": "x"}, "/v1/embeddings", (0, 1)),
    ],
)
def test_the_answer_size_asked_is_max_tokens_times_answers(payload: dict, path: str, size: tuple) -> None:
    assert completion_size(payload, path, 1024) == size


def test_best_of_counts_only_on_legacy_completions() -> None:
    assert answers_asked({"best_of": 4}, CHAT) == 1


def test_the_clamp_lowers_each_field_the_client_used() -> None:
    body = {"model": "m", "max_completion_tokens": 900, "max_tokens": 800}
    assert clamp_body(body, 10) == {"model": "m", "max_completion_tokens": 10, "max_tokens": 10}
    assert body["max_tokens"] == 800  # the parsed body is not changed in place


def test_the_clamp_adds_max_tokens_when_the_client_set_none() -> None:
    assert clamp_body({"model": "m"}, 10) == {"model": "m", "max_tokens": 10}


def test_a_budget_refusal_says_what_is_left_and_what_was_needed() -> None:
    quota = Quota.budget("key:k", "cost", 0.5, "month")
    refusal = Refusal(quota, INSUFFICIENT_QUOTA, 100.0, None, None, left=0.002, needed=0.004)
    message = budget_refusal_message(refusal, "this API key")
    assert "cost budget per UTC month for this API key ($0.5)" in message
    assert "has $0.002 left" in message and "needs at least $0.004" in message


def test_a_spent_budget_says_how_much_was_used() -> None:
    quota = Quota.budget("key:k", "tokens", 3000, "total")
    refusal = Refusal(quota, INSUFFICIENT_QUOTA, None, None, None, left=-2004.0, needed=9.0)
    assert "tokens budget in total for this API key (3000 tokens) is spent: 5004 tokens used" in (
        budget_refusal_message(refusal, "this API key")
    )
