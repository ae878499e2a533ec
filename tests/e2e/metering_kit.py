"""What the metering end-to-end tests share: a database to log into (SQLite file or a fresh
PostgreSQL database), reading `request_logs` straight from it (not through the gateway's own
store code), and waiting for the log writer's next flush.

Not a test module; the metering tests import it (tests/e2e is on sys.path under pytest's default
import mode).
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import asyncpg
from support.pg import fresh_postgres_database as _fresh_postgres_database

# Keys clients use (static keys in the config; their store ids are "cfg-<name>").
PROVIDER_KEY = "sk-upstream-metering-provider-5e1d0c77"


def client_key(name: str) -> str:
    return f"sk-meter-{name}-client-key-4b9e21"


def key_id(name: str) -> str:
    return f"cfg-{name}"


def fresh_postgres_database() -> AbstractContextManager[str]:
    return _fresh_postgres_database("sg_meter")


class LogTable:
    """The `request_logs` table of one database, read with plain SQL (sqlite3 or asyncpg)."""

    def __init__(self, url: str) -> None:
        self.url = url

    @property
    def is_sqlite(self) -> bool:
        return self.url.startswith("sqlite")

    def query(self, sql: str, *args: Any) -> list[dict[str, Any]]:
        """Rows as dicts; `sql` uses `?` placeholders (rewritten to `$n` for PostgreSQL)."""
        if self.is_sqlite:
            path = self.url.split(":///", 1)[1]
            try:
                conn = sqlite3.connect(path, timeout=10)
            except sqlite3.OperationalError:
                return []
            conn.row_factory = sqlite3.Row
            try:
                return [dict(r) for r in conn.execute(sql, args).fetchall()]
            except sqlite3.OperationalError as exc:
                if "no such table" in str(exc):
                    return []
                raise
            finally:
                conn.close()
        parts = sql.split("?")
        pg_sql = "".join(p + (f"${i + 1}" if i < len(parts) - 1 else "") for i, p in enumerate(parts))

        async def fetch() -> list[dict[str, Any]]:
            conn = await asyncpg.connect(self.url)
            try:
                return [dict(r) for r in await conn.fetch(pg_sql, *args)]
            finally:
                await conn.close()

        return asyncio.run(fetch())

    def execute(self, sql: str, *args: Any) -> None:
        if self.is_sqlite:
            conn = sqlite3.connect(self.url.split(":///", 1)[1], timeout=10)
            try:
                conn.execute(sql, args)
                conn.commit()
            finally:
                conn.close()
            return
        parts = sql.split("?")
        pg_sql = "".join(p + (f"${i + 1}" if i < len(parts) - 1 else "") for i, p in enumerate(parts))

        async def run() -> None:
            conn = await asyncpg.connect(self.url)
            try:
                await conn.execute(pg_sql, *args)
            finally:
                await conn.close()

        asyncio.run(run())

    def rows(self, where: str = "1=1", *args: Any) -> list[dict[str, Any]]:
        return self.query(f"SELECT * FROM request_logs WHERE {where} ORDER BY id", *args)

    def for_key(self, name: str) -> list[dict[str, Any]]:
        return self.rows("key_id = ?", key_id(name))

    def by_request_id(self, request_id: str) -> dict[str, Any] | None:
        found = self.rows("request_id = ?", request_id)
        return found[0] if found else None

    def count(self, where: str = "1=1", *args: Any) -> int:
        return int(self.query(f"SELECT COUNT(*) AS n FROM request_logs WHERE {where}", *args)[0]["n"])


def wait_until(predicate: Callable[[], Any], timeout: float = 10.0, interval: float = 0.1) -> Any:
    """Poll `predicate()` until it returns something truthy or `timeout` passes; return its last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)


def wait_for_rows(table: LogTable, key: str, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
    """The log rows of key `key` once there are at least `count` (the writer flushes on an interval)."""
    wait_until(lambda: len(table.for_key(key)) >= count, timeout)
    got = table.for_key(key)
    assert len(got) >= count, (
        f"only {len(got)} of {count} requests of key {key!r} were logged within {timeout} s"
    )
    return got


def wait_for_request(table: LogTable, request_id: str, timeout: float = 10.0) -> dict[str, Any]:
    row = wait_until(lambda: table.by_request_id(request_id), timeout)
    assert row is not None, f"request {request_id} was not logged within {timeout} s"
    return row


def json_lines(text: str) -> list[Any]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


# -- the metered gateway's configuration ------------------------------------------------------------

# Key names; each test drives its own key so that its rows and aggregates are its own.
KEY_NAMES = (
    "exact",
    "streams",
    "estimate",
    "llama",
    "abandon",
    "costs",
    "tail",
    "metrics",
    "logs",
    "nobodies",
)
BODIES_KEY = "bodies"
LIMITED_KEY = "limited"
LIMITED_RPM = 2

USD_PRICE = {"input": 0.15, "output": 0.60, "currency": "USD"}
CNY_PRICE = {"input": 4.0, "output": 12.0, "currency": "CNY"}


def metering_config(
    upstream_url: str, database: str, *, flush_interval_s: float = 0.2, **sections: Any
) -> dict[str, Any]:
    """A gateway over one stand-in upstream with metering on and a short flush interval.

    Routes: `gpt-4o-mini` (priced in USD), `house-model` (priced in CNY, served as `house-v2`),
    `local-llama` (the llamacpp preset on the stand-in: no usage on streams), `flaky-model` and
    `locked-model` (upstreams of their own, for failures). `sections` replace top-level sections.
    """
    keys: list[dict[str, Any]] = [{"key": client_key(n), "name": n} for n in KEY_NAMES]
    keys.append({"key": client_key(BODIES_KEY), "name": BODIES_KEY, "store_bodies": True})
    keys.append({"key": client_key(LIMITED_KEY), "name": LIMITED_KEY, "rpm": LIMITED_RPM})
    config: dict[str, Any] = {
        "database": database,
        "keys": keys,
        "upstreams": {
            "up": {"base_url": upstream_url, "api_key": PROVIDER_KEY},
            "llama": {"preset": "llamacpp", "base_url": upstream_url},
            "flaky": {"base_url": upstream_url, "api_key": PROVIDER_KEY},
            "locked": {"base_url": upstream_url, "api_key": PROVIDER_KEY},
        },
        "models": {
            "gpt-4o-mini": "up",
            "house-model": "up/house-v2",
            "local-llama": "llama/llama-3.1-8b",
            "flaky-model": "flaky/gpt-4o-mini",
            "locked-model": "locked/gpt-4o-mini",
        },
        "prices": {"gpt-4o-mini": USD_PRICE, "house-v2": CNY_PRICE},
        "metering": {"flush_interval_s": flush_interval_s},
        "timeouts": {"connect": 2, "first_byte": 5, "idle": 5, "total": 30},
        "routing": {
            "max_attempts": 1,
            "breaker": {"failures": 1000, "cooldown_s": 0.1, "max_cooldown_s": 0.1},
        },
    }
    config.update(sections)
    return config


def auth(name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {client_key(name)}"}


def chat(text: str, model: str = "gpt-4o-mini", **extra: Any) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": text}], **extra}
