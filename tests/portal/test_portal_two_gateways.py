"""Two gateways on one PostgreSQL database, as two nodes: a portal session made on one is good on the
other, and a key the user revokes through one is refused by the other, the way admin revocations
propagate (the revision poll; no Redis here)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest
from support.gateway import start_gateway
from support.pg import fresh_postgres_database
from support.portal_kit import PASSWORD, Site, chat, portal_config
from support.upstream import Upstream


@pytest.fixture(scope="module")
def nodes() -> Iterator[tuple[Site, Site]]:
    with Upstream() as upstream, fresh_postgres_database("sg_portal2") as url:
        config = portal_config(upstream, url)
        with start_gateway(config) as first, start_gateway(config) as second:
            yield Site(first, url), Site(second, url)


def eventually(check: object, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return True
        time.sleep(0.1)
    return False


def test_a_session_and_a_revocation_reach_the_other_node(nodes: tuple[Site, Site]) -> None:
    first, second = nodes
    user_id = first.user("two-nodes")
    first.topup(user_id, "5")
    client = first.client().signed_in("two-nodes")
    cookie = client.http.cookies["sg_portal"]
    on_second = httpx.get(f"{second.url}/portal/api/me", cookies={"sg_portal": cookie}, timeout=10)
    assert on_second.status_code == 200 and on_second.json()["user"]["id"] == user_id

    created = client.post("keys", {"name": "shared"}).json()
    secret = created["key"]
    assert eventually(lambda: chat(second, secret).status_code == 200)
    assert client.delete(f"keys/{created['id']}").status_code == 200
    assert chat(first, secret).status_code == 401  # the node that revoked: before it answered
    assert eventually(lambda: chat(second, secret).status_code == 401)  # the other: at its next poll

    # Signing out on one node ends the session on the other.
    assert client.post("logout").status_code == 200
    again = httpx.get(f"{second.url}/portal/api/me", cookies={"sg_portal": cookie}, timeout=10)
    assert again.status_code == 401 and again.json()["error"]["code"] == "not_signed_in"
    logs = first.gateway.logs() + second.gateway.logs()
    assert PASSWORD not in logs and secret not in logs and cookie not in logs
