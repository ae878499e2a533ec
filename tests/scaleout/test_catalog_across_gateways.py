"""Catalog changes reach every worker of every gateway: two gateways of two workers each, on one
PostgreSQL and one Redis. An upstream and model created through one gateway's admin API serve through
the other's every worker within a couple of seconds, and a deleted model is refused everywhere as fast.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest
from scaleout_kit import (
    ADMIN_KEY,
    ManagedKey,
    admin_create_key,
    scaleout_config,
    start_gateways,
    stop_all,
    wait_for_workers,
)
from support.deployment import wait_until
from support.gateway import Gateway
from support.upstream import Upstream

MASTER_KEY = "master-scaleout-0123456789abcdef"
PROVIDER_SECRET = "sk-catalog-scaleout-secret-1c9e"
ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}
WITHIN_S = 5.0  # the poll is 0.5 s and Redis wakes nodes at once; slack for a loaded 2-core machine


@pytest.fixture(scope="module")
def stand_in() -> Iterator[Upstream]:
    with Upstream() as up:
        yield up


@pytest.fixture(scope="module")
def gateways(stand_in: Upstream, pg_url: str, redis_url: str) -> Iterator[list[Gateway]]:
    config = scaleout_config(
        stand_in.url,
        database=pg_url,
        redis=redis_url,
        admin_key=ADMIN_KEY,
        master_key=MASTER_KEY,
        server={"workers": 2},
    )
    started = start_gateways(config, 2)
    for gw in started:
        wait_for_workers(gw, 2)
    yield started
    stop_all(started)


def statuses_everywhere(
    gateways: list[Gateway], key: ManagedKey, model: str, per_gateway: int = 6
) -> list[int]:
    """Statuses of requests on fresh connections (so every worker answers some) to every gateway."""
    out = []
    for gw in gateways:
        for _ in range(per_gateway):
            with httpx.Client(timeout=10) as client:
                answer = client.post(
                    f"{gw.base_url}/chat/completions",
                    json={"model": model, "messages": [{"role": "user", "content": "hi"}]},
                    headers=key.auth,
                )
            out.append(answer.status_code)
    return out


def test_a_route_created_on_one_gateway_serves_on_every_worker_of_both(
    gateways: list[Gateway], stand_in: Upstream
) -> None:
    first, _ = gateways
    key = admin_create_key(first)
    up, model = f"up-{uuid.uuid4().hex[:6]}", f"live-{uuid.uuid4().hex[:6]}"
    created = httpx.post(
        f"{first.url}/admin/upstreams",
        json={"name": up, "base_url": stand_in.url, "api_key": PROVIDER_SECRET},
        headers=ADMIN,
        timeout=10,
    )
    assert created.status_code == 201, created.text
    routed = httpx.post(
        f"{first.url}/admin/models",
        json={"name": model, "channels": [{"upstream": up, "model": "gpt-4o-mini"}]},
        headers=ADMIN,
        timeout=10,
    )
    assert routed.status_code == 201, routed.text
    took = wait_until(lambda: statuses_everywhere(gateways, key, model) == [200] * 12, timeout=WITHIN_S)
    assert took is not None, f"not served everywhere within {WITHIN_S} s"
    print(f"new route served by every worker of both gateways after {took:.2f} s")
    assert stand_in.last.authorization == f"Bearer {PROVIDER_SECRET}"

    deleted = httpx.delete(f"{gateways[1].url}/admin/models/{model}", headers=ADMIN, timeout=10)
    assert deleted.status_code == 200, deleted.text
    gone = wait_until(lambda: statuses_everywhere(gateways, key, model) == [404] * 12, timeout=WITHIN_S)
    assert gone is not None, f"a deleted model was still served somewhere after {WITHIN_S} s"
    print(f"deleted route refused everywhere after {gone:.2f} s")
    assert all(PROVIDER_SECRET not in gw.logs() for gw in gateways)
