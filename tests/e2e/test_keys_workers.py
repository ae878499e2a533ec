"""Keys and limits on a gateway with two worker processes: with Redis, a key change made through one
worker reaches the other at once, and limits stay exact across both; without Redis, limits added
while the gateway runs cannot be exact (each worker counts alone)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx
import pytest
from support.deployment import CHAT_MESSAGES, Deployment, deploy, wait_until

REDIS = "redis://127.0.0.1:6379/7"
CHAT = {"model": "gpt-4o-mini", "messages": CHAT_MESSAGES}
WORKERS = 2


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    deployment = deploy(
        "sqlite", tmp_path_factory.mktemp("workers-redis"), redis=REDIS, server={"workers": WORKERS}
    )
    yield deployment
    deployment.close()


def fresh_connection_statuses(dep: Deployment, key: str, count: int) -> list[int]:
    """Statuses of `count` requests, each on a new connection (so both workers answer some)."""
    statuses = []
    for _ in range(count):
        with httpx.Client(timeout=15) as client:
            statuses.append(
                client.post(
                    f"{dep.gateway.base_url}/chat/completions",
                    json=CHAT,
                    headers={"Authorization": f"Bearer {key}"},
                ).status_code
            )
    return statuses


async def concurrent_statuses(dep: Deployment, key: str, count: int) -> list[int]:
    limits = httpx.Limits(max_connections=count, max_keepalive_connections=count)
    async with httpx.AsyncClient(
        base_url=dep.gateway.base_url, headers={"Authorization": f"Bearer {key}"}, timeout=30, limits=limits
    ) as client:
        responses = await asyncio.gather(*(client.post("/chat/completions", json=CHAT) for _ in range(count)))
    odd = {r.status_code: r.text[:300] for r in responses if r.status_code not in (200, 429)}
    if odd:
        print("answers other than 200/429:", odd)
    return [r.status_code for r in responses]


def test_key_created_through_one_worker_works_on_every_worker_within_one_second(shared: Deployment) -> None:
    key = shared.create_key()["key"]
    wait_until(
        lambda: fresh_connection_statuses(shared, key, 6) == [200] * 6,
        timeout=1.0,
        what="a new key did not work on every worker within 1 s",
    )


def test_key_revoked_through_one_worker_is_refused_on_every_worker_within_one_second(
    shared: Deployment,
) -> None:
    created = shared.create_key()
    wait_until(
        lambda: fresh_connection_statuses(shared, created["key"], 4) == [200] * 4,
        timeout=1.0,
        what="a new key working on every worker",
    )
    assert shared.admin("DELETE", f"/admin/keys/{created['id']}").status_code == 200
    wait_until(
        lambda: fresh_connection_statuses(shared, created["key"], 6) == [401] * 6,
        timeout=1.0,
        what="a revoked key refused on every worker",
    )


async def test_rpm_30_never_admits_more_than_30_across_two_workers_with_redis(shared: Deployment) -> None:
    key = shared.create_key(rpm=30)["key"]
    statuses = await concurrent_statuses(shared, key, 60)
    assert statuses.count(200) <= 30, f"{statuses.count(200)} admitted at rpm 30"
    assert set(statuses) <= {200, 429, 503}, sorted(set(statuses))


async def test_rpm_30_is_exact_across_two_workers_with_redis(shared: Deployment) -> None:
    key = shared.create_key(rpm=30)["key"]
    statuses = await concurrent_statuses(shared, key, 40)
    assert (statuses.count(200), statuses.count(429)) == (30, 10), sorted(set(statuses))


async def test_rpm_added_at_run_time_is_split_across_two_workers_without_redis(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    dep = deploy("sqlite", tmp_path_factory.mktemp("workers-alone"), server={"workers": WORKERS})
    try:
        key = dep.create_key(rpm=30)["key"]
        await asyncio.sleep(1.0)  # the other worker's poll has seen the key
        statuses = await concurrent_statuses(dep, key, 100)
    finally:
        dep.close()
    # Without shared counters each worker holds 30/WORKERS: never more than the limit in total, and (with
    # 100 requests spread over the workers) every worker's share is used.
    admitted = statuses.count(200)
    assert admitted <= 30, f"{admitted} of 100 admitted at rpm 30 by {WORKERS} workers"
    assert admitted >= 30 // WORKERS, f"only {admitted} admitted"
    assert statuses.count(429) == 100 - admitted


async def test_concurrency_2_holds_across_two_workers_with_redis(shared: Deployment) -> None:
    key = shared.create_key(concurrency=2)["key"]
    body = {"model": "slow-model", "messages": CHAT_MESSAGES, "stream": True}
    headers = {"Authorization": f"Bearer {key}"}
    url = f"{shared.gateway.base_url}/chat/completions"
    # Separate clients: separate connections, which the two workers share between them.
    async with (
        httpx.AsyncClient(timeout=30) as a,
        httpx.AsyncClient(timeout=30) as b,
        httpx.AsyncClient(timeout=30) as c,
    ):
        async with (
            a.stream("POST", url, json=body, headers=headers) as one,
            b.stream("POST", url, json=body, headers=headers) as two,
        ):
            assert (one.status_code, two.status_code) == (200, 200)
            third = await c.post(url, json=body, headers=headers)
            assert third.status_code == 429, third.text
            assert third.json()["error"]["code"] == "rate_limit_exceeded"
            await one.aread()
            await two.aread()
        took_ok = (await c.post(url, json={**body, "stream": False}, headers=headers)).status_code
        assert took_ok == 200, "a slot did not come back after the streams ended"
