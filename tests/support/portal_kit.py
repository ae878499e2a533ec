"""The self-service portal's test kit: a gateway with the portal on, users made in its store, and a
signed-in HTTP client per user.

Users, codes and top-ups are made through the tenancy store itself (`Store.open` on the gateway's own
database), the way the admin API and CLI make them. Each client sends its own X-Forwarded-For (the
gateway trusts 127.0.0.1 as a proxy here), so login throttling per address can be tried without one
test's failures locking out the next.
"""

from __future__ import annotations

import asyncio
import itertools
import tempfile
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx

from sluicegate.store import Store
from sluicegate.store.ledger import to_micro
from support.deployment import ADMIN_KEY, PROVIDER_KEY
from support.gateway import Gateway, start_gateway
from support.pg import fresh_postgres_database
from support.upstream import Upstream

T = TypeVar("T")
PASSWORD = "correct horse battery"
_addresses = itertools.count(1)


def next_address() -> str:
    n = next(_addresses)
    return f"198.51.100.{n % 250 + 1}" if n < 250 else f"203.0.113.{n % 250 + 1}"


def portal_config(upstream: Upstream, database: str, **portal: Any) -> dict[str, Any]:
    return {
        "admin_key": ADMIN_KEY,
        "database": database,
        "upstreams": {"up": {"base_url": upstream.url, "api_key": PROVIDER_KEY}},
        "models": {"gpt-4o-mini": "up", "gpt-4o": "up/gpt-4o-mini"},
        "metering": {"flush_interval_s": 0.2},
        "server": {"trusted_proxies": ["127.0.0.1/32"]},
        "portal": {"enabled": True, "max_keys_per_user": 3, **portal},
    }


@contextmanager
def database(kind: str) -> Iterator[str]:
    if kind == "postgresql":
        with fresh_postgres_database("sg_portal") as url:
            yield url
    else:
        with tempfile.TemporaryDirectory(prefix="sg-portal-") as tmp:
            yield f"sqlite:///{Path(tmp) / 'sluicegate.db'}"


@dataclass
class Site:
    gateway: Gateway
    database: str

    @property
    def url(self) -> str:
        return self.gateway.url

    def store(self, work: Callable[[Store], Awaitable[T]]) -> T:
        """Run `work(store)` on the gateway's own database."""

        async def run() -> T:
            async with await Store.open(self.database) as store:
                return await work(store)

        # In a thread of its own: Playwright's sync API keeps an event loop running in this one.
        with ThreadPoolExecutor(1) as pool:
            return pool.submit(asyncio.run, run()).result()

    def user(self, name: str, *, password: str | None = PASSWORD, role: str = "member", **kw: Any) -> str:
        async def make(store: Store) -> str:
            return (await store.tenancy.create_user(name, password=password, role=role, **kw)).id

        return self.store(make)

    def topup(self, user_id: str, amount: str) -> None:
        async def credit(store: Store) -> None:
            await store.tenancy.topup(f"user:{user_id}", to_micro(amount), "tests")

        self.store(credit)

    def codes(self, amount: str, count: int = 1) -> list[str]:
        async def make(store: Store) -> list[str]:
            return (await store.tenancy.create_codes(to_micro(amount), count))[1]

        return self.store(make)

    def client(self) -> PortalClient:
        return PortalClient(self)


@contextmanager
def portal_site(
    kind: str, upstream: Upstream, env: dict[str, str] | None = None, **portal: Any
) -> Iterator[Site]:
    with database(kind) as url, start_gateway(portal_config(upstream, url, **portal), env=env) as gateway:
        yield Site(gateway, url)


class PortalClient:
    """One browser's worth of portal calls: a cookie jar and its own client address."""

    def __init__(self, site: Site, address: str | None = None) -> None:
        self.site = site
        self.address = address or next_address()
        self.http = httpx.Client(base_url=site.url, headers={"x-forwarded-for": self.address}, timeout=20)

    def login(self, name: str, password: str = PASSWORD) -> httpx.Response:
        return self.http.post("/portal/api/login", json={"name": name, "password": password})

    def signed_in(self, name: str, password: str = PASSWORD) -> PortalClient:
        response = self.login(name, password)
        assert response.status_code == 200, response.text
        return self

    def get(self, route: str, **params: Any) -> httpx.Response:
        return self.http.get(f"/portal/api/{route}", params=params)

    def post(self, route: str, body: Any = None) -> httpx.Response:
        return self.http.post(f"/portal/api/{route}", json=body if body is not None else {})

    def delete(self, route: str) -> httpx.Response:
        return self.http.delete(f"/portal/api/{route}", headers={"content-type": "application/json"})

    def close(self) -> None:
        self.http.close()


def chat(site: Site, key: str, text: str = "hi", model: str = "gpt-4o-mini") -> httpx.Response:
    return httpx.post(
        f"{site.url}/v1/chat/completions",
        json={"model": model, "messages": [{"role": "user", "content": text}]},
        headers={"Authorization": f"Bearer {key}"},
        timeout=20,
    )
