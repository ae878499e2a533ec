"""The catalog through the admin API on a running gateway, on SQLite and PostgreSQL: upstreams, model
routes, prices, channel operations and the audit log; every change served without a restart, provider
keys encrypted at rest and never returned."""

from __future__ import annotations

import asyncio
import sqlite3
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import asyncpg
import httpx
import orjson
import pytest
from support.deployment import ADMIN_KEY, CHAT_MESSAGES, PROVIDER_KEY, Deployment, deploy, wait_until
from support.upstream import Upstream

MASTER_KEY = "master-e2e-0123456789abcdef-console"
NEW_PROVIDER_KEY = "sk-new-upstream-secret-5f2b8a71c4"
SQLITE_ONLY = pytest.mark.parametrize("dep", ["sqlite"], indirect=True)
CLIENT_KEYS: dict[str, str] = {}


def client_auth(dep: Deployment) -> dict[str, str]:
    return {"Authorization": f"Bearer {CLIENT_KEYS[dep.kind]}"}


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def dep(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    deployment = deploy(request.param, tmp_path_factory.mktemp(request.param), master_key=MASTER_KEY)
    # Once the store has held a key the gateway is closed to keyless callers: every client call uses this.
    CLIENT_KEYS[request.param] = deployment.create_key(name="console-client")["key"]
    yield deployment
    deployment.close()


@pytest.fixture(scope="module")
def extra_upstream() -> Iterator[Upstream]:
    with Upstream() as upstream:
        yield upstream


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def chat(dep: Deployment, model: str, text: str | None = None) -> httpx.Response:
    """A chat request; distinct `text` makes distinct requests (the breakers count a repeat once)."""
    messages = CHAT_MESSAGES if text is None else [{"role": "user", "content": text}]
    return httpx.post(
        f"{dep.gateway.base_url}/chat/completions",
        json={"model": model, "messages": messages},
        headers=client_auth(dep),
        timeout=15,
    )


def assert_error(response: httpx.Response, status: int, code: str, param: str | None = None) -> str:
    assert response.status_code == status, f"expected {status}, got {response.status_code}: {response.text}"
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["code"] == code, error
    if param is not None:
        assert error["param"] == param, error
    return str(error["message"])


def assert_no_secret(text: str) -> None:
    for secret in (NEW_PROVIDER_KEY, PROVIDER_KEY, ADMIN_KEY, MASTER_KEY):
        assert secret not in text


def stored_rows(dep: Deployment, table: str) -> list[dict[str, Any]]:
    if dep.kind == "sqlite":
        with sqlite3.connect(dep.database_url.removeprefix("sqlite:///")) as conn:
            conn.row_factory = sqlite3.Row
            return [dict(r) for r in conn.execute(f"SELECT * FROM {table}")]

    async def read() -> list[dict[str, Any]]:
        conn = await asyncpg.connect(dep.database_url)
        try:
            return [dict(r) for r in await conn.fetch(f"SELECT * FROM {table}")]
        finally:
            await conn.close()

    return asyncio.run(read())


def add_upstream(dep: Deployment, target: Upstream, **fields: Any) -> dict[str, Any]:
    body = {"name": unique("up"), "base_url": target.url, "api_key": NEW_PROVIDER_KEY, **fields}
    response = dep.admin("POST", "/admin/upstreams", json=body)
    assert response.status_code == 201, response.text
    return dict(response.json())


def add_model(dep: Deployment, upstream: str, **fields: Any) -> dict[str, Any]:
    body = {"name": unique("model"), "channels": [{"upstream": upstream, "model": "gpt-4o-mini"}], **fields}
    response = dep.admin("POST", "/admin/models", json=body)
    assert response.status_code == 201, response.text
    return dict(response.json())


# -- served without a restart ---------------------------------------------------------------------------


def test_a_new_upstream_and_model_serve_a_request_without_a_restart(
    dep: Deployment, extra_upstream: Upstream
) -> None:
    pid = dep.gateway.pid
    up = add_upstream(dep, extra_upstream)
    model = add_model(dep, up["name"])
    response = chat(dep, model["name"])
    assert response.status_code == 200, response.text
    assert response.json()["model"]  # an OpenAI chat completion came back
    assert extra_upstream.last.authorization == f"Bearer {NEW_PROVIDER_KEY}"
    assert dep.gateway.pid == pid and dep.gateway.running()


def test_a_new_model_is_listed_by_v1_models(dep: Deployment, extra_upstream: Upstream) -> None:
    up = add_upstream(dep, extra_upstream)
    model = add_model(dep, up["name"])
    listed = httpx.get(f"{dep.gateway.base_url}/models", headers=client_auth(dep), timeout=15).json()
    assert model["name"] in [m["id"] for m in listed["data"]]


def test_a_deleted_model_is_refused_at_once(dep: Deployment, extra_upstream: Upstream) -> None:
    up = add_upstream(dep, extra_upstream)
    model = add_model(dep, up["name"])
    assert dep.admin("DELETE", f"/admin/models/{model['name']}").status_code == 200
    assert_error(chat(dep, model["name"]), 404, "model_not_found")


def test_changing_a_route_moves_traffic_to_the_new_channel(dep: Deployment, extra_upstream: Upstream) -> None:
    first = add_upstream(dep, extra_upstream)
    model = add_model(dep, first["name"])
    with Upstream() as other:
        second = add_upstream(dep, other)
        patched = dep.admin(
            "PATCH",
            f"/admin/models/{model['name']}",
            json={"channels": [{"upstream": second["name"], "model": "gpt-4o-mini", "weight": 3}]},
        )
        assert patched.status_code == 200, patched.text
        assert patched.json()["channels"][0]["weight"] == 3
        assert chat(dep, model["name"]).status_code == 200
        assert len(other.requests) == 1


def test_a_disabled_upstream_stops_serving_and_enabling_it_brings_it_back(
    dep: Deployment, extra_upstream: Upstream
) -> None:
    up = add_upstream(dep, extra_upstream)
    model = add_model(dep, up["name"])
    assert dep.admin("PATCH", f"/admin/upstreams/{up['name']}", json={"enabled": False}).status_code == 200
    assert chat(dep, model["name"]).status_code == 404
    assert dep.admin("PATCH", f"/admin/upstreams/{up['name']}", json={"enabled": True}).status_code == 200
    assert chat(dep, model["name"]).status_code == 200


# -- secrets -----------------------------------------------------------------------------------------------


def test_provider_keys_are_never_returned_only_masked(dep: Deployment, extra_upstream: Upstream) -> None:
    up = add_upstream(
        dep, extra_upstream, api_keys=[NEW_PROVIDER_KEY + "-2"], headers={"x-org": "org-secret-77"}
    )
    assert up["api_key"] and up["api_key"].endswith(f"({len(NEW_PROVIDER_KEY)})")
    responses = [
        dep.admin("GET", "/admin/upstreams"),
        dep.admin("GET", f"/admin/upstreams/{up['name']}"),
        dep.admin("PATCH", f"/admin/upstreams/{up['name']}", json={"rpm": 100}),
        dep.admin("GET", "/admin/audit"),
        dep.admin("GET", "/admin/audit?format=csv"),
        dep.admin("GET", "/admin/audit?format=jsonl"),
    ]
    for response in responses:
        assert response.status_code == 200, response.text
        assert_no_secret(response.text)
        assert "org-secret-77" not in response.text
    assert_no_secret(dep.gateway.logs())


def test_provider_keys_are_encrypted_at_rest(dep: Deployment, extra_upstream: Upstream) -> None:
    up = add_upstream(dep, extra_upstream)
    row = next(r for r in stored_rows(dep, "config_upstreams") if r["name"] == up["name"])
    assert row["secrets"] and row["secrets"].startswith("gAAAA")  # a Fernet token
    assert_no_secret(orjson.dumps({k: str(v) for k, v in row.items()}).decode())
    for audit in stored_rows(dep, "admin_audit"):
        assert_no_secret(orjson.dumps({k: str(v) for k, v in audit.items()}).decode())


def test_a_patch_that_leaves_the_key_out_keeps_it(dep: Deployment, extra_upstream: Upstream) -> None:
    up = add_upstream(dep, extra_upstream)
    model = add_model(dep, up["name"])
    assert dep.admin("PATCH", f"/admin/upstreams/{up['name']}", json={"tpm": 100000}).status_code == 200
    assert chat(dep, model["name"]).status_code == 200
    assert extra_upstream.last.authorization == f"Bearer {NEW_PROVIDER_KEY}"


def test_a_patched_key_is_used_for_the_next_request(dep: Deployment, extra_upstream: Upstream) -> None:
    up = add_upstream(dep, extra_upstream)
    model = add_model(dep, up["name"])
    rotated = NEW_PROVIDER_KEY + "-rotated"
    assert dep.admin("PATCH", f"/admin/upstreams/{up['name']}", json={"api_key": rotated}).status_code == 200
    assert chat(dep, model["name"]).status_code == 200
    assert extra_upstream.last.authorization == f"Bearer {rotated}"


# -- validation and conflicts -------------------------------------------------------------------------------


@SQLITE_ONLY
def test_a_bad_field_is_a_400_naming_its_path(dep: Deployment) -> None:
    up = dep.admin("POST", "/admin/upstreams", json={"name": unique("up"), "base_url": "ftp://x"})
    assert "http" in assert_error(up, 400, "invalid_upstream", "base_url")
    model = dep.admin(
        "POST",
        "/admin/models",
        json={
            "name": unique("m"),
            "channels": [{"upstream": "up"}, {"upstream": "up", "model": "x", "weight": -1}],
        },
    )
    assert_error(model, 400, "invalid_model", "channels[1].weight")
    unknown = dep.admin(
        "POST", "/admin/models", json={"name": unique("m"), "channels": [{"upstream": "nowhere"}]}
    )
    assert_error(unknown, 400, "invalid_model", "channels[0].upstream")
    typo = dep.admin("POST", "/admin/upstreams", json={"name": unique("up"), "base_ur": "http://x"})
    assert_error(typo, 400, "invalid_upstream", "base_ur")


@SQLITE_ONLY
def test_names_from_the_file_are_read_only(dep: Deployment) -> None:
    message = assert_error(dep.admin("PATCH", "/admin/upstreams/up", json={"rpm": 5}), 409, "conflict")
    assert "configuration file" in message
    assert_error(dep.admin("DELETE", "/admin/models/gpt-4o-mini"), 409, "conflict")
    assert_error(
        dep.admin("POST", "/admin/models", json={"name": "gpt-4o", "channels": ["up"]}),
        409,
        "conflict",
        "name",
    )
    listed = dep.admin("GET", "/admin/upstreams").json()["data"]
    assert {"name": "up", "source": "file"}.items() <= next(u for u in listed if u["name"] == "up").items()


@SQLITE_ONLY
def test_an_upstream_in_use_cannot_be_deleted(dep: Deployment, extra_upstream: Upstream) -> None:
    up = add_upstream(dep, extra_upstream)
    model = add_model(dep, up["name"])
    assert model["name"] in assert_error(
        dep.admin("DELETE", f"/admin/upstreams/{up['name']}"), 409, "conflict"
    )
    assert dep.admin("DELETE", f"/admin/models/{model['name']}").status_code == 200
    assert dep.admin("DELETE", f"/admin/upstreams/{up['name']}").status_code == 200
    assert_error(dep.admin("GET", f"/admin/upstreams/{up['name']}"), 404, "upstream_not_found")


@SQLITE_ONLY
def test_a_duplicate_name_is_a_409(dep: Deployment, extra_upstream: Upstream) -> None:
    up = add_upstream(dep, extra_upstream)
    again = dep.admin("POST", "/admin/upstreams", json={"name": up["name"], "base_url": extra_upstream.url})
    assert_error(again, 409, "conflict", "name")


# -- prices ------------------------------------------------------------------------------------------------


def test_a_price_override_prices_the_next_request(dep: Deployment, extra_upstream: Upstream) -> None:
    up = add_upstream(dep, extra_upstream)
    model = add_model(dep, up["name"])
    price = {"model": "gpt-4o-mini", "input": 1000.0, "output": 2000.0}
    # The served (upstream) model is priced; "gpt-4o-mini" is priced by the file? No: only by the packaged
    # table, so the store may override it.
    created = dep.admin("POST", "/admin/prices", json=price)
    assert created.status_code in (200, 201), created.text
    assert {"model": "gpt-4o-mini", "input": 1000.0, "source": "store"}.items() <= created.json().items()
    assert chat(dep, model["name"]).status_code == 200

    def priced() -> bool:
        rows = dep.admin("GET", "/admin/logs?tail=5").json()["data"]
        return any(r.get("model_requested") == model["name"] and r.get("cost", 0) > 0.001 for r in rows)

    assert wait_until(priced, 10) is not None
    assert dep.admin("DELETE", "/admin/prices/gpt-4o-mini").status_code == 200
    assert all(p["model"] != "gpt-4o-mini" for p in dep.admin("GET", "/admin/prices").json()["data"])


# -- channels ----------------------------------------------------------------------------------------------


def test_a_channel_test_reports_latency_and_the_answer(dep: Deployment) -> None:
    response = dep.admin("POST", f"/admin/channels/{quote('up/gpt-4o-mini', safe='')}/test")
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["ok"] is True and result["status"] == 200
    assert result["latency_ms"] >= 0 and isinstance(result["answer"], str)


def test_a_failing_channel_test_reports_the_error(dep: Deployment) -> None:
    dep.upstream.script("status 401")
    try:
        result = dep.admin("POST", "/admin/channels/up/gpt-4o-mini/test").json()
    finally:
        dep.upstream.reset()
    assert result["ok"] is False and result["status"] == 401 and result["error"]
    dep.admin("POST", "/admin/channels/up/gpt-4o-mini/reset")


def test_reset_puts_an_open_channel_back_in_service(dep: Deployment) -> None:
    dep.upstream.behaviour = "fail"
    try:
        for i in range(6):  # six different requests: a channel failing for everyone
            chat(dep, "gpt-4o-mini", f"request {i}")
        state = next(
            c for c in dep.admin("GET", "/admin/channels").json()["channels"] if c["name"] == "up/gpt-4o-mini"
        )
        assert state["state"] != "closed"
    finally:
        dep.upstream.reset()
    reset = dep.admin("POST", "/admin/channels/up%2Fgpt-4o-mini/reset")
    assert reset.status_code == 200, reset.text
    assert reset.json()["state"] == "closed"
    assert chat(dep, "gpt-4o-mini").status_code == 200
    noted = dep.admin("GET", "/admin/audit?kind=channel&target=up/gpt-4o-mini").json()["data"][0]
    assert (
        noted["action"] == "reset"
        and noted["before"]["state"] != "closed"
        and noted["after"]["state"] == "closed"
    )


def test_a_disabled_channel_takes_no_traffic_until_enabled(dep: Deployment, extra_upstream: Upstream) -> None:
    up = add_upstream(dep, extra_upstream)
    with Upstream() as other:
        second = add_upstream(dep, other)
        model = add_model(
            dep,
            up["name"],
            channels=[
                {"upstream": up["name"], "model": "gpt-4o-mini"},
                {"upstream": second["name"], "model": "gpt-4o-mini"},
            ],
        )
        channel = f"{up['name']}/gpt-4o-mini"
        disabled = dep.admin("POST", f"/admin/channels/{channel}/disable")
        assert disabled.status_code == 200 and disabled.json()["enabled"] is False
        assert channel in dep.admin("GET", "/admin/channels").json()["disabled_channels"]
        before = len(extra_upstream.requests)
        for _ in range(4):
            assert chat(dep, model["name"]).status_code == 200
        assert len(extra_upstream.requests) == before and len(other.requests) == 4
        assert dep.admin("POST", f"/admin/channels/{channel}/enable").json()["enabled"] is True
        assert channel in [c["name"] for c in dep.admin("GET", "/admin/channels").json()["channels"]]


@SQLITE_ONLY
def test_an_unknown_channel_is_404(dep: Deployment) -> None:
    assert_error(dep.admin("POST", "/admin/channels/nope/nothing/reset"), 404, "channel_not_found")
    assert_error(dep.admin("POST", "/admin/channels/up/gpt-4o-mini/explode"), 404, "unknown_operation")


# -- audit -------------------------------------------------------------------------------------------------


def test_the_audit_log_says_who_changed_what_before_and_after(
    dep: Deployment, extra_upstream: Upstream
) -> None:
    up = add_upstream(dep, extra_upstream)
    dep.admin("PATCH", f"/admin/upstreams/{up['name']}", json={"rpm": 42})
    entries = dep.admin("GET", f"/admin/audit?target={up['name']}").json()["data"]
    assert [e["action"] for e in entries] == ["update", "create"]  # newest first
    update, create = entries
    assert update["actor"].startswith("admin:") and ADMIN_KEY not in update["actor"]
    assert update["before"]["rpm"] is None and update["after"]["rpm"] == 42
    assert create["before"] is None and create["after"]["name"] == up["name"]
    assert create["after"]["api_key"].endswith(f"({len(NEW_PROVIDER_KEY)})")


@SQLITE_ONLY
def test_the_audit_log_exports_as_csv_and_jsonl(dep: Deployment, extra_upstream: Upstream) -> None:
    add_upstream(dep, extra_upstream)
    csv_answer = dep.admin("GET", "/admin/audit?format=csv")
    assert csv_answer.headers["content-type"].startswith("text/csv")
    assert csv_answer.text.splitlines()[0] == "id,ts,actor,action,target_kind,target,before,after"
    lines = dep.admin("GET", "/admin/audit?format=jsonl").text.splitlines()
    assert lines and all(orjson.loads(line)["actor"].startswith("admin:") for line in lines)


def test_without_a_master_key_a_provider_key_is_refused_and_nothing_stored(
    tmp_path_factory: pytest.TempPathFactory, extra_upstream: Upstream
) -> None:
    plain = deploy("sqlite", tmp_path_factory.mktemp("no-master"))
    try:
        name = unique("up")
        refused = plain.admin(
            "POST",
            "/admin/upstreams",
            json={"name": name, "base_url": extra_upstream.url, "api_key": NEW_PROVIDER_KEY},
        )
        assert "SLUICEGATE_MASTER_KEY" in assert_error(refused, 400, "master_key_missing", "api_key")
        assert stored_rows(plain, "config_upstreams") == []
        keyless = plain.admin("POST", "/admin/upstreams", json={"name": name, "base_url": extra_upstream.url})
        assert keyless.status_code == 201, keyless.text  # a local server with no key needs no master key
    finally:
        plain.close()


@SQLITE_ONLY
def test_a_duplicate_key_name_is_a_409_through_the_api(dep: Deployment) -> None:
    name = unique("named")
    dep.create_key(name=name)
    again = dep.admin("POST", "/admin/keys", json={"name": name})
    assert "already exists" in assert_error(again, 409, "key_name_taken", "name")


def test_key_changes_are_audited_without_their_secret(dep: Deployment) -> None:
    created = dep.create_key(name=unique("audited-key"))
    dep.admin("PATCH", f"/admin/keys/{created['id']}", json={"rpm": 7})
    dep.admin("DELETE", f"/admin/keys/{created['id']}")
    entries = dep.admin("GET", f"/admin/audit?kind=key&target={created['id']}").json()["data"]
    assert [e["action"] for e in entries] == ["revoke", "update", "create"]
    assert entries[1]["before"]["limits"]["rpm"] is None and entries[1]["after"]["limits"]["rpm"] == 7
    assert all(e["actor"].startswith("admin:") for e in entries)
    assert created["key"] not in dep.admin("GET", "/admin/audit?format=jsonl").text


def test_a_stream_in_flight_finishes_while_the_routes_are_rebuilt(
    dep: Deployment, extra_upstream: Upstream
) -> None:
    chunks: list[str] = []
    with httpx.stream(
        "POST",
        f"{dep.gateway.base_url}/chat/completions",
        json={"model": "slow-model", "messages": CHAT_MESSAGES, "stream": True},
        headers=client_auth(dep),
        timeout=30,
    ) as response:
        assert response.status_code == 200
        lines = response.iter_lines()
        for line in lines:
            if line.startswith("data: "):
                chunks.append(line)
                break
        up = add_upstream(dep, extra_upstream)  # two rebuilds while the stream runs
        add_model(dep, up["name"])
        chunks += [line for line in lines if line.startswith("data: ")]
    assert chunks[-1] == "data: [DONE]" and len(chunks) >= 4


def test_an_open_breaker_stays_open_across_a_rebuild(dep: Deployment, extra_upstream: Upstream) -> None:
    def state() -> str:
        channels = dep.admin("GET", "/admin/channels").json()["channels"]
        return str(next(c for c in channels if c["name"] == "slow/gpt-4o-mini")["state"])

    dep.slow_upstream.behaviour = "fail"
    try:
        for i in range(6):  # six different requests: a channel failing for everyone
            chat(dep, "slow-model", f"request {i}")
        assert state() != "closed"
        up = add_upstream(dep, extra_upstream)
        add_model(dep, up["name"])
        assert state() != "closed"
    finally:
        dep.slow_upstream.behaviour = "slow_stream delay=0.25"
        dep.admin("POST", "/admin/channels/slow/gpt-4o-mini/reset")


@SQLITE_ONLY
def test_a_model_name_with_a_slash_is_addressed_url_encoded(dep: Deployment) -> None:
    name = f"org-{uuid.uuid4().hex[:6]}/model-x"
    created = dep.admin("POST", "/admin/models", json={"name": name, "channels": ["mock/mock-gpt"]})
    assert created.status_code == 201, created.text
    assert dep.admin("GET", f"/admin/models/{quote(name, safe='')}").json()["name"] == name
    assert chat(dep, name).status_code == 200
    assert dep.admin("DELETE", f"/admin/models/{quote(name, safe='')}").status_code == 200
