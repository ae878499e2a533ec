"""A chat.completions request fitted to what one upstream accepts, just before it is sent.

A request is translated (or parsed) once, before the router picks a channel; what differs between
upstreams is applied per attempt, here, and only when the upstream needs it, so the common case
allocates nothing:

- `content_as_string`: llama.cpp's server fails on list-valued `content` after it has sent its 200
  headers (an empty body). Text-only lists are joined into one string, with a newline between
  parts as vLLM's chat templating does; lists that hold images or files are left alone (such an
  upstream cannot take them anyway, and its own error says so).
- `reasoning_effort` that the gateway itself derived from Anthropic's `thinking`/`output_config` is
  dropped for upstreams that do not take it (a client's own `reasoning_effort` on the OpenAI API is
  the client's choice and passes as it is).
- `max_output_tokens`: an upstream with a smaller output (or context) limit than a client asks for
  refuses the request (Claude Code asks for 64,000; vLLM with a 32K context answers 400): the
  request's `max_tokens` / `max_completion_tokens` is lowered to the upstream's limit.
- `reasoning_content` that the translation put on earlier tool-call turns (from the client's
  thinking blocks) is dropped for upstreams without `reasoning_history`, which may refuse a field
  OpenAI's schema does not have.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def _joined_text(content: Any) -> str | None:
    """The text of a list of text parts, or None when the list holds anything else."""
    if not isinstance(content, list):
        return None
    texts = []
    for part in content:
        if not isinstance(part, Mapping) or part.get("type") != "text":
            return None
        text = part.get("text")
        texts.append(text if isinstance(text, str) else "")
    return "\n".join(texts)


def fit_for_upstream(
    payload: Mapping[str, Any],
    *,
    content_as_string: bool,
    drop_reasoning_effort: bool,
    drop_reasoning_history: bool = False,
    max_output_tokens: int | None = None,
) -> dict[str, Any] | None:
    """A changed copy of `payload` for this upstream, or None when it fits as it is."""
    out: dict[str, Any] | None = None
    if drop_reasoning_effort and "reasoning_effort" in payload:
        out = {k: v for k, v in payload.items() if k != "reasoning_effort"}
    if max_output_tokens is not None:
        for name in ("max_tokens", "max_completion_tokens"):
            asked = payload.get(name)
            if isinstance(asked, int) and asked > max_output_tokens:
                out = dict(payload) if out is None else out
                out[name] = max_output_tokens
    messages = payload.get("messages")
    if (content_as_string or drop_reasoning_history) and isinstance(messages, list):
        fitted: list[Any] | None = None
        for i, message in enumerate(messages):
            if not isinstance(message, Mapping):
                continue
            changed: dict[str, Any] | None = None
            if drop_reasoning_history and "reasoning_content" in message:
                changed = {k: v for k, v in message.items() if k != "reasoning_content"}
            text = _joined_text(message.get("content")) if content_as_string else None
            if text is not None:
                changed = {**(changed or message), "content": text}
            if changed is None:
                continue
            if fitted is None:
                fitted = list(messages)
            fitted[i] = changed
        if fitted is not None:
            out = dict(payload) if out is None else out
            out["messages"] = fitted
    return out


__all__ = ["fit_for_upstream"]
