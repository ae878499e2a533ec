"""The admin endpoints the console adds, on a running gateway over SQLite and PostgreSQL: the request
log searched by the database (filters, text, pages, one request in detail, CSV) and each key's limits
with what the limiter holds against them now."""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from support.deployment import ADMIN_KEY, Deployment, deploy, wait_until

SQLITE_ONLY = pytest.mark.parametrize("dep", ["sqlite"], indirect=True)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def dep(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    deployment = deploy(
        request.param, tmp_path_factory.mktemp(request.param), metering={"flush_interval_s": 0.2}
    )
    yield deployment
    deployment.close()


def chat(dep: Deployment, key: str, model: str = "gpt-4o-mini", text: str = "hi") -> httpx.Response:
    return httpx.post(
        f"{dep.gateway.base_url}/chat/completions",
        json={"model": model, "messages": [{"role": "user", "content": text}]},
        headers={"Authorization": f"Bearer {key}"},
        timeout=15,
    )


def requests_of(dep: Deployment, query: str) -> list[dict[str, Any]]:
    response = dep.admin("GET", f"/admin/requests?{query}")
    assert response.status_code == 200, response.text
    return list(response.json()["data"])


def logged(dep: Deployment, query: str, count: int) -> list[dict[str, Any]]:
    """The rows for `query` once `count` are there (the log is written in batches)."""
    found: list[dict[str, Any]] = []

    def ready() -> bool:
        found[:] = requests_of(dep, query)
        return len(found) >= count

    assert wait_until(ready, 10) is not None, f"{query}: {len(found)} rows, wanted {count}"
    return found


@pytest.fixture(scope="module")
def traffic(dep: Deployment) -> dict[str, Any]:
    """Two keys: three good requests from one, a refused model and a good one from the other."""
    alpha = dep.create_key(name="console-alpha")
    beta = dep.create_key(name="console-beta", models=["gpt-4o-mini"])
    ids = [chat(dep, alpha["key"], text=f"needle-{n}").headers["x-request-id"] for n in range(3)]
    refused = chat(dep, beta["key"], model="gpt-4o")
    assert refused.status_code in (403, 404), refused.text
    ok = chat(dep, beta["key"])
    logged(dep, f"key={beta['id']}", 2)
    logged(dep, f"key={alpha['id']}", 3)
    return {"alpha": alpha, "beta": beta, "alpha_ids": ids, "refused": refused, "ok": ok}


def test_requests_filter_by_key_newest_first(dep: Deployment, traffic: dict[str, Any]) -> None:
    rows = requests_of(dep, f"key={traffic['alpha']['id']}")
    assert [r["request_id"] for r in rows] == list(reversed(traffic["alpha_ids"]))
    assert all(r["key_name"] == "console-alpha" for r in rows)


def test_requests_filter_by_status_class_and_error_code(dep: Deployment, traffic: dict[str, Any]) -> None:
    beta = traffic["beta"]["id"]
    errors = requests_of(dep, f"key={beta}&status=4xx")
    assert [r["status"] for r in errors] == [traffic["refused"].status_code]
    code = errors[0]["error_type"]
    assert code and requests_of(dep, f"key={beta}&error={code}")[0]["id"] == errors[0]["id"]
    assert [r["status"] for r in requests_of(dep, f"key={beta}&status=2xx")] == [200]
    assert requests_of(dep, f"key={beta}&status=error") == errors


def test_requests_filter_by_model_and_time_range(dep: Deployment, traffic: dict[str, Any]) -> None:
    beta = traffic["beta"]["id"]
    assert [r["model_requested"] for r in requests_of(dep, f"key={beta}&model=gpt-4o")] == ["gpt-4o"]
    future = time.time() + 3600
    assert requests_of(dep, f"key={beta}&since={future}") == []
    assert len(requests_of(dep, f"key={beta}&until=2999-01-01T00:00:00Z")) == 2
    assert requests_of(dep, f"key={beta}&until=2000-01-01T00:00:00Z") == []


def test_requests_search_text_in_names_and_ids(dep: Deployment, traffic: dict[str, Any]) -> None:
    assert {r["key_name"] for r in requests_of(dep, "q=CONSOLE-BE")} == {"console-beta"}
    wanted = traffic["alpha_ids"][1]
    assert [r["request_id"] for r in requests_of(dep, f"q={wanted}")] == [wanted]
    assert requests_of(dep, "q=100%25_sure") == []  # % and _ are literal, not wildcards


def test_requests_pages_go_back_with_next_before(dep: Deployment, traffic: dict[str, Any]) -> None:
    key = traffic["alpha"]["id"]
    first = dep.admin("GET", f"/admin/requests?key={key}&limit=2").json()
    assert first["has_more"] is True and len(first["data"]) == 2
    rest = dep.admin("GET", f"/admin/requests?key={key}&limit=2&before={first['next_before']}").json()
    ids = [r["request_id"] for r in first["data"] + rest["data"]]
    assert ids == list(reversed(traffic["alpha_ids"]))


def test_a_request_in_detail_and_in_the_list(dep: Deployment, traffic: dict[str, Any]) -> None:
    (row,) = requests_of(dep, f"request_id={traffic['ok'].headers['x-request-id']}")
    assert row["has_request_body"] is False and "request_body" not in row
    detail = dep.admin("GET", f"/admin/requests/{row['id']}").json()
    assert detail["request_id"] == row["request_id"]
    assert (detail["prompt_tokens"], detail["status"]) == (row["prompt_tokens"], 200)
    assert "request_body" in detail and "latency_ms" in detail and "ttft_ms" in detail


def test_stored_bodies_are_in_the_detail_and_searchable_on_request(dep: Deployment) -> None:
    keeper = dep.create_key(name="console-bodies", store_bodies=True)
    chat(dep, keeper["key"], text="haystack-marker-7731")
    (row,) = logged(dep, f"key={keeper['id']}", 1)
    assert row["has_request_body"] is True
    detail = dep.admin("GET", f"/admin/requests/{row['id']}").json()
    assert "haystack-marker-7731" in detail["request_body"]
    assert requests_of(dep, "q=haystack-marker-7731") == []  # bodies only when asked
    assert [r["id"] for r in requests_of(dep, "q=haystack-marker-7731&bodies=1")] == [row["id"]]


def test_csv_export_has_the_filtered_rows_and_a_header(dep: Deployment, traffic: dict[str, Any]) -> None:
    response = dep.admin("GET", f"/admin/requests.csv?key={traffic['alpha']['id']}")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert "attachment" in response.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert [r["request_id"] for r in rows] == list(reversed(traffic["alpha_ids"]))
    assert {r["key_name"] for r in rows} == {"console-alpha"} and "request_body" not in rows[0]


@SQLITE_ONLY
def test_requests_refuse_malformed_filters(dep: Deployment) -> None:
    for query, code in [
        ("status=teapot", "invalid_status"),
        ("limit=0", "invalid_limit"),
        ("since=yesterday-ish", "invalid_time"),
    ]:
        response = dep.admin("GET", f"/admin/requests?{query}")
        assert response.status_code == 400, query
        assert response.json()["error"]["code"] == code
    assert dep.admin("GET", "/admin/requests/999999999").status_code == 404
    assert dep.admin("GET", "/admin/requests.csv", headers={}).status_code == 401


# -- quotas ------------------------------------------------------------------------------------------


def key_quotas(dep: Deployment, key_id: str) -> dict[str, Any]:
    answer = dep.admin("GET", f"/admin/quotas?key={key_id}").json()
    (row,) = answer["data"]
    return dict(row["limits"])


def test_quotas_report_rate_use_and_budget_spent_per_key(dep: Deployment) -> None:
    limited = dep.create_key(name="console-limited", rpm=50, budget_tokens=10_000, budget_period="day")
    for _ in range(3):
        assert chat(dep, limited["key"]).status_code == 200
    limits = key_quotas(dep, limited["id"])
    assert limits["rpm"]["limit"] == 50 and limits["rpm"]["kind"] == "rate"
    assert 2.5 <= limits["rpm"]["used"] <= 3  # a request a minute: 3 used, refilling at 50/min
    budget = limits["budget_tokens_day"]
    assert budget["limit"] == 10_000 and budget["period"] == "day"
    assert budget["used"] == 3 * (4 + 4)  # the stand-in reports 4 prompt + 4 completion tokens


def test_quotas_leave_out_keys_without_limits_and_name_no_secret(
    dep: Deployment, traffic: dict[str, Any]
) -> None:
    answer = dep.admin("GET", "/admin/quotas")
    assert answer.status_code == 200
    body = answer.text
    assert traffic["alpha"]["id"] not in body
    assert traffic["alpha"]["key"] not in body and ADMIN_KEY not in body
    assert set(answer.json()) >= {"data", "shared", "workers"}


def test_reading_quotas_consumes_nothing(dep: Deployment) -> None:
    tight = dep.create_key(name="console-tight", rpm=2)
    for _ in range(5):
        key_quotas(dep, tight["id"])
    assert [chat(dep, tight["key"]).status_code for _ in range(3)] == [200, 200, 429]
    assert key_quotas(dep, tight["id"])["rpm"]["used"] >= 1.9


@SQLITE_ONLY
def test_a_switched_off_channel_is_still_listed_so_it_can_be_switched_on(dep: Deployment) -> None:
    """Disabled channels leave the routes; GET /admin/channels names them apart."""
    name = "slow/gpt-4o-mini"
    assert dep.admin("POST", f"/admin/channels/{name}/disable").status_code == 200
    try:
        listed = dep.admin("GET", "/admin/channels").json()
        assert name in listed["disabled_channels"]
        assert name not in [c["name"] for c in listed["channels"]]
    finally:
        assert dep.admin("POST", f"/admin/channels/{name}/enable").status_code == 200
    listed = dep.admin("GET", "/admin/channels").json()
    assert listed["disabled_channels"] == [] and name in [c["name"] for c in listed["channels"]]
