"""Tenancy through the real gateway: a key that belongs to a user or team is charged to its balance at
the model's price × the group's ratio, refused 429 insufficient_quota when the balance cannot cover a
request, never overdrawn beyond one reservation with 100 requests in flight (across two gateways on one
Redis), served again after a top-up; a group sees only its models, a disabled user's keys are refused.

Users, groups and top-ups are written straight into the store here, as the CLI does, so the gateways
also prove they pick changes up from the store's revision (docs/tenancy.md).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Iterator
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any, TypeVar

import httpx
import pytest
from support.deployment import CHAT_MESSAGES, Deployment, deploy, wait_until
from support.gateway import start_gateway

from sluicegate.store import Store

T = TypeVar("T")
IN_USD, OUT_USD = 0.01, 0.02  # priced-model: per token
PRICED = {"model": "priced-model", "messages": CHAT_MESSAGES, "max_tokens": 10}


@pytest.fixture(scope="module", params=["memory", "redis"])
def dep(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    sections: dict[str, Any] = {"redis": "redis://127.0.0.1:6379/12"} if request.param == "redis" else {}
    if request.param == "redis":
        import redis

        redis.Redis.from_url(sections["redis"]).flushdb()
    deployment = deploy(
        "sqlite" if request.param == "memory" else "postgresql",
        tmp_path_factory.mktemp(f"tenancy-{request.param}"),
        extra_models={"priced-model": "up/house-model"},
        prices={"house-model": {"input": IN_USD * 1e6, "output": OUT_USD * 1e6}},
        metering={"flush_interval_s": 0.2},
        **sections,
    )
    deployment.mode = request.param  # type: ignore[attr-defined]
    # A gateway with no key at all serves anyone on loopback: one key closes it before the tests' own
    # keys (written to the store, loaded at the next poll) could be mistaken for being served.
    deployment.create_key()
    yield deployment
    deployment.close()


def in_store(dep: Deployment, work: Callable[[Store], Awaitable[T]]) -> T:
    async def run() -> T:
        async with await Store.open(dep.database_url) as store:
            return await work(store)

    return asyncio.run(run())


def tenant(dep: Deployment, *, group: str = "default", topup: str | None = None) -> tuple[str, str]:
    """A new user (in `group`, with `topup` credited) and a key of theirs: (user id, secret)."""

    async def make(store: Store) -> tuple[str, str]:
        user = await store.tenancy.create_user(f"u-{uuid.uuid4().hex[:8]}", group=group)
        if topup is not None:
            await store.tenancy.topup(user.id, int(Decimal(topup) * 1_000_000), "test credit")
        _, secret = await store.keys.create({"name": f"k-{uuid.uuid4().hex[:8]}", "user_id": user.id})
        return user.id, secret

    uid, secret = in_store(dep, make)
    dep.issued.append(secret)
    return uid, secret


def post(dep: Deployment, key: str, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(
        f"{dep.gateway.base_url}/chat/completions",
        json=body,
        headers={"Authorization": f"Bearer {key}"},
        timeout=15,
    )


def served(dep: Deployment, key: str, body: dict[str, Any] = PRICED) -> httpx.Response:
    """The first answer that is not a 401 (the gateway loads a new key within its reload interval)."""
    holder: list[httpx.Response] = []

    def answered() -> bool:
        response = post(dep, key, body)
        holder[:] = [response]
        return response.status_code != 401

    wait_until(answered, timeout=10, interval=0.1, what="the new key being loaded")
    return holder[0]


def balance(dep: Deployment, owner: str) -> tuple[int, list[Any]]:
    async def read(store: Store) -> tuple[int, list[Any]]:
        return (await store.tenancy.balance(owner)).amount, await store.tenancy.ledger(owner, limit=10_000)

    return in_store(dep, read)


def micro(usd: float) -> int:
    return int(Decimal(repr(usd)).scaleb(6).to_integral_value(ROUND_HALF_EVEN))


def test_a_request_is_charged_to_the_users_balance_at_the_group_ratio(dep: Deployment) -> None:
    in_store(dep, lambda s: s.tenancy.set_group("half", ratio=0.5))
    uid, key = tenant(dep, group="half", topup="100")
    answer = served(dep, key)
    assert answer.status_code == 200, answer.text
    usage = answer.json()["usage"]
    expected = micro((usage["prompt_tokens"] * IN_USD + usage["completion_tokens"] * OUT_USD) * 0.5)
    wait_until(lambda: len(balance(dep, uid)[1]) == 2, timeout=10, what="the charge in the ledger")
    amount, entries = balance(dep, uid)
    charge = entries[0]
    assert (charge.kind, charge.amount, charge.reason) == ("charge", -expected, "priced-model")
    assert charge.request_id == answer.headers["x-request-id"]
    assert amount == 100_000_000 - expected == charge.balance_after == sum(e.amount for e in entries)


def test_a_request_the_balance_cannot_cover_is_refused_429_insufficient_quota(dep: Deployment) -> None:
    uid, key = tenant(dep)
    answer = served(dep, key)
    assert answer.status_code == 429
    error = answer.json()["error"]
    assert (error["type"], error["code"]) == ("insufficient_quota", "insufficient_quota")
    assert "balance" in error["message"] and "Top up" in error["message"]
    assert balance(dep, uid) == (0, [])


def test_a_topup_restores_service(dep: Deployment) -> None:
    uid, key = tenant(dep)
    assert served(dep, key).status_code == 429
    in_store(dep, lambda s: s.tenancy.topup(uid, 5_000_000, "paid by invoice 42"))
    wait_until(lambda: post(dep, key, PRICED).status_code == 200, timeout=10, what="service after the top-up")


def test_a_model_the_users_group_cannot_see_is_not_found(dep: Deployment) -> None:
    in_store(dep, lambda s: s.tenancy.set_group("narrow", models=["gpt-4o-mini"]))
    _, key = tenant(dep, group="narrow", topup="10")
    answer = served(dep, key, {**PRICED, "model": "gpt-4o"})
    assert answer.status_code == 404
    assert answer.json()["error"]["code"] == "model_not_found"
    assert post(dep, key, {**PRICED, "model": "gpt-4o-mini"}).status_code == 200
    listed = httpx.get(
        f"{dep.gateway.base_url}/models", headers={"Authorization": f"Bearer {key}"}, timeout=10
    )
    assert [m["id"] for m in listed.json()["data"]] == ["gpt-4o-mini"]


def test_a_disabled_users_keys_are_refused(dep: Deployment) -> None:
    uid, key = tenant(dep, topup="10")
    assert served(dep, key).status_code == 200
    in_store(dep, lambda s: s.tenancy.update_user(uid, disabled=True))
    wait_until(
        lambda: post(dep, key, PRICED).status_code == 401, timeout=10, what="the disabled user refused"
    )
    assert post(dep, key, PRICED).json()["error"]["code"] == "account_disabled"


def test_100_requests_in_flight_never_overdraw_beyond_one_reservation(dep: Deployment) -> None:
    uid, key = tenant(dep, topup="2")
    assert served(dep, key).status_code == 200  # the key is loaded everywhere before the rush
    gateways = [dep.gateway]
    if getattr(dep, "mode", "") == "redis":  # two gateways sharing the one Redis and the one store
        gateways.append(start_gateway(dep.gateway.config_path.read_text()))
    try:

        async def rush() -> list[httpx.Response]:
            async with httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=200)) as client:
                return await asyncio.gather(
                    *(
                        client.post(
                            f"{gateways[i % len(gateways)].base_url}/chat/completions",
                            json=PRICED,
                            headers={"Authorization": f"Bearer {key}"},
                        )
                        for i in range(100)
                    )
                )

        answers = asyncio.run(rush())
    finally:
        for extra in gateways[1:]:
            extra.stop()
    statuses = [a.status_code for a in answers]
    assert set(statuses) <= {200, 429}, statuses
    assert statuses.count(429) > 0 and statuses.count(200) > 0
    assert all(a.json()["error"]["code"] == "insufficient_quota" for a in answers if a.status_code == 429)
    ok = statuses.count(200) + 1  # the warm-up request
    wait_until(lambda: len(balance(dep, uid)[1]) == ok + 1, timeout=15, what="every charge in the ledger")
    amount, entries = balance(dep, uid)
    one_reservation = micro(len(httpx.Request("POST", "/", json=PRICED).content) * IN_USD + 10 * OUT_USD)
    assert amount >= -one_reservation
    assert amount == sum(e.amount for e in entries)
    assert sum(1 for e in entries if e.kind == "charge") == ok
