"""The exact cache key: the canonical request after the inbound codec, inside one scope.

Two requests share a key when they would get the same answer: same client API, same public model,
same messages, tools and every parameter that changes the answer. Fields that do not change it
(`user`, `stream`, `stream_options`, Anthropic's `metadata`) are left out, so a streamed request
finds a non-streamed answer and the other way round. The scope (a key, an owner, or everyone) is part
of the hashed text: no scope can ever read another's entries.
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

# Fields that never change the answer. `stream` is how it is delivered, not what it says.
IGNORED_FIELDS = frozenset({"user", "stream", "stream_options", "metadata", "safety_identifier"})
KEY_PREFIX = "sg:cache:"


def canonical(payload: dict[str, Any], ignored: frozenset[str] = IGNORED_FIELDS) -> dict[str, Any]:
    return {k: v for k, v in payload.items() if k not in ignored}


def exact_key(scope: str, path: str, model: str, payload: dict[str, Any]) -> str:
    """SHA-256 over scope, path, model and the canonical request (sorted keys: order-insensitive)."""
    text = orjson.dumps([scope, path, model, canonical(payload)], option=orjson.OPT_SORT_KEYS)
    return KEY_PREFIX + hashlib.sha256(text).hexdigest()


def embedding_key(scope: str, model: str, params: dict[str, Any], item: Any) -> str:
    """One input of an embeddings batch: the model, the parameters (dimensions, encoding) and the input."""
    text = orjson.dumps([scope, "/v1/embeddings", model, params, item], option=orjson.OPT_SORT_KEYS)
    return KEY_PREFIX + "e:" + hashlib.sha256(text).hexdigest()
