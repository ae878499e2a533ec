"""The Settings model: every field of the YAML file, with its default and its rule.

Pydantic validates the shape; `load.py` maps each validation error back to the file's line. Every model
forbids unknown fields, so a typo (`base_ur`) is an error that names itself rather than a silent default.
"""

from __future__ import annotations

import ipaddress
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


def check_cidrs(cidrs: list[str]) -> list[str]:
    """Each entry must be an IPv4 or IPv6 network (a bare address is a /32 or /128)."""
    for cidr in cidrs:
        ipaddress.ip_network(cidr, strict=False)
    return cidrs


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Timeouts(_Strict):
    """Seconds. Each one fails with its own error so a user knows which knob to turn."""

    connect: float = Field(10.0, gt=0, description="TCP (and TLS) connect to the upstream")
    first_byte: float = Field(120.0, gt=0, description="request sent -> first byte of the answer")
    idle: float = Field(120.0, gt=0, description="longest gap between two chunks of a stream")
    total: float = Field(900.0, gt=0, description="whole request, streams included")


class PartialTimeouts(_Strict):
    connect: float | None = Field(None, gt=0)
    first_byte: float | None = Field(None, gt=0)
    idle: float | None = Field(None, gt=0)
    total: float | None = Field(None, gt=0)

    def over(self, base: Timeouts) -> Timeouts:
        return Timeouts(**{**base.model_dump(), **self.model_dump(exclude_none=True)})


class UpstreamConfig(_Strict):
    """One provider account (or self-hosted server) the gateway forwards to."""

    preset: str | None = None
    base_url: str | None = None
    api_key: str | None = None
    api_keys: list[str] = Field(default_factory=list, description="several keys used in turn")
    auth: (
        Literal["bearer", "api-key", "x-api-key", "x-goog-api-key", "google-oauth", "aws-sigv4", "none"]
        | None
    ) = None
    headers: dict[str, str] = Field(default_factory=dict, description="extra headers sent upstream")
    api_version: str | None = Field(None, description="Azure OpenAI api-version")
    timeouts: PartialTimeouts = Field(default_factory=PartialTimeouts)
    rpm: int | None = Field(None, gt=0, description="requests per minute this account may take")
    tpm: int | None = Field(None, gt=0, description="tokens per minute this account may take")
    reasoning_effort: bool | None = Field(
        None, description="send Anthropic thinking/effort as reasoning_effort; default: the preset's"
    )
    content_as_string: bool | None = Field(
        None, description="join text-only content lists into one string; default: the preset's"
    )
    max_output_tokens: int | None = Field(
        None, gt=0, description="lower a chat request's max_tokens to this (the upstream's own limit)"
    )
    reasoning_history: bool | None = Field(
        None,
        description="pass earlier tool-call turns' reasoning back as reasoning_content; default: the preset's",
    )
    project: str | None = Field(None, description="Vertex AI: the Google Cloud project")
    region: str | None = Field(None, description="Vertex AI: the region (us-east5, europe-west1, global...)")
    credentials_file: str | None = Field(
        None, description="Vertex AI: a service-account JSON file, turned into OAuth tokens"
    )
    aws_access_key_id: str | None = Field(None, description="Bedrock: access key id (default: the AWS chain)")
    aws_secret_access_key: str | None = Field(None, description="Bedrock: secret access key")
    aws_session_token: str | None = Field(None, description="Bedrock: session token, for temporary keys")
    responses: Literal["native", "translate"] | None = Field(
        None,
        description="/v1/responses: passed through (native) or translated onto chat completions; "
        "default native only for presets whose provider serves it (openai, azure, xai)",
    )

    @field_validator("base_url")
    @classmethod
    def _url(cls, v: str | None) -> str | None:
        if v is not None and not v.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return v.rstrip("/") if v else v


class ChannelConfig(_Strict):
    """One way to serve a public model name: an upstream, its model name there, weight, priority."""

    upstream: str
    model: str | None = Field(None, description="the upstream's name for the model; default: the public name")
    weight: int = Field(1, ge=0)
    priority: int = Field(0, ge=0)
    rpm: int | None = Field(None, gt=0, description="requests per minute through this channel")
    tpm: int | None = Field(None, gt=0, description="tokens per minute through this channel")


def _channel_from_string(text: str) -> dict[str, Any]:
    """'upstream' or 'upstream/model name there' (the model part may itself contain slashes)."""
    upstream, _, model = text.partition("/")
    return {"upstream": upstream, "model": model or None}


def normalise_route(value: Any) -> Any:
    """The three accepted forms of a route (string, mapping, list of either) as a list of mappings."""
    items = value if isinstance(value, list) else [value]
    return [_channel_from_string(i) if isinstance(i, str) else i for i in items]


class KeyConfig(_Strict):
    """A static key written in the file. Same fields as a managed key (see docs/keys.md)."""

    key: str = Field(min_length=8)
    name: str
    owner: str = ""
    enabled: bool = True
    expires: str | None = Field(None, description="ISO date/time, UTC")
    models: list[str] = Field(default_factory=list)
    endpoints: list[str] = Field(default_factory=list)
    networks: list[str] = Field(default_factory=list, description="CIDRs the client must come from")
    rpm: int | None = Field(None, gt=0)
    rpd: int | None = Field(None, gt=0)
    tpm: int | None = Field(None, gt=0)
    concurrency: int | None = Field(None, gt=0)
    budget_tokens_day: int | None = Field(None, gt=0)
    budget_tokens_month: int | None = Field(None, gt=0)
    budget_tokens_total: int | None = Field(None, gt=0)
    budget_usd_day: float | None = Field(None, gt=0)
    budget_usd_month: float | None = Field(None, gt=0)
    budget_usd_total: float | None = Field(None, gt=0)
    store_bodies: bool = False
    cache: Literal["on", "off"] | None = Field(
        None, description="response cache for this key: on, off, or unset (the config decides)"
    )

    _cidrs = field_validator("networks")(lambda cls, v: check_cidrs(v))


class CorsConfig(_Strict):
    allow_origins: list[str] = Field(default_factory=list, description='origins, or ["*"]')
    allow_headers: list[str] = Field(
        default_factory=lambda: [
            # What the official OpenAI and Anthropic SDKs send from a browser page.
            "authorization",
            "content-type",
            "x-api-key",
            "api-key",
            "openai-organization",
            "openai-project",
            "openai-beta",
            "idempotency-key",
            "anthropic-version",
            "anthropic-beta",
            "anthropic-dangerous-direct-browser-access",
            "x-stainless-*",
            # The response cache's per-request directives (docs/cache.md).
            "cache-control",
            "x-sluicegate-cache",
        ]
    )
    max_age: int = 600


class ServerConfig(_Strict):
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    workers: int = Field(1, ge=1, le=256)
    max_body_bytes: int = Field(32 * 1024 * 1024, gt=0)
    body_timeout_s: float = Field(
        60.0, gt=0, description="longest a client may take to send a whole request body (408 after)"
    )
    body_idle_timeout_s: float = Field(
        15.0, gt=0, description="longest gap between two chunks of a request body (408 after)"
    )
    cors: CorsConfig = Field(default_factory=CorsConfig)
    trusted_proxies: list[str] = Field(
        default_factory=list, description="CIDRs whose X-Forwarded-For is believed"
    )
    shutdown_grace_s: float = Field(30.0, ge=0, description="how long streams may finish after SIGTERM")
    max_concurrent_requests: int = Field(
        4096, ge=16, description="requests one worker handles at once (Granian backpressure); more wait"
    )
    upstream_client: Literal["pyreqwest", "aiohttp"] = Field(
        "pyreqwest",
        description=(
            "the HTTP client to upstreams: pyreqwest (less CPU a request) or aiohttp (a client leaving "
            "before the upstream's headers closes the upstream connection at once: for your own GPU "
            "servers that stop generating then)"
        ),
    )

    _cidrs = field_validator("trusted_proxies")(lambda cls, v: check_cidrs(v))

    @field_validator("host")
    @classmethod
    def _address(cls, v: str) -> str:
        """The server binds an IP address, not a name: 'localhost' is 127.0.0.1, other names an error
        (resolving them would bind whatever DNS says today, perhaps a public address)."""
        host = v.strip()
        if host.lower() == "localhost":
            return "127.0.0.1"
        try:
            ipaddress.ip_address(host.strip("[]"))
        except ValueError:
            raise ValueError(
                f"{v!r} is not an IP address: listen on an address such as 127.0.0.1, 0.0.0.0 or ::"
            ) from None
        return host.strip("[]")


class BreakerConfig(_Strict):
    failures: int = Field(5, ge=1)
    cooldown_s: float = Field(10.0, gt=0)
    max_cooldown_s: float = Field(300.0, gt=0)


class RoutingConfig(_Strict):
    strategy: Literal["weighted", "least_busy", "lowest_latency"] = "weighted"
    max_attempts: int = Field(3, ge=1, le=20)
    deadline_s: float = Field(60.0, gt=0, description="give up trying further channels after this long")
    breaker: BreakerConfig = Field(default_factory=BreakerConfig)
    health_check_interval_s: float | None = Field(
        None, gt=0, description="probe idle channels; off by default"
    )


class ModelLimit(_Strict):
    rpm: int | None = Field(None, gt=0)
    tpm: int | None = Field(None, gt=0)
    concurrency: int | None = Field(None, gt=0)


class LimitsConfig(_Strict):
    models: dict[str, ModelLimit] = Field(default_factory=dict, description="limits for all keys together")
    on_backend_error: Literal["closed", "open"] = "closed"
    lease_ttl_s: float = Field(
        60.0, gt=0, description="a crashed worker's concurrency slots return after this"
    )
    default_completion_tokens: int = Field(
        1024,
        ge=0,
        description="tokens reserved for the answer when a request sets no max_tokens; on a key with a "
        "budget, the max_tokens sent upstream for it",
    )


class PriceConfig(_Strict):
    input: float = Field(ge=0, description="per million prompt tokens")
    output: float = Field(ge=0, description="per million completion tokens")
    cached_input: float | None = Field(None, ge=0)
    cache_write_input: float | None = Field(
        None, ge=0, description="per million prompt tokens written to cache"
    )
    currency: Literal["USD", "CNY"] = "USD"


class MeteringConfig(_Strict):
    log_retention_days: int | None = Field(90, ge=1)
    queue_size: int = Field(50_000, ge=100)
    batch_size: int = Field(500, ge=1)
    flush_interval_s: float = Field(
        1.0, gt=0, description="how long a record may wait in memory; what a hard kill can lose"
    )
    retry_max_backoff_s: float = Field(
        5.0, gt=0, description="longest wait between two tries of a log write the store refused"
    )
    spill_dir: str | None = Field(
        None,
        description="where records wait while the store cannot write; default: beside the "
        "SQLite file, or beside the config file",
    )
    spill_max_mb: float = Field(1024.0, ge=0, description="size cap of the spill; 0 turns it off")
    redact_patterns: list[str] = Field(
        default_factory=list, description="extra regexes masked in stored bodies"
    )
    max_body_chars: int = Field(16_384, ge=0)
    tokenizer: Literal["bpe", "heuristic"] = Field(
        "bpe",
        description="counting when an upstream reports no usage: 'bpe' (o200k/cl100k, loaded on "
        "first need, ~75 MB per worker) or 'heuristic' (~4 characters or 1 CJK character per token)",
    )
    exchange_rates: dict[str, float] = Field(
        default_factory=dict,
        description="units of a currency per USD (e.g. CNY: 7.2), overriding the packaged "
        "rates; money budgets (budget_usd_*) convert CNY-priced usage with them",
    )


class ResponsesConfig(_Strict):
    """Responses API state the gateway keeps for chat-only upstreams (docs/responses.md)."""

    ttl_days: float = Field(30, gt=0, description="how long a stored response can be retrieved or continued")
    cache_size: int = Field(10_000, ge=0, description="recent stored responses each worker keeps in memory")


class RegistrationConfig(_Strict):
    """Self-registration in the portal: anyone who can reach /portal/ may make themselves a member."""

    enabled: bool = Field(False, description="let visitors create their own account (off by default)")
    group: str = Field("default", min_length=1, max_length=64, description="price group new users join")
    role: Literal["member", "viewer"] = Field("member", description="role new users get")
    min_password_length: int = Field(
        10, ge=8, le=1024, description="shortest password accepted at registration and password change"
    )
    max_per_address: int = Field(
        5, ge=1, description="registration attempts one client address may make in the window"
    )
    window_s: float = Field(3600.0, gt=0, description="the window registration attempts are counted in")


class OidcConfig(_Strict):
    """Single sign-on with an OpenID Connect provider (authorization code flow, PKCE S256)."""

    issuer: str = Field(
        ..., pattern=r"^https?://", description="the provider's issuer URL (discovery under it)"
    )
    client_id: str = Field(..., min_length=1)
    client_secret: str | None = Field(
        None, description="the client's secret (use ${ENV}); none for a public client (PKCE only)"
    )
    scopes: list[str] = Field(default_factory=lambda: ["openid", "profile", "email"])
    label: str = Field(
        "SSO", min_length=1, max_length=60, description='the button says "Sign in with <label>"'
    )
    name_claim: str = Field(
        "preferred_username", description="the ID token claim a new user's name is taken from"
    )
    create_users: bool = Field(
        False, description="create a user at their first sign-in; off: the operator links users first"
    )
    group: str = Field("default", min_length=1, max_length=64, description="price group of created users")
    role: Literal["member", "viewer"] = Field("member", description="role of created users")
    allowed_domains: list[str] = Field(
        default_factory=list,
        description="when set, only users whose verified e-mail is in one of these domains may sign in",
    )
    allow_password: bool = Field(
        False, description="let a user who has no password (SSO only) set one in the portal"
    )
    redirect_uri: str | None = Field(
        None,
        pattern=r"^https?://",
        description="the callback URL registered at the provider; default: this gateway's "
        "/portal/api/oidc/callback as the browser reached it",
    )

    @field_validator("scopes")
    @classmethod
    def _openid(cls, v: list[str]) -> list[str]:
        if "openid" not in v:
            raise ValueError('scopes must include "openid"')
        return v

    @field_validator("allowed_domains")
    @classmethod
    def _domains(cls, v: list[str]) -> list[str]:
        return [d.strip().lower().lstrip("@") for d in v if d.strip()]


class PortalConfig(_Strict):
    """The self-service portal at /portal/: users sign in with a password or SSO (docs/portal.md)."""

    enabled: bool = Field(False, description="serve the portal at /portal/ (off by default)")
    session_ttl_h: float = Field(12.0, gt=0, description="hours a sign-in lasts before it must be repeated")
    secure_cookie: bool | None = Field(
        None,
        description="mark the session cookie Secure; default: when the request came over https "
        "(X-Forwarded-Proto from a trusted proxy counts)",
    )
    max_keys_per_user: int = Field(5, ge=0, description="keys a user may hold at once (0: none)")
    key_models: list[str] = Field(
        default_factory=list,
        description="models portal keys may be given; empty: every model the user's group sees",
    )
    login_max_failures: int = Field(5, ge=1, description="failed sign-ins per name or address in the window")
    login_window_s: float = Field(300.0, gt=0, description="the window failed sign-ins are counted in")
    registration: RegistrationConfig = Field(default_factory=RegistrationConfig)
    oidc: OidcConfig | None = Field(None, description="single sign-on (OpenID Connect); none: off")


class FilesConfig(_Strict):
    """Files, uploads and batches kept apart per key on the shared provider account (docs/files-and-batches.md)."""

    batch_price_ratio: float = Field(
        0.5, ge=0, description="a completed batch is charged at the model's price times this ratio"
    )
    poll_interval_s: float = Field(
        60.0, gt=0, description="how often the batch poller looks at batches still running"
    )
    lease_ttl_s: float = Field(
        120.0, gt=0, description="how long one gateway holds the poller's lease without renewing it"
    )
    shared_endpoints: Literal["refuse", "relay"] = Field(
        "refuse",
        description="endpoints whose objects the gateway cannot attribute to a key (vector stores, "
        "assistants, fine-tuning...): refuse them (403 endpoint_not_isolated) or relay them shared",
    )
    cache_size: int = Field(50_000, ge=0, description="recent object owners each worker keeps in memory")


class TenancyConfig(_Strict):
    """Users, teams, balances and groups (docs/tenancy.md)."""

    currency: str = Field(
        "USD",
        pattern=r"^[A-Z]{3}$",
        description="the operator's currency for balances, top-ups and codes (e.g. USD, CNY); "
        "prices in other currencies are converted with metering.exchange_rates",
    )


CacheScope = Literal["key", "owner", "global"]


class SemanticRouteConfig(_Strict):
    """The semantic stage for one public model, over `cache.semantic` (unset fields: the section's)."""

    enabled: bool | None = None
    embedding_model: str | None = None
    threshold: float | None = Field(None, gt=0, le=1)
    max_entries: int | None = Field(None, ge=1)


class SemanticConfig(_Strict):
    """The semantic stage of the response cache (docs/cache.md#semantic-cache): after an exact miss,
    the prompt is embedded through one of the gateway's own embedding routes and a stored answer to a
    prompt at least `threshold` similar (cosine) is served. Needs the `semantic` extra."""

    enabled: bool = Field(
        False, description="semantic lookups for every cached chat/Responses/Messages route"
    )
    embedding_model: str | None = Field(
        None, description="the public name of one of the gateway's embedding routes, used to embed prompts"
    )
    threshold: float = Field(
        0.95,
        gt=0,
        le=1,
        description="least cosine similarity between two prompts for a stored answer to serve",
    )
    max_entries: int = Field(
        1000, ge=1, description="prompts kept per partition (scope, model and parameters); oldest dropped"
    )
    max_partitions: int = Field(
        1000, ge=1, description="partitions each worker keeps an index for; least recently used dropped"
    )
    timeout_s: float = Field(
        2.0, gt=0, description="longest wait for the embedding call; past it the lookup is a miss"
    )
    max_memory_mb: float = Field(
        256.0,
        gt=0,
        description="megabytes of prompt vectors each worker keeps; least recently used partitions dropped",
    )


class CacheRouteConfig(_Strict):
    """The response cache for one public model, over the `cache:` section (unset fields: the section's)."""

    enabled: bool | None = None
    ttl_s: float | None = Field(None, gt=0)
    scope: CacheScope | None = None
    deterministic_only: bool | None = None
    semantic: SemanticRouteConfig | None = Field(
        None,
        description="the semantic stage for this model (`true`/`false`, or fields over `cache.semantic`)",
    )

    @field_validator("semantic", mode="before")
    @classmethod
    def _semantic_flag(cls, v: Any) -> Any:
        return {"enabled": v} if isinstance(v, bool) else v


class CacheConfig(_Strict):
    """The exact response cache (docs/cache.md)."""

    enabled: bool = Field(False, description="cache answers (chat, Responses, Messages, embeddings)")
    ttl_s: float = Field(3600.0, gt=0, description="how long an answer is served from the cache")
    scope: CacheScope = Field(
        "key", description="who shares entries: each API key alone, keys of one owner, or everyone"
    )
    backend: Literal["memory", "redis"] | None = Field(
        None, description="memory (per worker) or redis (shared); default redis when `redis:` is set"
    )
    deterministic_only: bool = Field(
        True, description="cache only requests with temperature 0 or a seed (embeddings always)"
    )
    max_entries: int = Field(10_000, ge=1, description="entries each worker keeps (memory backend)")
    max_memory_mb: float = Field(256.0, gt=0, description="answer bytes each worker keeps (memory backend)")
    max_entry_bytes: int = Field(1024 * 1024, ge=1, description="larger answers are not cached")
    semantic: SemanticConfig = Field(
        default_factory=SemanticConfig, description="the semantic stage (after an exact miss)"
    )
    models: dict[str, CacheRouteConfig] = Field(default_factory=dict, description="per public model")

    @model_validator(mode="after")
    def _semantic_model(self) -> CacheConfig:
        top = self.semantic
        if top.enabled and not top.embedding_model:
            raise ValueError("cache.semantic: a semantic cache needs `embedding_model` (an embedding route)")
        for model, route in self.models.items():
            sem = route.semantic
            if sem is None or sem.enabled is False:
                continue
            if not (sem.embedding_model or top.embedding_model):
                raise ValueError(
                    f"cache.models.{model}.semantic: a semantic cache needs `embedding_model` "
                    "(an embedding route), here or under cache.semantic"
                )
        return self


class LoggingConfig(_Strict):
    level: Literal["debug", "info", "warning", "error"] = "info"
    json_format: bool = Field(False, alias="json")


class PassthroughConfig(_Strict):
    """openai-forward style: the client's own provider key is forwarded unchanged."""

    enabled: bool = False
    public: bool = Field(
        False, description="serve pass-through off loopback too (it is an open route: no gateway key)"
    )
    upstream: str | None = Field(None, description="where passthrough requests go")
    path_prefix: str = "/passthrough"
    rpm: int | None = Field(None, gt=0, description="per client key (by hash)")
    tpm: int | None = Field(None, gt=0)


class Settings(_Strict):
    """The whole configuration. Defaults give a working gateway on the built-in mock upstream."""

    server: ServerConfig = Field(default_factory=ServerConfig)
    database: str | None = Field(None, description="sqlite:///path or postgresql://user@host:port/db")
    redis: str | None = Field(
        None, description="redis://host:port/db; shared limits across workers and nodes"
    )
    admin_key: str | None = Field(None, min_length=16, description="guards /admin/*")
    master_key: str | None = Field(
        None,
        min_length=16,
        description="encrypts provider keys added through the admin API or CLI; set it with "
        "SLUICEGATE_MASTER_KEY, the same on every node",
    )
    keys: list[KeyConfig] = Field(default_factory=list)
    upstreams: dict[str, UpstreamConfig] = Field(default_factory=dict)
    models: dict[str, list[ChannelConfig]] = Field(
        default_factory=dict, description="public name -> 'upstream', 'upstream/model', or a list of channels"
    )
    timeouts: Timeouts = Field(default_factory=Timeouts)
    routing: RoutingConfig = Field(default_factory=RoutingConfig)
    limits: LimitsConfig = Field(default_factory=LimitsConfig)
    prices: dict[str, PriceConfig] = Field(default_factory=dict)
    metering: MeteringConfig = Field(default_factory=MeteringConfig)
    responses: ResponsesConfig = Field(default_factory=ResponsesConfig)
    files: FilesConfig = Field(default_factory=FilesConfig)
    portal: PortalConfig = Field(default_factory=PortalConfig)
    logging: LoggingConfig = Field(default_factory=LoggingConfig)
    passthrough: PassthroughConfig = Field(default_factory=PassthroughConfig)
    cache: CacheConfig = Field(default_factory=CacheConfig)
    tenancy: TenancyConfig = Field(default_factory=TenancyConfig)

    # Where the file was read from (not a YAML field): the SQLite default lives next to it.
    source_path: str | None = Field(None, exclude=True)

    @field_validator("models", mode="before")
    @classmethod
    def _routes(cls, v: Any) -> Any:
        if isinstance(v, dict):
            return {str(name): normalise_route(route) for name, route in v.items()}
        return v

    @model_validator(mode="after")
    def _unique_keys(self) -> Settings:
        seen: set[str] = set()
        for i, k in enumerate(self.keys):
            if k.key in seen:
                raise ValueError(f"keys[{i}]: the same key appears twice")
            seen.add(k.key)
        return self

    @model_validator(mode="after")
    def _cache_backend(self) -> Settings:
        if self.cache.backend == "redis" and not self.redis:
            raise ValueError("cache.backend: redis needs the top-level `redis:` URL")
        return self

    def dump_masked(self) -> dict[str, Any]:
        """The settings as data with every secret replaced by a mask (for check-config and /admin)."""
        from sluicegate.config.secrets import mask

        data = self.model_dump(mode="json", by_alias=True)
        for up in data["upstreams"].values():
            if up.get("api_key"):
                up["api_key"] = mask(up["api_key"])
            up["api_keys"] = [mask(k) for k in up.get("api_keys", [])]
            up["headers"] = {h: mask(v) for h, v in up.get("headers", {}).items()}
            for secret in ("aws_secret_access_key", "aws_session_token"):
                if up.get(secret):
                    up[secret] = mask(up[secret])
        for k in data["keys"]:
            k["key"] = mask(k["key"])
        for secret in ("admin_key", "master_key"):
            if data.get(secret):
                data[secret] = mask(data[secret])
        oidc = data["portal"].get("oidc")
        if oidc and oidc.get("client_secret"):
            oidc["client_secret"] = mask(oidc["client_secret"])
        for field in ("database", "redis"):
            if data.get(field):
                data[field] = mask_url_password(data[field])
        return data


def mask_url_password(url: str) -> str:
    """postgresql://u:secret@h/db -> postgresql://u:***@h/db"""
    if "://" not in url or "@" not in url:
        return url
    scheme, rest = url.split("://", 1)
    creds, host = rest.rsplit("@", 1)
    if ":" in creds:
        creds = creds.split(":", 1)[0] + ":***"
    return f"{scheme}://{creds}@{host}"
