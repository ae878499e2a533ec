"""What the cache keeps and how a request is looked up: the entry, the request, the second stage.

An entry holds the whole answer in the client's protocol (a `chat.completion`, a Response, an Anthropic
message, or one embedding), so a hit is served as it is, or replayed as a stream (cache/replay.py).
The `SecondStage` is the seam a semantic cache plugs into: consulted after an exact miss, fed on store.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson


@dataclass(slots=True)
class CacheEntry:
    """One cached answer. `body` is the answer's JSON bytes in the protocol of `path`."""

    path: str  # the client API the answer is in: "/v1/chat/completions", "/v1/responses", ...
    body: bytes
    model_served: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0  # what the answer cost when it was fetched (the money a hit saves)
    currency: str = ""
    created: float = field(default_factory=time.time)
    # Set on an answer the semantic stage found (cosine similarity of the two prompts); never stored.
    similarity: float | None = None

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def age(self, now: float | None = None) -> int:
        """Seconds since the answer was fetched (the `Age` header)."""
        return max(0, int((now if now is not None else time.time()) - self.created))

    def dumps(self) -> bytes:
        """One line of metadata, a newline, then the answer's own bytes (never re-encoded)."""
        meta = orjson.dumps(
            [
                self.path,
                self.model_served,
                self.prompt_tokens,
                self.completion_tokens,
                self.cost,
                self.currency,
                self.created,
            ]
        )
        return meta + b"\n" + self.body

    @classmethod
    def loads(cls, data: bytes) -> CacheEntry | None:
        """The entry, or None for bytes that are not one (a foreign value under our prefix)."""
        meta, sep, body = data.partition(b"\n")
        if not sep:
            return None
        try:
            path, served, prompt, completion, cost, currency, created = orjson.loads(meta)
        except (orjson.JSONDecodeError, ValueError, TypeError):
            return None
        return cls(
            path, body, served, int(prompt), int(completion), float(cost), str(currency), float(created)
        )


@dataclass(slots=True)
class CacheRequest:
    """A request the cache was asked about, after the inbound codec parsed it.

    `key` is the exact key (cache/key.py); `scope` the tenant part of it (entries are shared only
    within one scope); `payload` the client's request as parsed; `ttl_s` what the route's policy says.
    """

    path: str
    model: str
    payload: dict[str, Any]
    scope: str
    key: str
    stream: bool
    ttl_s: float
    # The server's RequestContext: a stage that calls out on the request's behalf (the semantic
    # stage's embedding call) meters it against the same key.
    context: Any = None


class SecondStage(Protocol):
    """A cache consulted after an exact miss (a semantic cache), and fed every answer stored.

    `applies` says cheaply (no I/O) whether the stage could answer this request;
    `lookup` returns an entry to serve (in the request's protocol, `entry.path == req.path`) or None;
    `store` is called after the exact store, with the same request and entry. Both must never raise
    for a cache problem (log it and answer None): a cache failure is a miss, never a failed request.
    """

    def applies(self, req: CacheRequest) -> Any:
        """Whether `lookup` may do anything for this request (truthy): the request path admits the
        request on its request rates before a stage that applies is asked, so work the stage does
        (an embedding call) is never done for a key over its rate."""
        ...

    async def lookup(self, req: CacheRequest) -> CacheEntry | None: ...

    async def store(self, req: CacheRequest, entry: CacheEntry) -> None: ...
