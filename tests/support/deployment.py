"""A running gateway with a store, an admin key and the stand-in upstreams: what the key and limit
e2e tests share.

`deploy(database, ...)` starts the real gateway on a config whose `database:` is a SQLite file or a
fresh PostgreSQL database (created from `postgres`, dropped by `close()`), so the same tests prove
both stores. Keys are made per test through the admin API or the CLI, so no test sees another's
counters. Every secret issued is remembered, so a test can check that none leaked into the logs.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import orjson

from support.gateway import Gateway, run_cli, start_gateway
from support.pg import create_postgres_database, drop_postgres_database
from support.upstream import Upstream

ADMIN_KEY = "adm-e2e-0123456789abcdef-keys"
PROVIDER_KEY = "sk-upstream-provider-secret-9c1d7e"
CHAT_MESSAGES = [{"role": "user", "content": "hi"}]


@dataclass
class Deployment:
    """A gateway on `database_url`, its stand-in upstreams, and the secrets issued through it."""

    kind: str  # "sqlite" or "postgresql"
    database_url: str
    gateway: Gateway
    upstream: Upstream
    slow_upstream: Upstream
    pg_name: str | None = None
    issued: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return self.gateway.url

    @property
    def admin_auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {ADMIN_KEY}"}

    def admin(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """One admin API call with the admin key."""
        kwargs.setdefault("headers", self.admin_auth)
        return httpx.request(method, f"{self.url}{path}", timeout=15, **kwargs)

    def create_key(self, **fields: Any) -> dict[str, Any]:
        """A new managed key through the admin API (the JSON it answered, secret in `key`)."""
        fields.setdefault("name", f"e2e-{uuid.uuid4().hex[:8]}")
        response = self.admin("POST", "/admin/keys", json=fields)
        assert response.status_code == 201, f"admin create failed: {response.status_code} {response.text}"
        created = response.json()
        self.issued.append(created["key"])
        return created

    def cli(self, *args: str) -> Any:
        """`sluicegate keys ARGS --config <the gateway's config> --json`, parsed."""
        done = run_cli(
            "keys",
            *args,
            "--config",
            str(self.gateway.config_path),
            "--json",
            cwd=self.gateway.workdir,
            timeout=60,
        )
        assert done.returncode == 0, f"sluicegate keys {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
        value = orjson.loads(done.stdout)
        if args[0] == "create":
            self.issued.append(value["key"])
        return value

    def api_key_rows(self) -> list[dict[str, Any]]:
        """Every row of the `api_keys` table, read straight from the database."""
        if self.kind == "sqlite":
            path = self.database_url.removeprefix("sqlite:///")
            with sqlite3.connect(path) as conn:
                conn.row_factory = sqlite3.Row
                return [dict(row) for row in conn.execute("SELECT * FROM api_keys")]

        async def read() -> list[dict[str, Any]]:
            conn = await asyncpg.connect(self.database_url)
            try:
                return [dict(r) for r in await conn.fetch("SELECT * FROM api_keys")]
            finally:
                await conn.close()

        return asyncio.run(read())

    def restart(self) -> None:
        """Stop the gateway (SIGTERM: it flushes its log) and start it again on the same config."""
        self.gateway.stop()
        self.gateway = start_gateway(self.gateway.config_path.read_text())

    def close(self) -> None:
        self.gateway.stop()
        self.upstream.close()
        self.slow_upstream.close()
        if self.pg_name is not None:
            drop_postgres_database(self.pg_name)


def base_config(
    upstream: Upstream,
    slow: Upstream,
    database_url: str,
    *,
    extra_models: dict[str, Any] | None = None,
    **sections: Any,
) -> dict[str, Any]:
    """Models on the stand-in (`slow-model` on one that streams slowly), an admin key, a store."""
    config: dict[str, Any] = {
        "database": database_url,
        "admin_key": ADMIN_KEY,
        "upstreams": {
            "up": {"base_url": upstream.url, "api_key": PROVIDER_KEY},
            "slow": {"base_url": slow.url, "api_key": PROVIDER_KEY},
        },
        "models": {
            "gpt-4o-mini": "up",
            "gpt-4o": "up/gpt-4o-mini",
            "o1-mini": "up/gpt-4o-mini",
            "text-embedding-3-small": "up",
            "slow-model": "slow/gpt-4o-mini",
        },
        "timeouts": {"connect": 2, "first_byte": 10, "idle": 10, "total": 60},
    }
    config["models"].update(extra_models or {})
    config.update(sections)
    return config


def deploy(
    kind: str,
    workdir: Path,
    *,
    slow_behaviour: str = "slow_stream delay=0.25",
    extra_models: dict[str, Any] | None = None,
    **sections: Any,
) -> Deployment:
    """Start the stand-ins and a gateway whose store is `kind` ("sqlite" or "postgresql")."""
    upstream, slow = Upstream(), Upstream()
    slow.behaviour = slow_behaviour
    pg_name = None
    try:
        if kind == "sqlite":
            url = f"sqlite:///{workdir / 'sluicegate.db'}"
        else:
            pg_name, url = create_postgres_database("sg_e2e_keys")
        gateway = start_gateway(base_config(upstream, slow, url, extra_models=extra_models, **sections))
    except BaseException:
        upstream.close()
        slow.close()
        if pg_name is not None:
            drop_postgres_database(pg_name)
        raise
    return Deployment(kind, url, gateway, upstream, slow, pg_name)


class WaitTimeout(AssertionError):
    """`wait_until`'s predicate stayed false until the deadline (a test failure, with its message)."""


def wait_until(predicate: Any, timeout: float, interval: float = 0.05, what: str = "") -> float:
    """Seconds until `predicate()` was first true; raises `WaitTimeout` if it was not within `timeout`.

    It used to return None on timeout, which a caller that forgot to assert read as success.
    """
    start = time.monotonic()
    while True:
        if predicate():
            return time.monotonic() - start
        waited = time.monotonic() - start
        if waited >= timeout:
            raise WaitTimeout(
                f"{what or 'the condition'} was not true within {timeout} s (waited {waited:.2f} s)"
            )
        time.sleep(interval)
