"""The built-in `mock` upstream: deterministic OpenAI-shaped answers with no network and no key.

It lets a newcomer see the gateway work in the first minute, and gives tests and benchmarks an upstream
that costs nothing. Answers depend only on the request, so the same question always gets the same reply.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from typing import Any

import orjson

MOCK_MODELS = ("mock-gpt", "mock-gpt-mini", "mock-embed")


def _last_user_text(body: dict[str, Any]) -> str:
    if "messages" in body:
        for msg in reversed(body.get("messages") or []):
            if isinstance(msg, dict) and msg.get("role") == "user":
                content = msg.get("content")
                if isinstance(content, list):
                    return " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
                return str(content or "")
        return ""
    prompt = body.get("prompt", "")
    return prompt if isinstance(prompt, str) else " ".join(map(str, prompt))


def _reply_words(text: str, max_tokens: int | None) -> list[str]:
    words = ["This", "is", "Sluicegate's", "mock", "upstream.", "You", "said:"] + (
        text.split()[:40] or ["nothing."]
    )
    if max_tokens is not None and max_tokens > 0:
        words = words[:max_tokens]
    return words


def _count(text: str) -> int:
    return max(1, len(text.split()))


def _id(prefix: str, body: dict[str, Any]) -> str:
    digest = hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()[:24]
    return f"{prefix}-mock{digest}"


def _max_tokens(body: dict[str, Any]) -> int | None:
    value = body.get("max_completion_tokens", body.get("max_tokens"))
    return value if isinstance(value, int) else None


def chat_completion(body: dict[str, Any], model: str) -> bytes:
    prompt = _last_user_text(body)
    words = _reply_words(prompt, _max_tokens(body))
    prompt_tokens = sum(
        _count(str(m.get("content", ""))) + 3 for m in body.get("messages") or [] if isinstance(m, dict)
    )
    truncated = _max_tokens(body) is not None and len(words) >= (_max_tokens(body) or 0)
    return orjson.dumps(
        {
            "id": _id("chatcmpl", body),
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "system_fingerprint": "fp_mock",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": " ".join(words), "refusal": None},
                    "logprobs": None,
                    "finish_reason": "length" if truncated else "stop",
                }
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": len(words),
                "total_tokens": prompt_tokens + len(words),
                "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
                "completion_tokens_details": {
                    "reasoning_tokens": 0,
                    "audio_tokens": 0,
                    "accepted_prediction_tokens": 0,
                    "rejected_prediction_tokens": 0,
                },
            },
        }
    )


def chat_stream(body: dict[str, Any], model: str) -> Iterator[bytes]:
    """SSE event payloads (without the `data: ` framing), [DONE] last."""
    cid, created = _id("chatcmpl", body), int(time.time())
    words = _reply_words(_last_user_text(body), _max_tokens(body))
    include_usage = bool((body.get("stream_options") or {}).get("include_usage"))

    def chunk(delta: dict[str, Any], finish: str | None) -> bytes:
        out: dict[str, Any] = {
            "id": cid,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "system_fingerprint": "fp_mock",
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }
        if include_usage:
            out["usage"] = None
        return orjson.dumps(out)

    yield chunk({"role": "assistant", "content": ""}, None)
    for i, word in enumerate(words):
        yield chunk({"content": word if i == 0 else " " + word}, None)
    truncated = _max_tokens(body) is not None and len(words) >= (_max_tokens(body) or 0)
    yield chunk({}, "length" if truncated else "stop")
    if include_usage:
        prompt_tokens = sum(
            _count(str(m.get("content", ""))) + 3 for m in body.get("messages") or [] if isinstance(m, dict)
        )
        yield orjson.dumps(
            {
                "id": cid,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "system_fingerprint": "fp_mock",
                "choices": [],
                "usage": {
                    "prompt_tokens": prompt_tokens,
                    "completion_tokens": len(words),
                    "total_tokens": prompt_tokens + len(words),
                },
            }
        )
    yield b"[DONE]"


def completion(body: dict[str, Any], model: str) -> bytes:
    prompt = _last_user_text(body)
    words = _reply_words(prompt, _max_tokens(body))
    p = _count(prompt)
    return orjson.dumps(
        {
            "id": _id("cmpl", body),
            "object": "text_completion",
            "created": int(time.time()),
            "model": model,
            "choices": [{"index": 0, "text": " ".join(words), "logprobs": None, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": p, "completion_tokens": len(words), "total_tokens": p + len(words)},
        }
    )


def embeddings(body: dict[str, Any], model: str) -> bytes:
    inputs = body.get("input", "")
    items = inputs if isinstance(inputs, list) else [inputs]
    data = []
    tokens = 0
    for i, item in enumerate(items):
        text = item if isinstance(item, str) else orjson.dumps(item).decode()
        tokens += _count(text)
        digest = hashlib.sha256(text.encode()).digest()
        vector = [round((b - 127.5) / 127.5, 6) for b in digest[:16]]
        data.append({"object": "embedding", "index": i, "embedding": vector})
    return orjson.dumps(
        {
            "object": "list",
            "data": data,
            "model": model,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }
    )
