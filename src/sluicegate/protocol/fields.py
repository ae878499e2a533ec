"""The body fields the gateway itself reads, checked for type before anything reads them.

Why: the gateway reads `stream`, `stream_options`, `max_tokens`, `max_completion_tokens`, `n`,
`best_of` and `prompt` to meter, reserve and clamp; a wrong type there (`"stream_options": "x"`) used to
surface as a 500 with a traceback. Each is checked once, after the parse, and a wrong one is a 400
naming the param, as OpenAI answers. Other fields are the upstream's business and pass untouched.
"""

from __future__ import annotations

from typing import Any

from sluicegate.protocol.errors import BadRequest

_POSITIVE_INTS = ("max_tokens", "max_completion_tokens", "n", "best_of")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_fields(payload: dict[str, Any]) -> None:
    """Raise BadRequest (param named) when a field the gateway reads has the wrong type."""
    stream = payload.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise BadRequest("'stream' must be a boolean.", param="stream", code="invalid_type")
    options = payload.get("stream_options")
    if options is not None:
        if not isinstance(options, dict):
            raise BadRequest(
                "'stream_options' must be an object.", param="stream_options", code="invalid_type"
            )
        include = options.get("include_usage")
        if include is not None and not isinstance(include, bool):
            raise BadRequest(
                "'stream_options.include_usage' must be a boolean.",
                param="stream_options.include_usage",
                code="invalid_type",
            )
    for name in _POSITIVE_INTS:
        value = payload.get(name)
        if value is not None and (not _is_int(value) or value < 1):
            raise BadRequest(f"'{name}' must be an integer of at least 1.", param=name, code="invalid_type")
    prompt = payload.get("prompt")
    if prompt is not None and not _valid_prompt(prompt):
        raise BadRequest(
            "'prompt' must be a string, an array of strings, an array of tokens (integers) or an array "
            "of token arrays.",
            param="prompt",
            code="invalid_type",
        )


def _valid_prompt(prompt: Any) -> bool:
    if isinstance(prompt, str):
        return True
    if not isinstance(prompt, list):
        return False
    if all(isinstance(p, str) for p in prompt) or all(_is_int(p) for p in prompt):
        return True
    return all(isinstance(p, list) and all(_is_int(t) for t in p) for p in prompt)
