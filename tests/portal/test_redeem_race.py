"""One code redeemed 20 times at once through the real HTTP endpoints credits exactly once (issue 18).

Two gateways share one database (PostgreSQL, and a SQLite file): sixteen users each press Redeem in the
portal (POST /portal/api/redeem, each with their own session) and four more are redeemed for by the
operator (POST /admin/codes/redeem), the twenty requests spread over both gateways and released
together. Exactly one succeeds, the others are told the code was redeemed; one ledger entry of kind
"redeem" exists across all twenty users, and only the winner's balance moved.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from support.deployment import ADMIN_KEY
from support.gateway import start_gateway
from support.portal_kit import PASSWORD, Site, database, portal_config
from support.upstream import Upstream

from sluicegate.store import Store

PORTAL_USERS, ADMIN_REDEEMS = 16, 4


@pytest.fixture(scope="module", params=["postgresql", "sqlite"])
def nodes(request: pytest.FixtureRequest) -> Iterator[tuple[Site, Site]]:
    with Upstream() as upstream, database(request.param) as url:
        config = portal_config(upstream, url)
        with start_gateway(config) as first, start_gateway(config) as second:
            yield Site(first, url), Site(second, url)


def test_one_code_redeemed_twenty_times_at_once_over_two_gateways_credits_once(
    nodes: tuple[Site, Site],
) -> None:
    first, second = nodes
    sites = [first, second]
    names = [f"racer-{i}" for i in range(PORTAL_USERS + ADMIN_REDEEMS)]

    async def make_users(
        store: Store,
    ) -> list[str]:  # one store for all twenty: each open costs a migration check
        return [(await store.tenancy.create_user(name, password=PASSWORD)).id for name in names]

    ids = first.store(make_users)
    (code,) = first.codes("7.5")
    # Sign the portal users in beforehand (on alternating gateways), so the race is the redemption only.
    portal = [sites[i % 2].client().signed_in(names[i]) for i in range(PORTAL_USERS)]
    start = threading.Barrier(PORTAL_USERS + ADMIN_REDEEMS)

    def by_portal(i: int) -> httpx.Response:
        start.wait()
        return portal[i].post("redeem", {"code": code})

    def by_admin(i: int) -> httpx.Response:
        user_id = ids[PORTAL_USERS + i]
        with httpx.Client(base_url=sites[i % 2].url, timeout=30) as http:
            start.wait()
            return http.post(
                "/admin/codes/redeem",
                json={"code": code, "user_id": user_id},
                headers={"Authorization": f"Bearer {ADMIN_KEY}"},
            )

    with ThreadPoolExecutor(PORTAL_USERS + ADMIN_REDEEMS) as pool:
        futures = [pool.submit(by_portal, i) for i in range(PORTAL_USERS)]
        futures += [pool.submit(by_admin, i) for i in range(ADMIN_REDEEMS)]
        answers = [f.result() for f in futures]
    for client in portal:
        client.close()

    statuses = [a.status_code for a in answers]
    assert statuses.count(200) == 1, [(a.status_code, a.text) for a in answers]
    refused = [a.json()["error"]["code"] for a in answers if a.status_code != 200]
    assert set(refused) == {"code_redeemed"}, refused
    winner = ids[statuses.index(200)]

    async def money(store: Store) -> tuple[dict[str, int], list[tuple[str, str, int]]]:
        balances = {uid: (await store.tenancy.balance(f"user:{uid}")).amount for uid in ids}
        entries = [
            (uid, e.kind, e.amount) for uid in ids for e in await store.tenancy.ledger(f"user:{uid}", 100)
        ]
        return balances, entries

    balances, entries = first.store(money)
    assert entries == [(winner, "redeem", 7_500_000)]
    assert balances == {uid: 7_500_000 if uid == winner else 0 for uid in ids}
