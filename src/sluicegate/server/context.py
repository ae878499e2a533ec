"""What the shell knows about one request as it moves through the path."""

from __future__ import annotations

import random
import time
from typing import Any

from sluicegate.inbound import DEFAULT_CODEC, SAME_WIRE
from sluicegate.policy.keys import KeyEntry


class RequestIds:
    """Request ids of 96 random bits: unique across nodes, without uuid4's os.urandom call each time.

    Seeded once from the OS; one per worker process (the app owns it), so forked workers never share
    a sequence.
    """

    __slots__ = ("_bits",)

    def __init__(self) -> None:
        self._bits = random.Random(random.SystemRandom().getrandbits(128)).getrandbits

    def new(self) -> str:
        return f"req_{self._bits(96):024x}"


class RequestContext:
    __slots__ = (
        "admission",
        "body_len",
        "cache_hit",
        "channel",
        "channels",
        "charge",
        "charge_owner",
        "client_gone",
        "client_ip",
        "client_payload",
        "client_stream",
        "client_wants_usage",
        "codec",
        "completion_cap",
        "cost_saved",
        "cut_for_shutdown",
        "edge",
        "ending",
        "error_type",
        "estimate_usage",
        "exchange",
        "extra_headers",
        "key",
        "max_tokens_clamp",
        "meter",
        "method",
        "model",
        "origin",
        "path",
        "payload",
        "request_body",
        "request_id",
        "response_body",
        "saved_currency",
        "served_model",
        "slot",
        "started",
        "status",
        "stream",
        "t0",
        "tokens_saved",
        "ttft",
        "upstream",
        "upstream_admission",
        "upstream_path",
        "usage",
    )

    def __init__(self, path: str, method: str, client_ip: str | None, origin: str | None) -> None:
        self.request_id = ""
        self.started = time.time()
        self.t0 = time.perf_counter()
        self.path = path
        self.method = method
        self.client_ip = client_ip
        self.origin = origin
        self.key: KeyEntry | None = None
        self.model: str | None = None
        self.served_model: str | None = None
        self.upstream: str | None = None
        self.channel: str | None = None
        self.stream = False
        self.status = 0
        self.error_type: str | None = None
        self.ttft: float | None = None
        self.usage: Any = None
        self.extra_headers: list[tuple[str, str]] = []
        self.client_gone = False
        self.payload: dict[str, Any] | None = None
        # The client's own request when it was translated (/v1/messages): what the answer must honour.
        self.client_payload: dict[str, Any] | None = None
        self.client_wants_usage = False
        self.admission: Any = None  # the limiter's Admission, settled when the request is over
        self.slot: Any = None  # the key's concurrency slot, taken before the body is read
        self.cut_for_shutdown = False  # ended by the gateway's shutdown after the grace period
        # The client's API (inbound/), chosen once by path, and the edge to the current upstream: the
        # same wire (bytes pass as they are) or a translation onto canonical chat.
        self.codec: Any = DEFAULT_CODEC
        self.edge: Any = SAME_WIRE
        self.exchange: Any = None  # a codec's per-request state (a translated Responses call)
        self.client_stream = False  # what the client asked; `stream` is what the upstream was asked
        self.upstream_path = path  # the path asked of the upstream (differs when translated)
        self.upstream_admission: Any = None  # the upstream account's own rpm/tpm reservation
        self.meter: Any = None  # the StreamMeter of a streamed answer
        # The gateway's own usage count for a stream whose upstream reports none (recording.py), for
        # translators that write their own usage (Anthropic's message_delta).
        self.estimate_usage: Any = None
        self.channels: list[Any] = []
        self.body_len = 0
        self.request_body: str | None = None  # only for keys that opted in, redacted
        self.response_body: str | None = None
        self.max_tokens_clamp: int | None = None  # the max_tokens a budget set for the upstream
        self.completion_cap: int | None = None  # answer tokens reserved (a budget): a stream stops there
        # The response cache (server/cached.py): answered from it, and what the upstream call it
        # replaced used and cost (a partial embeddings hit saves tokens without being a hit).
        self.cache_hit = False
        self.charge_owner: str | None = None  # tenancy: the balance charged, and how much (micro-units)
        self.charge = 0
        self.tokens_saved = 0
        self.cost_saved = 0.0
        self.saved_currency = ""
        self.ending: Any = None  # metering.ending.Ending, when something other than completion ended it

    def elapsed_ms(self) -> float:
        return (time.perf_counter() - self.t0) * 1000.0
