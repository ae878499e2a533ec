"""Plain records shared by the store, the policy, the limiter wiring and metering.

They are frozen dataclasses with slots: cheap to build on the hot path, hashable, and free of any
database or HTTP type, so the sans-IO core can use them without importing the store's engine.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Short endpoint names a key may be limited to; anything else is a `/v1/...` path prefix.
ENDPOINT_NAMES: dict[str, tuple[str, ...]] = {
    "chat": ("/v1/chat/completions",),
    "completions": ("/v1/completions",),
    "embeddings": ("/v1/embeddings",),
    "images": ("/v1/images",),
    "audio": ("/v1/audio",),
    "moderations": ("/v1/moderations",),
    "models": ("/v1/models",),
    "files": ("/v1/files", "/v1/uploads"),
    "rerank": ("/v1/rerank",),
    "messages": ("/v1/messages",),
}


@dataclass(frozen=True, slots=True)
class KeyLimits:
    """Numeric limits of one key; None means unlimited."""

    rpm: int | None = None
    rpd: int | None = None
    tpm: int | None = None
    concurrency: int | None = None
    budget_tokens_day: int | None = None
    budget_tokens_month: int | None = None
    budget_tokens_total: int | None = None
    budget_usd_day: float | None = None
    budget_usd_month: float | None = None
    budget_usd_total: float | None = None

    def is_empty(self) -> bool:
        return all(getattr(self, f) is None for f in self.__slots__)


@dataclass(frozen=True, slots=True)
class KeyRecord:
    """One API key as the gateway sees it: who, what it may call, and how much.

    `key_hash` is the lowercase hex SHA-256 of the whole secret. The secret itself is never kept:
    issued keys carry 190+ bits of entropy, so a fast hash is enough to make a leaked table useless,
    and it lets the hot path find a key with one dictionary lookup.
    """

    id: str
    name: str
    key_hash: str
    prefix: str  # non-secret leading characters, e.g. "sk-sg-AbCd", to recognise a key in lists
    owner: str = ""
    enabled: bool = True
    expires_at: float | None = None  # epoch seconds, UTC
    revoked_at: float | None = None
    models: tuple[str, ...] = ()  # exact names or globs ("gpt-4o*"); empty = every model
    endpoints: tuple[str, ...] = ()  # short names (ENDPOINT_NAMES) or "/v1/..." prefixes; empty = all
    networks: tuple[str, ...] = ()  # CIDRs the client must come from; empty = anywhere
    limits: KeyLimits = field(default_factory=KeyLimits)
    store_bodies: bool = False  # opt-in: keep request/response bodies in the log (redacted)
    cache: str | None = None  # the response cache for this key: "on", "off", or None (the config's)
    source: str = "store"  # "store" (managed) or "config" (static, from the YAML file)
    created_at: float = 0.0
    updated_at: float = 0.0
    user_id: str | None = None  # tenancy: the user the key belongs to (docs/tenancy.md)
    team_id: str | None = None  # ... or the team; a team key is charged to the team's balance

    @property
    def balance_owner(self) -> str | None:
        """The balance this key's requests are charged to: "team:<id>", "user:<id>", or None."""
        if self.team_id:
            return f"team:{self.team_id}"
        if self.user_id:
            return f"user:{self.user_id}"
        return None


@dataclass(slots=True)
class RequestRecord:
    """One line of the request log, built on the request path and written in batches off it.

    Not frozen: one is built per request, and a frozen dataclass's __init__ (object.__setattr__ per
    field) cost ~4 us against ~1 us. Nothing mutates a record after it is queued.
    """

    request_id: str
    ts: float  # epoch seconds when the request arrived
    key_id: str | None
    key_name: str | None
    endpoint: str  # "/v1/chat/completions"
    model_requested: str | None
    model_served: str | None
    upstream: str | None
    channel: str | None
    status: int
    error_type: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    reasoning_tokens: int = 0
    usage_estimated: bool = False  # counted by the gateway's tokenizer, not reported upstream
    cost: float = 0.0
    currency: str = "USD"
    latency_ms: float = 0.0
    ttft_ms: float | None = None
    stream: bool = False
    client_ip: str | None = None
    request_body: str | None = None  # only for keys with store_bodies, after redaction
    response_body: str | None = None
    # Set by the log sink off the request path: unique per record, so a batch written twice (a retry
    # after a commit whose answer was lost, a spill file replayed twice) is stored and counted once.
    record_id: str | None = None
    usage_clamped: bool = False  # a figure was out of bounds (clamped) or the record was repaired
    cache_hit: bool = False  # answered from the response cache (cache/): no upstream call
    tokens_saved: int = 0  # a hit: the tokens the cached answer's upstream call used
    cost_saved: float = 0.0  # a hit: what that call cost, in `currency`
    # Tenancy: the balance charged ("user:<id>" / "team:<id>") and how much, in integer micro-units of
    # the balance's currency; the log writer adds the ledger entry in the same transaction.
    charge_owner: str | None = None
    charge: int = 0
