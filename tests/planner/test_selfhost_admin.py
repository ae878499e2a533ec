"""`GET /admin/selfhost` on a running gateway: the dashboard's "Self-host?" page reads the same answer
as `sluicegate plan --from-usage`, from the traffic this gateway has just served."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from support.deployment import CHAT_MESSAGES, Deployment, deploy, wait_until


@pytest.fixture(scope="module")
def dep(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    deployment = deploy("sqlite", tmp_path_factory.mktemp("selfhost"), metering={"flush_interval_s": 0.2})
    yield deployment
    deployment.close()


def _chat(dep: Deployment, key: str) -> int:
    body = {"model": "gpt-4o-mini", "messages": CHAT_MESSAGES}
    r = httpx.post(
        f"{dep.gateway.base_url}/chat/completions",
        json=body,
        headers={"Authorization": f"Bearer {key}"},
        timeout=15,
    )
    return r.status_code


def _answer(dep: Deployment, query: str = "") -> dict[str, Any]:
    r = dep.admin("GET", f"/admin/selfhost{query}")
    assert r.status_code == 200, r.text
    return r.json()


def test_the_selfhost_report_prices_the_traffic_just_served(dep: Deployment) -> None:
    key = dep.create_key()["key"]
    assert [_chat(dep, key) for _ in range(4)] == [200] * 4
    done = wait_until(
        lambda: any(m["model"] == "gpt-4o-mini" and m["requests"] >= 4 for m in _answer(dep)["models"]),
        timeout=10,
    )
    assert done
    a = _answer(dep, "?currency=CNY&engine=sglang")
    (mini,) = [m for m in a["models"] if m["model"] == "gpt-4o-mini"]
    assert (a["currency"], a["engine"], mini["open_model"]) == ("CNY", "sglang", "llama-3.1-8b")
    # the stand-in upstream reports 4 prompt and 4 completion tokens per request, all today (1 day)
    assert (mini["prompt_tokens_per_day"], mini["completion_tokens_per_day"]) == (16, 16)
    assert mini["self_host"] and all(
        {"gpu", "count", "provider", "cost_per_month", "meets_peak"} <= set(r) for r in mini["self_host"]
    )
    assert set(a["total"]) >= {"api_cost_per_month", "best_self_host_cost_per_month"}


def test_the_selfhost_report_needs_the_admin_key(dep: Deployment) -> None:
    r = dep.admin("GET", "/admin/selfhost", headers={})
    assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_admin_key"


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ("?since=yesterday", "invalid_date"),
        ("?engine=tgi", "invalid_engine"),
        ("?map=nonsense", "invalid_map"),
        ("?map=gpt-4o-mini=no-such-model", "invalid_parameter"),
    ],
)
def test_the_selfhost_report_refuses_bad_parameters(dep: Deployment, query: str, code: str) -> None:
    r = dep.admin("GET", f"/admin/selfhost{query}")
    assert r.status_code == 400 and r.json()["error"]["code"] == code
