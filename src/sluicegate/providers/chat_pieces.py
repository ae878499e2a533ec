"""Small pieces of the canonical chat shape that every native translation reads or builds.

Anthropic, Gemini and Bedrock each turn chat messages into their own parts and their usage back into
OpenAI's; the text of a chat content field and the usage object with cache figures are the same for
all of them, so they live here once.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def count(value: Any) -> int:
    """A token count from a provider's answer: a positive int, else 0 (never a bool, float or junk)."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def texts(content: Any) -> list[str]:
    """The text pieces of a chat `content` field: a non-empty string, or the text parts of a list."""
    if isinstance(content, str):
        return [content] if content else []
    if not isinstance(content, list):
        return []
    return [p["text"] for p in content if isinstance(p, Mapping) and isinstance(p.get("text"), str)]


def cached_usage(uncached_input: int, output: int, cache_read: int, cache_write: int) -> dict[str, Any]:
    """OpenAI's usage from a provider that reports cache reads and writes beside the uncached input
    (Anthropic, Bedrock): prompt_tokens is all three; the cache figures keep Anthropic's names, which
    metering prices (reads at 0.1×, writes at 1.25× the input price)."""
    prompt = uncached_input + cache_read + cache_write
    return {
        "prompt_tokens": prompt,
        "completion_tokens": output,
        "total_tokens": prompt + output,
        "prompt_tokens_details": {"cached_tokens": cache_read},
        "cache_read_input_tokens": cache_read,
        "cache_creation_input_tokens": cache_write,
    }
