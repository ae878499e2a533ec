"""What a request reserves before it runs: the Responses API's `max_output_tokens` counts like `max_tokens`."""

from __future__ import annotations

from sluicegate.config.model import Settings
from sluicegate.limits import build_limiter
from sluicegate.limits.quota import TOKENS, Quota
from sluicegate.server.context import RequestContext
from sluicegate.server.limiting import LimitGate

TPM = (Quota("key:k", "rate", TOKENS, 10_000, "minute"),)


def gate() -> LimitGate:
    return LimitGate(Settings(), build_limiter(None), lambda *a: None)


def context(path: str, payload: dict[str, object]) -> RequestContext:
    ctx = RequestContext(path, "POST", None, None)
    ctx.payload = payload
    return ctx


def test_a_responses_request_reserves_its_max_output_tokens() -> None:
    est = gate().estimate(context("/v1/responses", {"input": "hi", "max_output_tokens": 700}), 40, TPM)
    assert est[TOKENS] == 40 // 2 + 1 + 700


def test_a_responses_request_without_a_limit_reserves_the_default_completion() -> None:
    est = gate().estimate(context("/v1/responses", {"input": "hi"}), 40, TPM)
    assert est[TOKENS] == 40 // 2 + 1 + Settings().limits.default_completion_tokens
