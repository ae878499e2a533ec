"""Embeddings batches cached input by input: a batch with some new inputs sends only those upstream,
and the answer is merged back in the client's order. Pure: splitting, entries and merging."""

from __future__ import annotations

from typing import Any

import orjson

from sluicegate.cache.entry import CacheEntry
from sluicegate.cache.key import embedding_key
from sluicegate.protocol.jsonbytes import dumps_kept

EMBEDDINGS_PATH = "/v1/embeddings"
_NOT_PARAMS = frozenset({"input", "user", "model"})


def inputs_of(payload: dict[str, Any]) -> tuple[list[Any], bool] | None:
    """The batch's inputs and whether the request gave a list; None when there is nothing to split."""
    value = payload.get("input")
    if isinstance(value, str):
        return [value], False
    if isinstance(value, list) and value:
        if all(isinstance(v, int) and not isinstance(v, bool) for v in value):  # one input as tokens
            return [value], False
        return list(value), True
    return None


def input_keys(scope: str, model: str, payload: dict[str, Any], items: list[Any]) -> list[str]:
    params = {k: v for k, v in payload.items() if k not in _NOT_PARAMS}
    return [embedding_key(scope, model, params, item) for item in items]


def split_answer(
    answer: bytes, items: list[Any], model_served: str | None, cost: float, currency: str
) -> list[CacheEntry] | None:
    """One entry per input of an upstream's answer (its usage shared out by input length)."""
    try:
        doc = orjson.loads(answer)
    except orjson.JSONDecodeError:
        return None
    data = doc.get("data") if isinstance(doc, dict) else None
    if not isinstance(data, list) or len(data) != len(items):
        return None
    by_index = sorted(data, key=lambda d: d.get("index", 0) if isinstance(d, dict) else 0)
    usage = doc.get("usage") or {}
    prompt = int(usage.get("prompt_tokens") or 0)
    sizes = [max(1, len(i) if isinstance(i, (str, list)) else 1) for i in items]
    total = sum(sizes)
    entries = []
    for size, item in zip(sizes, by_index, strict=True):
        if not isinstance(item, dict):
            return None
        one = {k: v for k, v in item.items() if k != "index"}
        entries.append(
            CacheEntry(
                path=EMBEDDINGS_PATH,
                body=dumps_kept(one),
                model_served=model_served or doc.get("model"),
                prompt_tokens=round(prompt * size / total),
                cost=cost * size / total,
                currency=currency,
            )
        )
    return entries


def merged_answer(entries: list[CacheEntry], model: str, prompt_tokens: int) -> bytes:
    """The list answer a client reads, from one entry per input, in order."""
    data = []
    for index, entry in enumerate(entries):
        item = orjson.loads(entry.body)
        item["index"] = index
        data.append(item)
    return orjson.dumps(
        {
            "object": "list",
            "data": data,
            "model": model,
            "usage": {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens},
        }
    )
