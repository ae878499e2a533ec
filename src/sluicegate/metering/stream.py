"""Metering a streamed answer while it is relayed, chunk by chunk, without slowing it down.

The relay hands every SSE event's `data:` payload to `StreamMeter.feed` before forwarding it. The
meter must cost next to nothing per chunk, so it does not parse ordinary chunks: a byte search tells
whether a chunk carries a non-null `"usage"`, and only those (usually one per stream) are parsed.
Ordinary chunks are kept by reference; they are parsed only if the stream ends without a final
usage report (the client left, or the upstream never reports) — and, to bound memory across a
thousand slow streams, in small batches that keep only the generated text.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from sluicegate.metering.usage import CountsTokens, Usage, completion_texts, estimate_usage, usage_from_body

_USAGE_KEY = b'"usage"'
_DONE = b"[DONE]"
_WHITESPACE = b" \t\r\n"
# Raw chunks kept before they are boiled down to their text: ~6 chat chunks, so a stream holds at
# most ~1 KB of them (16 KB held ~20 KB more per concurrent stream of 100 chunks; 2 KB ~1.8 KB of
# Python heap per stream, measured with bench/memprobe.py). The price: a chunk past the first ~1 KB is
# parsed once as the stream goes (~1 µs of ~70 µs a chunk costs), even if the upstream reports usage.
DEFAULT_COMPACT_BYTES = 1024
_CONTENT_ONLY = frozenset(("content", "role", "refusal"))


def carries_value(data: bytes, key: bytes, start: int) -> bool:
    """Whether the quoted JSON `key` at `start` (or a later occurrence) is a key with a non-null value.

    OpenAI sends `"usage":null` (and `"finish_reason":null`) on every chunk, so the mere presence of
    the key says nothing. Inside JSON strings a quote is escaped, so an unescaped `"usage"` is either
    a key or the whole string value "usage"; a key is followed by a colon.
    """
    n = len(data)
    i = start
    while i >= 0:
        j = i + len(key)
        while j < n and data[j] in _WHITESPACE:
            j += 1
        if j < n and data[j] == 58:  # ":"
            j += 1
            while j < n and data[j] in _WHITESPACE:
                j += 1
            if j < n and data[j] != 110:  # not the "n" of null
                return True
        i = data.find(key, j)
    return False


class StreamMeter:
    """Usage of one streamed response, from the upstream's report or, failing that, counted.

    One meter per stream, fed from one task: not thread-safe and needs no lock.
    """

    __slots__ = (
        "_cap",
        "_compact_at",
        "_final",
        "_pending",
        "_pending_bytes",
        "_reported",
        "_texts",
        "answer_tokens",
        "client_wants_usage",
        "done",
        "events",
        "over_cap",
    )

    def __init__(
        self,
        client_wants_usage: bool,
        *,
        compact_bytes: int = DEFAULT_COMPACT_BYTES,
        cap: int | None = None,
    ) -> None:
        """`client_wants_usage` is what `ensure_usage_requested` returned for this request.

        With a `cap` (the answer tokens a budget reserved), every chunk is read for a running lower
        bound of the answer's tokens (`answer_tokens`); the first event that would pass the cap is
        refused (`feed` returns False, neither relayed nor counted) and `over_cap` turns True.
        """
        self.client_wants_usage = client_wants_usage
        self._cap = cap
        self.answer_tokens = 0
        self.over_cap = False  # an event would have passed the cap: it was not relayed, the stream ends
        self._compact_at = compact_bytes
        self._pending: list[bytes] = []
        self._pending_bytes = 0
        self._texts: list[str] = []
        self._reported: Usage | None = None
        self._final = False
        self.done = False  # saw `[DONE]`
        self.events = 0

    def feed(self, data: bytes) -> bool:
        """Record one event's data payload; return whether to forward it to the client.

        Returns False only for the usage-only chunk (`"choices": []` with usage) of a client that
        did not ask for usage: the gateway asked for it on the client's behalf.
        """
        if data == _DONE:
            self.done = True
            return True
        self.events += 1
        at = data.find(_USAGE_KEY)
        if at < 0 or not carries_value(data, _USAGE_KEY, at):
            if self._cap is not None:
                tokens = self.answer_tokens + tokens_at_least(data)
                if tokens > self._cap:  # past what was reserved: not relayed, not counted
                    self.over_cap = True
                    return False
                self.answer_tokens = tokens
            self._pending.append(data)
            self._pending_bytes += len(data)
            if self._pending_bytes > self._compact_at:
                self._compact()
            return True
        return self._feed_usage(data)

    # The relay may read better as `if meter.should_forward(data): ...`; it is the same one call.
    should_forward = feed

    def _feed_usage(self, data: bytes) -> bool:
        try:
            doc = orjson.loads(data)
        except orjson.JSONDecodeError:
            return True
        if not isinstance(doc, Mapping):
            return True
        usage = usage_from_body(doc)
        choices = doc.get("choices")
        usage_only = isinstance(choices, list) and not choices
        if self._cap is not None:
            tokens = self.answer_tokens + _answer_tokens(doc)
            if usage is not None and not usage_only and usage.completion_tokens > tokens:
                tokens = usage.completion_tokens  # running totals (vLLM's continuous usage stats)
            if tokens > self._cap:
                self.over_cap = True
                return False
            self.answer_tokens = tokens
        if usage is not None:
            self._reported = usage if self._reported is None else self._reported.merged(usage)
            if usage_only or _is_last(doc):
                self._final = True
        if not usage_only:
            self._texts.extend(completion_texts(doc))
            return True
        return self.client_wants_usage

    def _compact(self) -> None:
        """Boil the kept raw chunks down to their generated text, one string per compaction."""
        pieces: list[str] = []
        for data in self._pending:
            try:
                doc = orjson.loads(data)
            except orjson.JSONDecodeError:
                continue
            if not isinstance(doc, dict):
                continue
            try:  # the common chat chunk: one choice whose delta holds only content
                delta = doc["choices"][0]["delta"]
                if len(doc["choices"]) == 1 and delta.keys() <= _CONTENT_ONLY:
                    content = delta.get("content")
                    if isinstance(content, str):
                        pieces.append(content)
                    continue
            except (KeyError, IndexError, TypeError, AttributeError):
                pass
            pieces.extend(completion_texts(doc))
        self._pending.clear()
        self._pending_bytes = 0
        if pieces:
            self._texts.append("".join(pieces))

    @property
    def reported(self) -> Usage | None:
        """What the upstream reported so far (possibly partial), or None."""
        return self._reported

    @property
    def complete(self) -> bool:
        """Whether the upstream's final usage report has been seen."""
        return self._final

    def text(self) -> str:
        """The generated text relayed so far (content, reasoning, tool-call arguments)."""
        self._compact()
        if len(self._texts) > 1:
            self._texts = ["".join(self._texts)]
        return self._texts[0] if self._texts else ""

    def usage(
        self,
        counter: CountsTokens,
        request_body: Mapping[str, Any] | None = None,
        model: str | None = None,
    ) -> Usage:
        """The stream's usage, to call once when it ends, however it ended.

        With the upstream's final report, that report. Without it (the client left mid-stream, or
        the upstream never reports), tokens are counted: completion from the text relayed so far,
        prompt from the request unless the upstream already reported it; the result is `estimated`.
        Counting a long text takes a while: call it after the response is finished, not before.
        """
        reported = self._reported
        if reported is not None and self._final:
            return reported
        counted = estimate_usage(counter, None, self.text(), model)
        prompt = reported.prompt_tokens if reported is not None and reported.prompt_tokens else 0
        if not prompt and request_body:
            prompt = counter.count_request(request_body, model)
        if reported is None:
            return Usage(prompt_tokens=prompt, completion_tokens=counted.completion_tokens, estimated=True)
        return Usage(
            prompt_tokens=prompt,
            completion_tokens=max(reported.completion_tokens, counted.completion_tokens),
            cached_tokens=reported.cached_tokens,
            reasoning_tokens=reported.reasoning_tokens,
            estimated=True,
        )


# A token of generated text is rarely longer than this many characters; dividing by it keeps the running
# count at or below the true one, so an upstream that honours max_tokens is never cut short.
_CHARS_PER_TOKEN_AT_MOST = 8


def _answer_tokens(doc: Any) -> int:
    """A lower bound on the tokens of one chunk's generated text: one per chunk that carries text (a
    streaming server sends at least a token per chunk), more for a chunk holding a long text."""
    if not isinstance(doc, Mapping):
        return 0
    try:  # the common chat chunk: one choice whose delta holds only content
        choices = doc["choices"]
        delta = choices[0]["delta"]
        if len(choices) == 1 and delta.keys() <= _CONTENT_ONLY:
            content = delta.get("content")
            chars = len(content) if isinstance(content, str) else 0
            return max(1, chars // _CHARS_PER_TOKEN_AT_MOST) if chars else 0
    except (KeyError, IndexError, TypeError, AttributeError):
        pass
    chars = 0
    for text in completion_texts(doc):
        chars += len(text)
    if not chars:
        return 0
    return max(1, chars // _CHARS_PER_TOKEN_AT_MOST)


def tokens_at_least(data: bytes) -> int:
    """`_answer_tokens` of one event's raw data (0 for anything that is not a JSON object)."""
    try:
        return _answer_tokens(orjson.loads(data))
    except orjson.JSONDecodeError:
        return 0


_LAST_TYPES = frozenset({"message_delta", "response.completed", "response.incomplete", "response.failed"})


def _is_last(doc: Mapping[str, Any]) -> bool:
    """A chunk after which no more usage will come: a finish reason, Anthropic's message_delta, or the
    Responses API's final event (its usage is in the Response it carries)."""
    if doc.get("type") in _LAST_TYPES:
        return True
    choices = doc.get("choices")
    if isinstance(choices, list):
        for choice in choices:
            if isinstance(choice, Mapping) and choice.get("finish_reason"):
                return True
    return False
