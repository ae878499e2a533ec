"""What a request reserves against its quotas, and the clamp a budget puts on its answer.

Pure functions over the parsed body: the size of the answer asked for (max tokens × answers), and the
words of a budget refusal. The limiter call itself is in `server/limiting.py`.

Why the answer's size is elastic: a budget with 300 tokens left should serve a request that asked for
1,024, with `max_tokens` lowered to what fits, rather than refuse it as "spent". The limiter grants the
units in the same atomic call that reserves them (docs/limits.md, "Elastic demands").
"""

from __future__ import annotations

from typing import Any

from sluicegate.limits import COST, Quota, Refusal

# Paths that generate text: a request with no bound of its own reserves the default answer size.
COMPLETION_PATHS = frozenset({"/v1/chat/completions", "/v1/completions", "/v1/responses"})
CLAMP_HEADER = "x-sluicegate-max-tokens-clamped"
# `max_output_tokens` is the Responses API's name (its requests are admitted in the client's shape).
MAX_TOKEN_FIELDS = ("max_completion_tokens", "max_tokens", "max_output_tokens")


def asked_max_tokens(payload: dict[str, Any] | None) -> int | None:
    """The client's own bound on one answer, if it set one (validated to a positive int upstream)."""
    if not payload:
        return None
    for name in MAX_TOKEN_FIELDS:
        value = payload.get(name)
        if value is None:
            continue
        if (type(value) is int or (isinstance(value, int) and not isinstance(value, bool))) and value > 0:
            return value
    return None


def answers_asked(payload: dict[str, Any] | None, upstream_path: str) -> int:
    """How many answers one request makes the upstream write: n (or best_of) × prompts in a list.

    A legacy completion's `prompt` may be a list of prompts (strings or token lists), each answered
    `n` times; a flat list of ints is one tokenised prompt.
    """
    if not payload:
        return 1
    n = payload.get("n")
    count = n if isinstance(n, int) and not isinstance(n, bool) and n > 1 else 1
    if upstream_path == "/v1/completions":
        best_of = payload.get("best_of")
        if isinstance(best_of, int) and not isinstance(best_of, bool) and best_of > count:
            count = best_of
        prompt = payload.get("prompt")
        if isinstance(prompt, list) and prompt and not isinstance(prompt[0], int):
            count *= len(prompt)
    return count


def completion_size(
    payload: dict[str, Any] | None, upstream_path: str, default_completion: int
) -> tuple[int, int]:
    """(max tokens of one answer, answers): what the upstream may write, before any clamp.

    Endpoints that generate no text (embeddings...) ask for 0.
    """
    asked = asked_max_tokens(payload)
    if asked is None:
        asked = default_completion if upstream_path in COMPLETION_PATHS else 0
    return asked, answers_asked(payload, upstream_path) if asked else 1


def clamp_body(payload: dict[str, Any], max_tokens: int, absent: str = "max_tokens") -> dict[str, Any]:
    """The body with its answer bounded by `max_tokens`: the client's own field(s) lowered, or
    `absent` added when it set none (`max_tokens`, understood by every OpenAI-compatible server;
    `max_output_tokens` for a Responses body passed through)."""
    present = [name for name in MAX_TOKEN_FIELDS if payload.get(name) is not None]
    if not present:
        return {**payload, absent: max_tokens}
    return {**payload, **{name: max_tokens for name in present}}


def _amount(quota: Quota, value: float) -> str:
    if quota.metric == COST:
        return f"${max(value, 0.0):.6g}"
    return f"{max(value, 0.0):.0f} {quota.metric}"


def budget_refusal_message(refusal: Refusal, whose: str) -> str:
    """Why a budget refused, with the figures: what is left and what the request needed at least."""
    quota = refusal.quota
    span = "in total" if quota.period == "total" else f"per UTC {quota.period}"
    what = f"the {quota.metric} budget {span} for {whose} ({_amount(quota, quota.limit)})"
    left, needed = refusal.left, refusal.needed
    if left is None or left <= 0:
        used = "" if left is None else f": {_amount(quota, quota.limit - left)} used"
        return f"You exceeded your current quota: {what} is spent{used}."
    need = f" at least {_amount(quota, needed)}" if needed is not None else " more"
    return (
        f"You exceeded your current quota: {what} has {_amount(quota, left)} left, and this request "
        f"needs{need} (its prompt estimate plus one answer token). Shorten the prompt or wait for "
        "the budget's next period."
    )
