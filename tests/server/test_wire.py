"""The body each attempt sends: the client's bytes on the same wire, re-encoded only when it must be."""

from __future__ import annotations

import orjson

from sluicegate.server.context import RequestContext
from sluicegate.server.wire import prepare_body


def context(path: str, payload: dict[str, object], clamp: int | None = None) -> RequestContext:
    ctx = RequestContext(path, "POST", None, None)
    ctx.payload = payload
    ctx.max_tokens_clamp = clamp
    return ctx


def test_the_same_wire_body_passes_byte_for_byte() -> None:
    body = b'{"model": "m",   "input": "hi"}'
    assert prepare_body(context("/v1/responses", orjson.loads(body)), body, None, True) is body


def test_a_budget_clamp_on_a_passed_through_responses_body_sets_max_output_tokens() -> None:
    payload = {"model": "m", "input": "hi"}
    out = orjson.loads(
        prepare_body(context("/v1/responses", payload, clamp=100), orjson.dumps(payload), None, True)
    )
    assert out["max_output_tokens"] == 100
    assert "max_tokens" not in out  # the Responses API refuses chat's field


def test_a_budget_clamp_lowers_the_responses_clients_own_bound() -> None:
    payload = {"model": "m", "input": "hi", "max_output_tokens": 4000}
    out = orjson.loads(
        prepare_body(context("/v1/responses", payload, clamp=100), orjson.dumps(payload), None, True)
    )
    assert out["max_output_tokens"] == 100


def test_a_budget_clamp_on_a_chat_body_sets_max_tokens() -> None:
    payload = {"model": "m", "messages": []}
    out = orjson.loads(
        prepare_body(context("/v1/chat/completions", payload, clamp=50), orjson.dumps(payload), None, True)
    )
    assert out["max_tokens"] == 50
