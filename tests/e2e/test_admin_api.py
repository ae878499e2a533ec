"""The admin HTTP API on a running gateway, on SQLite and on PostgreSQL: the guard, keys (the same
fields, checks and JSON as the CLI), usage, logs and channels; changes take effect at once."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from support.deployment import ADMIN_KEY, CHAT_MESSAGES, PROVIDER_KEY, Deployment, deploy, wait_until
from support.gateway import Core

CHAT = {"model": "gpt-4o-mini", "messages": CHAT_MESSAGES}
# Checks made before the store is touched, or reading nothing from it, run on one database only.
SQLITE_ONLY = pytest.mark.parametrize("dep", ["sqlite"], indirect=True)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def dep(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    deployment = deploy(
        request.param, tmp_path_factory.mktemp(request.param), metering={"flush_interval_s": 0.2}
    )
    yield deployment
    deployment.close()


def chat(dep: Deployment, key: str, body: dict[str, Any] | None = None) -> httpx.Response:
    return httpx.post(
        f"{dep.gateway.base_url}/chat/completions",
        json=body or CHAT,
        headers={"Authorization": f"Bearer {key}"},
        timeout=15,
    )


def assert_error(response: httpx.Response, status: int, code: str) -> str:
    """An OpenAI-shaped error with this status and code; returns its message."""
    assert response.status_code == status, f"expected {status}, got {response.status_code}: {response.text}"
    error = response.json()["error"]
    assert error["code"] == code, error
    assert ADMIN_KEY not in response.text and PROVIDER_KEY not in response.text
    return str(error["message"])


# -- the guard ---------------------------------------------------------------------------------------


def test_admin_api_is_404_when_no_admin_key_is_configured(core: Core) -> None:
    response = httpx.get(f"{core.gateway.url}/admin/keys", headers=core.auth, timeout=15)
    assert "admin API disabled" in assert_error(response, 404, "admin_disabled")


@SQLITE_ONLY
def test_admin_api_without_a_key_is_401(dep: Deployment) -> None:
    assert_error(dep.admin("GET", "/admin/keys", headers={}), 401, "invalid_admin_key")


@SQLITE_ONLY
def test_admin_api_with_a_wrong_key_is_401(dep: Deployment) -> None:
    response = dep.admin("GET", "/admin/keys", headers={"Authorization": f"Bearer {ADMIN_KEY}x"})
    assert_error(response, 401, "invalid_admin_key")


@SQLITE_ONLY
def test_a_client_key_is_not_an_admin_key(dep: Deployment) -> None:
    client_key = dep.create_key()["key"]
    response = dep.admin(
        "POST", "/admin/keys", json={"name": "escalated"}, headers={"Authorization": f"Bearer {client_key}"}
    )
    assert_error(response, 401, "invalid_admin_key")


@SQLITE_ONLY
def test_unknown_admin_path_is_404_and_wrong_method_405(dep: Deployment) -> None:
    assert_error(dep.admin("GET", "/admin/nothing-here"), 404, "not_found")
    assert_error(dep.admin("PUT", "/admin/keys", json={}), 405, "method_not_allowed")


# -- keys ------------------------------------------------------------------------------------------------


def test_created_key_is_answered_with_its_secret_once_and_works_at_once(dep: Deployment) -> None:
    created = dep.create_key(name="svc", owner="team-a", models=["gpt-4o*"], rpm=10)
    assert created["key"].startswith("sk-sg-")
    assert created["prefix"] == created["key"][: len(created["prefix"])]
    assert (created["name"], created["owner"], created["status"]) == ("svc", "team-a", "active")
    assert created["limits"]["rpm"] == 10
    assert chat(dep, created["key"]).status_code == 200
    shown = dep.admin("GET", f"/admin/keys/{created['id']}").json()
    assert "key" not in shown and created["key"] not in str(shown)


def test_created_key_json_is_what_the_cli_shows(dep: Deployment) -> None:
    created = dep.create_key(
        name="same",
        models=["gpt-4o*"],
        endpoints=["chat"],
        networks=["10.0.0.0/8"],
        tpm=1000,
        budget_usd=5,
        budget_period="month",
        expires="30d",
    )
    del created["key"]
    assert dep.cli("show", created["id"]) == created


def test_key_created_with_the_cli_is_listed_by_the_admin_api(dep: Deployment) -> None:
    created = dep.cli("create", "--name", "from-cli", "--rpm", "7")
    listed = dep.admin("GET", "/admin/keys").json()["data"]
    mine = [k for k in listed if k["id"] == created["id"]]
    assert len(mine) == 1 and mine[0]["limits"]["rpm"] == 7
    assert all("key" not in k for k in listed)


def test_list_leaves_out_revoked_keys_unless_asked(dep: Deployment) -> None:
    created = dep.create_key()
    assert dep.admin("DELETE", f"/admin/keys/{created['id']}").json()["status"] == "revoked"
    assert created["id"] not in [k["id"] for k in dep.admin("GET", "/admin/keys").json()["data"]]
    assert created["id"] in [k["id"] for k in dep.admin("GET", "/admin/keys?all=true").json()["data"]]


def test_patch_changes_a_limit_and_the_gateway_applies_it_at_once(dep: Deployment) -> None:
    created = dep.create_key(rpm=1)
    assert [chat(dep, created["key"]).status_code for _ in range(2)] == [200, 429]
    patched = dep.admin("PATCH", f"/admin/keys/{created['id']}", json={"rpm": None})
    assert patched.status_code == 200 and patched.json()["limits"]["rpm"] is None
    assert chat(dep, created["key"]).status_code == 200


def test_patch_models_refuses_a_model_at_once(dep: Deployment) -> None:
    created = dep.create_key()
    assert dep.admin("PATCH", f"/admin/keys/{created['id']}", json={"models": "o1-*"}).status_code == 200
    assert chat(dep, created["key"]).status_code == 403


def test_revoked_key_is_refused_at_once_and_cannot_be_changed(dep: Deployment) -> None:
    created = dep.create_key()
    revoked = dep.admin("DELETE", f"/admin/keys/{created['id']}")
    assert revoked.status_code == 200 and revoked.json()["revoked_at"]
    assert chat(dep, created["key"]).status_code == 401
    assert_error(
        dep.admin("PATCH", f"/admin/keys/{created['id']}", json={"enabled": True}), 409, "key_revoked"
    )


def test_unknown_key_id_is_404_key_not_found(dep: Deployment) -> None:
    for method in ("GET", "PATCH", "DELETE"):
        kwargs = {"json": {"rpm": 1}} if method == "PATCH" else {}
        assert_error(dep.admin(method, "/admin/keys/key_doesnotexist", **kwargs), 404, "key_not_found")


@SQLITE_ONLY
@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"networks": ["10.0.0.0/33"]}, "invalid network"),
        ({"endpoints": ["chatty"]}, "unknown endpoint"),
        ({"rpm": 1.5}, "whole number"),
        ({"rpm": -3}, "negative"),
        ({"expires": "2001-01-01"}, "in the past"),
        ({"budget_period": "week"}, "budget_period"),
        ({"budget_period": "day"}, "--budget-tokens or --budget-usd"),
        ({"colour": "blue"}, "colour"),
        ({"limits": {"rpx": 3}}, "rpx"),
        ({"enabled": "yes"}, "true or false"),
    ],
)
def test_create_refuses_bad_fields_with_400_naming_the_problem(
    dep: Deployment, fields: dict[str, Any], words: str
) -> None:
    before = len(dep.admin("GET", "/admin/keys?all=1").json()["data"])
    message = assert_error(
        dep.admin("POST", "/admin/keys", json={"name": "bad", **fields}), 400, "invalid_key_field"
    )
    assert words in message
    assert len(dep.admin("GET", "/admin/keys?all=1").json()["data"]) == before, "a refused key was stored"


@SQLITE_ONLY
def test_create_without_a_name_is_400(dep: Deployment) -> None:
    assert_error(dep.admin("POST", "/admin/keys", json={"rpm": 5}), 400, "invalid_key_field")


@SQLITE_ONLY
def test_create_with_a_body_that_is_not_json_is_400(dep: Deployment) -> None:
    response = dep.admin(
        "POST",
        "/admin/keys",
        content=b"name=x",
        headers={**dep.admin_auth, "Content-Type": "application/json"},
    )
    assert_error(response, 400, "invalid_json")


@SQLITE_ONLY
def test_patch_with_nothing_to_change_is_400(dep: Deployment) -> None:
    created = dep.create_key()
    assert_error(dep.admin("PATCH", f"/admin/keys/{created['id']}", json={}), 400, "invalid_key_field")


# -- reports ---------------------------------------------------------------------------------------------


def test_usage_counts_a_keys_requests_and_tokens(dep: Deployment) -> None:
    created = dep.create_key()
    assert [chat(dep, created["key"]).status_code for _ in range(3)] == [200] * 3

    def rows() -> list[dict[str, Any]]:
        return dep.admin("GET", f"/admin/usage?key={created['id']}&since=today").json()["data"]

    wait_until(
        lambda: sum(r["requests"] for r in rows()) == 3, timeout=5, what="3 requests in the usage report"
    )
    (row,) = rows()
    assert (row["key_id"], row["model"], row["requests"]) == (created["id"], "gpt-4o-mini", 3)
    assert (row["prompt_tokens"], row["completion_tokens"]) == (3 * 4, 3 * 4)  # the stand-in's usage


def test_usage_groups_by_model(dep: Deployment) -> None:
    created = dep.create_key()
    assert chat(dep, created["key"], {**CHAT, "model": "gpt-4o"}).status_code == 200
    wait_until(
        lambda: any(r["model"] == "gpt-4o" for r in dep.admin("GET", "/admin/usage?by=model").json()["data"]),
        timeout=5,
        what="gpt-4o in the usage by model",
    )
    assert all(r["key_id"] is None for r in dep.admin("GET", "/admin/usage?by=model").json()["data"])


@SQLITE_ONLY
def test_usage_refuses_a_bad_date_or_grouping(dep: Deployment) -> None:
    assert_error(dep.admin("GET", "/admin/usage?since=last-tuesday"), 400, "invalid_date")
    assert_error(dep.admin("GET", "/admin/usage?by=colour"), 400, "invalid_grouping")


def test_logs_tail_returns_the_latest_requests(dep: Deployment) -> None:
    created = dep.create_key(name="logged")
    assert chat(dep, created["key"]).status_code == 200
    wait_until(
        lambda: any(
            e["key_id"] == created["id"] for e in dep.admin("GET", "/admin/logs?tail=5").json()["data"]
        ),
        timeout=5,
        what="the request in the log tail",
    )
    entries = dep.admin("GET", "/admin/logs?tail=1").json()["data"]
    assert len(entries) == 1
    assert (entries[0]["key_name"], entries[0]["status"], entries[0]["endpoint"]) == (
        "logged",
        200,
        "/v1/chat/completions",
    )
    assert created["key"] not in str(entries)


@SQLITE_ONLY
def test_logs_refuses_a_bad_tail(dep: Deployment) -> None:
    assert_error(dep.admin("GET", "/admin/logs?tail=many"), 400, "invalid_tail")


@SQLITE_ONLY
def test_channels_lists_every_channel_without_secrets(dep: Deployment) -> None:
    response = dep.admin("GET", "/admin/channels")
    assert response.status_code == 200
    names = {c["name"] for c in response.json()["channels"]}
    assert {"up/gpt-4o-mini", "slow/gpt-4o-mini"} <= names
    assert PROVIDER_KEY not in response.text


def test_admin_key_never_appears_in_the_gateway_logs(dep: Deployment) -> None:
    logs = dep.gateway.logs()
    assert ADMIN_KEY not in logs
    assert all(secret not in logs for secret in dep.issued)
