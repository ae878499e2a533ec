"""The tables as the running code sees them (SQLAlchemy Core).

Migrations in `migrations/versions/` create and change these tables; this module describes the
head revision, and a test checks that the two agree. Times are epoch seconds (double precision)
like the records; list fields are JSON text so the same schema works on SQLite and PostgreSQL.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

# SQLite only auto-increments an INTEGER PRIMARY KEY (the rowid alias), not BIGINT.
BigIntId = BigInteger().with_variant(Integer(), "sqlite")

metadata = MetaData()

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("owner", String(200), nullable=False, server_default=""),
    Column("key_hash", String(64), nullable=False),
    Column("prefix", String(16), nullable=False),
    Column("enabled", Boolean, nullable=False, server_default="1"),
    Column("expires_at", Float, nullable=True),
    Column("revoked_at", Float, nullable=True),
    Column("models", Text, nullable=False, server_default="[]"),
    Column("endpoints", Text, nullable=False, server_default="[]"),
    Column("networks", Text, nullable=False, server_default="[]"),
    Column("rpm", Integer, nullable=True),
    Column("rpd", Integer, nullable=True),
    Column("tpm", BigInteger, nullable=True),
    Column("concurrency", Integer, nullable=True),
    Column("budget_tokens_day", BigInteger, nullable=True),
    Column("budget_tokens_month", BigInteger, nullable=True),
    Column("budget_tokens_total", BigInteger, nullable=True),
    Column("budget_usd_day", Float, nullable=True),
    Column("budget_usd_month", Float, nullable=True),
    Column("budget_usd_total", Float, nullable=True),
    Column("store_bodies", Boolean, nullable=False, server_default="0"),
    Column("cache", String(8), nullable=True),  # migration 0006: "on", "off", or NULL (the config's)
    Column("user_id", String(32), nullable=True),  # migration 0007: the user or team the key belongs to
    Column("team_id", String(32), nullable=True),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Index("ix_api_keys_key_hash", "key_hash", unique=True),
)

# One row (id = 1) whose value is bumped in every transaction that changes a key.
revision = Table(
    "revision",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("value", BigInteger, nullable=False),
)

request_logs = Table(
    "request_logs",
    metadata,
    Column("id", BigIntId, primary_key=True, autoincrement=True),
    Column("request_id", String(64), nullable=False),
    Column("ts", Float, nullable=False),
    Column("key_id", String(64), nullable=True),
    Column("key_name", String(200), nullable=True),
    Column("endpoint", String(200), nullable=False),
    Column("model_requested", String(200), nullable=True),
    Column("model_served", String(200), nullable=True),
    Column("upstream", String(200), nullable=True),
    Column("channel", String(200), nullable=True),
    Column("status", Integer, nullable=False),
    Column("error_type", String(100), nullable=True),
    Column("prompt_tokens", BigInteger, nullable=False, server_default="0"),
    Column("completion_tokens", BigInteger, nullable=False, server_default="0"),
    Column("cached_tokens", BigInteger, nullable=False, server_default="0"),
    Column("reasoning_tokens", BigInteger, nullable=False, server_default="0"),
    Column("usage_estimated", Boolean, nullable=False, server_default="0"),
    Column("cost", Float, nullable=False, server_default="0"),
    Column("currency", String(8), nullable=False, server_default="USD"),
    Column("latency_ms", Float, nullable=False, server_default="0"),
    Column("ttft_ms", Float, nullable=True),
    Column("stream", Boolean, nullable=False, server_default="0"),
    Column("client_ip", String(64), nullable=True),
    Column("request_body", Text, nullable=True),
    Column("response_body", Text, nullable=True),
    Column("record_id", String(64), nullable=True),
    Column("usage_clamped", Boolean, nullable=False, server_default="0"),
    # Migration 0006: answered from the response cache, with what the upstream call would have used.
    Column("cache_hit", Boolean, nullable=False, server_default="0"),
    Column("tokens_saved", BigInteger, nullable=False, server_default="0"),
    Column("cost_saved", Float, nullable=False, server_default="0"),
    # Migration 0007: the balance charged ("user:<id>" / "team:<id>") and how much, in micro-units.
    Column("charge_owner", String(48), nullable=True),
    Column("charge", BigInteger, nullable=False, server_default="0"),
    Index("ix_request_logs_ts", "ts"),
    Index("ix_request_logs_record_id", "record_id", unique=True),
    Index("ix_request_logs_key_id_ts", "key_id", "ts"),
)

# Aggregates per UTC day, kept by the log writer in the same transaction as the log rows.
# key_id and model are "" rather than NULL when unknown: NULLs never collide in a unique key,
# so ON CONFLICT would add a row per batch instead of adding to the existing one.
usage_daily = Table(
    "usage_daily",
    metadata,
    Column("day", Date, primary_key=True),
    Column("key_id", String(64), primary_key=True),
    Column("model", String(200), primary_key=True),
    Column("currency", String(8), primary_key=True),
    Column("key_name", String(200), nullable=False, server_default=""),
    Column("requests", BigInteger, nullable=False, server_default="0"),
    Column("errors", BigInteger, nullable=False, server_default="0"),
    Column("prompt_tokens", BigInteger, nullable=False, server_default="0"),
    Column("completion_tokens", BigInteger, nullable=False, server_default="0"),
    Column("cached_tokens", BigInteger, nullable=False, server_default="0"),
    Column("reasoning_tokens", BigInteger, nullable=False, server_default="0"),
    Column("cost", Float, nullable=False, server_default="0"),
    Column("cache_hits", BigInteger, nullable=False, server_default="0"),  # migration 0006
    Column("tokens_saved", BigInteger, nullable=False, server_default="0"),
    Column("cost_saved", Float, nullable=False, server_default="0"),
    Index("ix_usage_daily_key_id_day", "key_id", "day"),
)

# Responses API state the gateway keeps for upstreams that serve only chat (docs/responses.md): the
# Response object (for GET) and the conversation that leads to it (for previous_response_id), per key,
# until expires_at (purged with the request log's retention).
responses = Table(
    "responses",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("key_id", String(64), nullable=False, server_default=""),
    Column("created_at", Float, nullable=False),
    Column("expires_at", Float, nullable=False),
    Column("response", Text, nullable=False),
    Column("items", Text, nullable=False),
    Index("ix_responses_expires_at", "expires_at"),
)

# The operator's console (migration 0003): what the admin API and CLI add beside the YAML file.
# Row 2 of `revision` counts their changes. Non-secret fields are JSON text; provider keys and
# headers are one encrypted blob (`secrets`, see store/crypto.py) with their masks in `secrets_hint`.
config_upstreams = Table(
    "config_upstreams",
    metadata,
    Column("name", String(200), primary_key=True),
    Column("data", Text, nullable=False, server_default="{}"),
    Column("secrets", Text, nullable=True),
    Column("secrets_hint", Text, nullable=False, server_default="{}"),
    Column("enabled", Boolean, nullable=False, server_default="1"),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
)

config_models = Table(
    "config_models",
    metadata,
    Column("name", String(200), primary_key=True),
    Column("channels", Text, nullable=False, server_default="[]"),
    Column("enabled", Boolean, nullable=False, server_default="1"),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
)

# A person's switch on a channel (by the name GET /admin/channels reports), whoever defined it.
config_channels = Table(
    "config_channels",
    metadata,
    Column("name", String(400), primary_key=True),
    Column("enabled", Boolean, nullable=False, server_default="1"),
    Column("updated_at", Float, nullable=False),
)

config_prices = Table(
    "config_prices",
    metadata,
    Column("model", String(200), primary_key=True),
    Column("data", Text, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
)

admin_audit = Table(
    "admin_audit",
    metadata,
    Column("id", BigIntId, primary_key=True, autoincrement=True),
    Column("ts", Float, nullable=False),
    Column("actor", String(200), nullable=False),
    Column("action", String(50), nullable=False),
    Column("target_kind", String(50), nullable=False),
    Column("target", String(400), nullable=False),
    Column("before", Text, nullable=True),
    Column("after", Text, nullable=True),
    Index("ix_admin_audit_ts", "ts"),
)

# Files, uploads and batches created through the gateway on a shared provider account (migration 0005):
# who made each one, so lists show only one's own and another key's id is not found. `data` is the
# provider's object as last seen (JSON text); a batch also keeps what it used and when it was charged.
owned_objects = Table(
    "owned_objects",
    metadata,
    Column("id", String(200), primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("channel", String(200), nullable=False, server_default=""),
    Column("key_id", String(64), nullable=False),
    Column("user_id", String(64), nullable=True),
    Column("team_id", String(64), nullable=True),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Column("state", String(32), nullable=False, server_default=""),
    Column("purpose", String(64), nullable=True),
    Column("data", Text, nullable=False, server_default="{}"),
    Column("prompt_tokens", BigInteger, nullable=False, server_default="0"),
    Column("completion_tokens", BigInteger, nullable=False, server_default="0"),
    Column("cost", Float, nullable=False, server_default="0"),
    Column("currency", String(8), nullable=False, server_default=""),
    Column("charged_at", Float, nullable=True),
    Index("ix_owned_objects_key_kind_created", "key_id", "kind", "created_at"),
    Index("ix_owned_objects_kind_charged", "kind", "charged_at"),
)

# Named leases: one holder at a time across workers and nodes (the batch poller's), until expires_at.
leases = Table(
    "leases",
    metadata,
    Column("name", String(100), primary_key=True),
    Column("holder", String(200), nullable=False),
    Column("expires_at", Float, nullable=False),
)


def _owner_limits() -> list[Column[int]]:
    """Rates and concurrency of a user or team over all its keys (null: none), held like a key's."""
    return [
        Column("rpm", Integer, nullable=True),
        Column("rpd", Integer, nullable=True),
        Column("tpm", BigInteger, nullable=True),
        Column("concurrency", Integer, nullable=True),
    ]


# Tenancy (migration 0007, docs/tenancy.md). Money is integer micro-units of the balance's currency
# (1 CNY = 1_000_000): sums are exact, so the ledger always adds up to the balance.
users = Table(
    "users",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("password_hash", Text, nullable=True),  # argon2id (store/passwords.py); never returned
    Column("role", String(16), nullable=False, server_default="member"),
    Column("group_name", String(64), nullable=False, server_default="default"),
    Column("team_id", String(32), nullable=True),
    Column("disabled", Boolean, nullable=False, server_default="0"),
    *_owner_limits(),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    # Migration 0008: the single sign-on identity (OIDC issuer and subject) the user signs in as, if any.
    Column("sso_issuer", String(300), nullable=True),
    Column("sso_subject", String(255), nullable=True),
    Index("ix_users_name", "name", unique=True),
    Index("ix_users_sso", "sso_issuer", "sso_subject", unique=True),
)

teams = Table(
    "teams",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("group_name", String(64), nullable=False, server_default="default"),
    *_owner_limits(),
    Column("created_at", Float, nullable=False),
    Index("ix_teams_name", "name", unique=True),
)

team_members = Table(
    "team_members",
    metadata,
    Column("team_id", String(32), primary_key=True),
    Column("user_id", String(32), primary_key=True),
    Column("role", String(16), nullable=False, server_default="member"),
)

groups = Table(
    "groups",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("ratio", Float, nullable=False, server_default="1"),
    Column("description", Text, nullable=False, server_default=""),
)

# The models a group may see; a group with no rows sees every model.
group_models = Table(
    "group_models",
    metadata,
    Column("group_name", String(64), primary_key=True),
    Column("model", String(200), primary_key=True),
)

# `amount` is the balance; `spent` the total ever charged, so amount + spent is everything credited
# (the limiter's limit, which charges in flight do not move: see server/tenancy.py).
balances = Table(
    "balances",
    metadata,
    Column("owner_kind", String(8), primary_key=True),
    Column("owner_id", String(32), primary_key=True),
    Column("currency", String(8), nullable=False),
    Column("amount", BigInteger, nullable=False, server_default="0"),
    Column("spent", BigInteger, nullable=False, server_default="0"),
    Column("updated_at", Float, nullable=False),
)

ledger = Table(
    "ledger",
    metadata,
    Column("id", BigIntId, primary_key=True, autoincrement=True),
    Column("owner_kind", String(8), nullable=False),
    Column("owner_id", String(32), nullable=False),
    Column("kind", String(16), nullable=False),  # charge, topup, redeem, refund
    Column("amount", BigInteger, nullable=False),  # signed: charges are negative
    Column("balance_after", BigInteger, nullable=False),
    Column("reason", Text, nullable=False, server_default=""),
    Column("request_id", String(64), nullable=True),
    Column("actor", String(200), nullable=False, server_default=""),
    Column("created_at", Float, nullable=False),
    Index("ix_ledger_owner", "owner_kind", "owner_id", "id"),
)

# Codes are kept as SHA-256 hashes (they carry 144 random bits); the plaintext is shown once.
redemption_codes = Table(
    "redemption_codes",
    metadata,
    Column("code_hash", String(64), primary_key=True),
    Column("prefix", String(16), nullable=False),
    Column("batch_id", String(32), nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("currency", String(8), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("expires_at", Float, nullable=True),
    Column("redeemed_by", String(32), nullable=True),
    Column("redeemed_at", Float, nullable=True),
    Index("ix_redemption_codes_batch", "batch_id"),
)

# Portal sign-ins (docs/tenancy.md): the SHA-256 of each session token, its user and its expiry.
sessions = Table(
    "sessions",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("user_id", String(32), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("expires_at", Float, nullable=False),
    Index("ix_sessions_expires_at", "expires_at"),
)

# Single sign-on logins under way (migration 0008, portal/oidc.py): one row per started login, keyed by
# the SHA-256 of its `state`, deleted when the callback uses it (or once expired). In the database so the
# provider's redirect may land on any gateway node; the browser that started it holds `binding`'s
# preimage in a cookie, so a login started by someone else cannot be finished in this browser.
oidc_logins = Table(
    "oidc_logins",
    metadata,
    Column("state_hash", String(64), primary_key=True),
    Column("binding_hash", String(64), nullable=False),
    Column("nonce", String(100), nullable=False),
    Column("verifier", String(128), nullable=False),
    Column("redirect_uri", Text, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("expires_at", Float, nullable=False),
    Index("ix_oidc_logins_expires_at", "expires_at"),
)
