"""Token usage of one request, read from whatever shape the upstream answered in.

The gateway meters from the upstream's own figures whenever it has them: they are what the
provider bills. Only when an upstream reports nothing (llama.cpp's server, some self-hosted engines,
or a stream the client abandoned before the usage chunk) does the gateway count tokens itself, and
then the figure carries `estimated=True` so nobody mistakes it for a bill.

Everything here is pure: bytes or dicts in, a `Usage` out. The streaming side lives in
`metering.stream`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import orjson


@dataclass(frozen=True, slots=True)
class Usage:
    """Tokens of one request, normalised to OpenAI's meaning.

    `prompt_tokens` includes `cached_tokens` and `completion_tokens` includes `reasoning_tokens`,
    as in OpenAI's usage object: the details are subsets, never extra. Shapes that count them apart
    (Anthropic's input_tokens excludes cache reads; Gemini's candidatesTokenCount excludes thoughts)
    are added up on the way in, so prices apply to one meaning everywhere.
    """

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    reasoning_tokens: int = 0
    estimated: bool = False
    # Prompt tokens written to the provider's cache (Anthropic's cache_creation_input_tokens): a part
    # of `prompt_tokens` like `cached_tokens`, billed at their own (higher) price.
    cache_write_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def merged(self, other: Usage) -> Usage:
        """Field-wise maximum: combines partial or cumulative reports of one stream.

        Anthropic splits usage over message_start (input) and message_delta (output, cumulative);
        vLLM with continuous usage stats repeats running totals on every chunk. The maximum of each
        field is right for both, and for the ordinary single final report.
        """
        return Usage(
            max(self.prompt_tokens, other.prompt_tokens),
            max(self.completion_tokens, other.completion_tokens),
            max(self.cached_tokens, other.cached_tokens),
            max(self.reasoning_tokens, other.reasoning_tokens),
            self.estimated and other.estimated,
            max(self.cache_write_tokens, other.cache_write_tokens),
        )


# No one request uses more tokens than this; an upstream that says so is wrong, and one absurd figure
# (1e300, inf) must neither raise here nor sink the log batch that stores it (a 32-bit column holds it).
MAX_TOKENS = 2**31 - 1


def _int(value: Any) -> int:
    # Providers send ints; a few send floats or null. Anything else is not a count. An absurd figure
    # (1e300, inf) is capped at MAX_TOKENS here, before limits or metrics see it; the log flags it.
    if type(value) is int and 0 <= value <= MAX_TOKENS:  # the common cases first, at one check each
        return value
    if value is None:
        return 0
    if isinstance(value, bool):
        return 0
    if isinstance(value, int):
        return min(max(0, value), MAX_TOKENS)
    if isinstance(value, float):
        return int(min(value, MAX_TOKENS)) if value > 0 else 0  # NaN is not > 0
    return 0


def _detail(usage: Mapping[str, Any], section: str, name: str) -> int:
    details = usage.get(section)
    if details is None:  # the common case, without the Mapping ABC's check (~0.25 us)
        return 0
    if type(details) is dict or isinstance(details, Mapping):
        return _int(details.get(name))
    return 0


def usage_from_mapping(usage: Mapping[str, Any]) -> Usage | None:
    """Normalise one usage object (OpenAI, Anthropic, Bedrock Converse, Gemini or embeddings shape).

    Returns None when the mapping carries no token count at all, so that an empty `{}` is not
    mistaken for a real report of zero tokens.
    """
    if "prompt_tokens" in usage or "completion_tokens" in usage:
        # OpenAI and everyone compatible; embeddings carry only prompt_tokens and total_tokens.
        cached = _detail(usage, "prompt_tokens_details", "cached_tokens")
        if not cached:
            # DeepSeek reports cache hits at top level; Moonshot as `cached_tokens`.
            cached = _int(usage.get("prompt_cache_hit_tokens")) or _int(usage.get("cached_tokens"))
        return Usage(  # by position (the common shape; keywords cost ~0.4 us more): Usage's field order
            _int(usage.get("prompt_tokens")),  # prompt_tokens
            _int(usage.get("completion_tokens")),  # completion_tokens
            cached,  # cached_tokens
            _detail(usage, "completion_tokens_details", "reasoning_tokens"),  # reasoning_tokens
            False,  # estimated
            # The native Anthropic adapter keeps cache writes by Anthropic's name in a chat usage.
            _int(usage.get("cache_creation_input_tokens")),  # cache_write_tokens
        )
    anthropic = "cache_read_input_tokens" in usage or "cache_creation_input_tokens" in usage
    if not anthropic and (
        "input_tokens_details" in usage
        or "output_tokens_details" in usage
        or ("input_tokens" in usage and "total_tokens" in usage)
    ):
        # OpenAI's Responses API: input_tokens includes the cached ones (OpenAI's meaning already).
        # (Anthropic's usage also has an `output_tokens_details`, but always its cache fields.)
        return Usage(
            prompt_tokens=_int(usage.get("input_tokens")),
            completion_tokens=_int(usage.get("output_tokens")),
            cached_tokens=_detail(usage, "input_tokens_details", "cached_tokens"),
            reasoning_tokens=_detail(usage, "output_tokens_details", "reasoning_tokens"),
        )
    if "input_tokens" in usage or "output_tokens" in usage:
        # Anthropic: input_tokens excludes cache reads and cache writes; add them back so that
        # prompt_tokens means what it means for OpenAI.
        cache_read = _int(usage.get("cache_read_input_tokens"))
        cache_write = _int(usage.get("cache_creation_input_tokens"))
        return Usage(
            prompt_tokens=min(_int(usage.get("input_tokens")) + cache_read + cache_write, MAX_TOKENS),
            completion_tokens=_int(usage.get("output_tokens")),
            cached_tokens=cache_read,
            cache_write_tokens=cache_write,
        )
    if "inputTokens" in usage or "outputTokens" in usage:
        # Bedrock Converse: inputTokens excludes cache reads and writes, as Anthropic's does.
        read = _int(usage.get("cacheReadInputTokens"))
        write = _int(usage.get("cacheWriteInputTokens"))
        return Usage(
            prompt_tokens=_int(usage.get("inputTokens")) + read + write,
            completion_tokens=_int(usage.get("outputTokens")),
            cached_tokens=read,
            cache_write_tokens=write,
        )
    if "promptTokenCount" in usage or "candidatesTokenCount" in usage:
        # Gemini's native usageMetadata: thoughts are billed as output but counted apart.
        thoughts = _int(usage.get("thoughtsTokenCount"))
        return Usage(
            prompt_tokens=_int(usage.get("promptTokenCount")),
            completion_tokens=min(_int(usage.get("candidatesTokenCount")) + thoughts, MAX_TOKENS),
            cached_tokens=_int(usage.get("cachedContentTokenCount")),
            reasoning_tokens=thoughts,
        )
    return None


def usage_from_body(body: bytes | bytearray | memoryview | str | Mapping[str, Any]) -> Usage | None:
    """Usage reported in a whole (non-streamed) response body, or None if it reports none.

    Accepts the raw bytes as relayed (parsed here) or a dict the shell already parsed. A body that
    is not JSON is treated as reporting nothing: metering must never fail a request.
    """
    # `type(x) is dict` first: a parsed body is a dict, and the Mapping ABC's check costs ~0.3 us.
    if type(body) is dict or isinstance(body, Mapping):
        doc: Any = body
    else:
        try:
            doc = orjson.loads(body)
        except orjson.JSONDecodeError:
            return None
    if type(doc) is not dict and not isinstance(doc, Mapping):
        return None
    for key in ("usage", "usageMetadata"):
        found = doc.get(key)
        if type(found) is dict or isinstance(found, Mapping):
            usage = usage_from_mapping(found)
            if usage is not None:
                return usage
    # Anthropic's streamed message_start wraps the message; a Responses stream's response.completed
    # (and .incomplete, .failed) wraps the Response.
    for key in ("message", "response"):
        inner = doc.get(key)
        if isinstance(inner, Mapping) and isinstance(inner.get("usage"), Mapping):
            return usage_from_mapping(inner["usage"])
    return None


def ensure_usage_requested(body: dict[str, Any]) -> bool:
    """Make a streaming chat request ask the upstream for usage; say whether the client had.

    The gateway needs the usage chunk to meter a stream, whatever the client wants to see. The
    return value tells the relay whether to forward that chunk (`StreamMeter(client_wants_usage=)`).
    The body is changed in place, because the shell serialises it once right after.
    """
    options = body.get("stream_options")
    if isinstance(options, dict):
        asked = options.get("include_usage") is True
        options["include_usage"] = True
        return asked
    body["stream_options"] = {"include_usage": True}
    return False


def _content_text(content: Any) -> Iterator[str]:
    if isinstance(content, str):
        yield content
    elif isinstance(content, list):  # content parts: [{"type": "text", "text": "..."}, ...]
        for part in content:
            if isinstance(part, Mapping):
                text = part.get("text")
                if isinstance(text, str):
                    yield text


def _message_text(message: Mapping[str, Any]) -> Iterator[str]:
    """Generated text in one message or delta: content, reasoning, tool-call names and arguments."""
    yield from _content_text(message.get("content"))
    for key in ("reasoning_content", "reasoning"):
        value = message.get(key)
        if isinstance(value, str):
            yield value
    calls = message.get("tool_calls")
    if isinstance(calls, list):
        for call in calls:
            function = call.get("function") if isinstance(call, Mapping) else None
            if isinstance(function, Mapping):
                for key in ("name", "arguments"):
                    value = function.get(key)
                    if isinstance(value, str):
                        yield value
    function_call = message.get("function_call")  # the legacy single function call
    if isinstance(function_call, Mapping):
        value = function_call.get("arguments")
        if isinstance(value, str):
            yield value


def completion_texts(doc: Mapping[str, Any]) -> Iterator[str]:
    """The generated text of a response or of one stream chunk, piece by piece.

    Reads OpenAI chat (`message` or `delta`), legacy completions (`text`), Anthropic content
    blocks and deltas, and the Responses API's stream deltas; used only to estimate completion tokens when no usage was reported.
    """
    choices = doc.get("choices")
    if isinstance(choices, list):
        for choice in choices:
            if not isinstance(choice, Mapping):
                continue
            for key in ("message", "delta"):
                message = choice.get(key)
                if isinstance(message, Mapping):
                    yield from _message_text(message)
            text = choice.get("text")
            if isinstance(text, str):
                yield text
    content = doc.get("content")  # Anthropic message: [{"type": "text", "text": ...}, ...]
    if isinstance(content, list):
        for block in content:
            if isinstance(block, Mapping):
                for key in ("text", "thinking"):
                    value = block.get(key)
                    if isinstance(value, str):
                        yield value
    delta = doc.get("delta")  # Anthropic content_block_delta; a Responses stream's text/arguments deltas
    if isinstance(delta, str):
        yield delta
    elif isinstance(delta, Mapping):
        for key in ("text", "thinking", "partial_json"):
            value = delta.get(key)
            if isinstance(value, str):
                yield value


class CountsTokens(Protocol):
    """What estimation needs from a tokenizer (`metering.tokens.TokenCounter` is one)."""

    def count_text(self, text: str, model: str | None = None) -> int: ...

    def count_request(self, body: Mapping[str, Any], model: str | None = None) -> int: ...


def estimate_usage(
    counter: CountsTokens,
    request_body: Mapping[str, Any] | None,
    completion_text: str,
    model: str | None = None,
) -> Usage:
    """Usage counted by the gateway, for an upstream that reported none: always `estimated`."""
    prompt = counter.count_request(request_body, model) if request_body else 0
    return Usage(
        prompt_tokens=prompt,
        completion_tokens=counter.count_text(completion_text, model) if completion_text else 0,
        estimated=True,
    )


def usage_or_estimate(
    response: bytes | bytearray | memoryview | str | Mapping[str, Any],
    counter: CountsTokens,
    request_body: Mapping[str, Any] | None,
    model: str | None = None,
) -> Usage:
    """The usage of a whole (non-streamed) response: as reported, else counted from its text.

    This is the one call the shell makes for a non-streamed answer. Counting runs only when the
    upstream reported nothing, so the ordinary path costs one dictionary lookup past the parse.
    """
    if isinstance(response, Mapping):
        doc: Any = response
    else:
        try:
            doc = orjson.loads(response)
        except orjson.JSONDecodeError:
            doc = None
    if isinstance(doc, Mapping):
        reported = usage_from_body(doc)
        if reported is not None:
            return reported
        text = "".join(completion_texts(doc))
    else:
        text = ""
    return estimate_usage(counter, request_body, text, model)
