"""A stand-in upstream whose embeddings mean something: bag-of-words vectors.

The ordinary stand-in (support/upstream.py) answers /v1/embeddings with a hash of the whole text, so
two prompts one word apart are as far apart as any two. For the semantic cache, this one counts the
words instead: every word (lower-cased, punctuation stripped) adds 1 to the dimension its hash picks,
so the cosine similarity of two texts is about the share of words they have in common. "Please
summarise the report in three bullet points" and the same with "short" added are ~0.97 similar; a
text with three of sixteen words changed is ~0.8; unrelated texts are near 0. Chat answers are the
ordinary stand-in's (`Echo: <last user text> #1 #2 #3`), and `.requests` counts every call.
"""

from __future__ import annotations

import hashlib
import math
import re
from typing import Any

from aiohttp import web

from support.upstream import Behaviour, RecordedRequest, Upstream

DIM = 256
WORD = re.compile(r"[a-z0-9']+")


def bag_of_words(text: str, dim: int = DIM) -> list[float]:
    vector = [0.0] * dim
    for word in WORD.findall(text.lower()):
        vector[int.from_bytes(hashlib.blake2b(word.encode(), digest_size=4).digest(), "big") % dim] += 1.0
    return vector


def cosine(a: str, b: str) -> float:
    va, vb = bag_of_words(a), bag_of_words(b)
    dot = sum(x * y for x, y in zip(va, vb, strict=True))
    na, nb = math.sqrt(sum(x * x for x in va)), math.sqrt(sum(y * y for y in vb))
    return dot / (na * nb) if na and nb else 0.0


class SemanticUpstream(Upstream):
    """The stand-in upstream, with bag-of-words embeddings."""

    def calls(self, path: str) -> int:
        return sum(1 for r in list(self.requests) if r.path == path)

    def embedded(self) -> list[str]:
        """The texts sent to /v1/embeddings, in order."""
        out: list[str] = []
        for r in list(self.requests):
            if r.path == "/v1/embeddings" and isinstance(r.json, dict):
                value = r.json.get("input")
                out.extend([value] if isinstance(value, str) else [str(v) for v in value or ()])
        return out

    async def _embeddings_answer(
        self, request: web.Request, record: RecordedRequest, behaviour: Behaviour
    ) -> web.StreamResponse:
        body: dict[str, Any] = record.json if isinstance(record.json, dict) else {}
        inputs = body.get("input")
        texts = [inputs] if isinstance(inputs, str) else [str(x) for x in (inputs or [])]
        data = [
            {"object": "embedding", "index": i, "embedding": bag_of_words(t)} for i, t in enumerate(texts)
        ]
        tokens = sum(len(t.split()) for t in texts)
        payload = {
            "object": "list",
            "data": data,
            "model": body.get("model") or "embedder",
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }
        return self._json(payload, behaviour)
