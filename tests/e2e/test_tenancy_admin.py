"""Tenancy through the admin API and the CLI against a running gateway: users, teams, groups, balances
and codes; a top-up or a redemption through the API serves the next request at once, one through the
CLI within the gateway's reload; secrets (passwords, codes after creation) are never answered back.

Requests go through the official OpenAI SDK, as a user's program would send them."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import orjson
import pytest
from support.deployment import CHAT_MESSAGES, Deployment, deploy, wait_until
from support.gateway import make_openai_client, run_cli

PRICED = {"model": "priced-model", "messages": CHAT_MESSAGES, "max_tokens": 10}


@pytest.fixture(scope="module")
def dep(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    deployment = deploy(
        "sqlite",
        tmp_path_factory.mktemp("tenancy-admin"),
        extra_models={"priced-model": "up/house-model"},
        prices={"house-model": {"input": 10_000, "output": 20_000}},
        metering={"flush_interval_s": 0.2},
        tenancy={"currency": "CNY"},
    )
    deployment.create_key()  # the gateway is closed to anonymous callers
    yield deployment
    deployment.close()


def name() -> str:
    return f"t-{uuid.uuid4().hex[:8]}"


def created(dep: Deployment, path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = dep.admin("POST", path, json=body)
    assert response.status_code in (200, 201), response.text
    return response.json()


def cli(dep: Deployment, *args: str) -> Any:
    done = run_cli(
        *args, "--config", str(dep.gateway.config_path), "--json", cwd=dep.gateway.workdir, timeout=60
    )
    assert done.returncode == 0, f"{args}: {done.stdout}\n{done.stderr}"
    return orjson.loads(done.stdout)


def chat(dep: Deployment, key: str) -> Any:
    return make_openai_client(dep.gateway, key).chat.completions.create(**PRICED)


def test_users_are_created_listed_shown_and_updated_without_their_password(dep: Deployment) -> None:
    user = created(dep, "/admin/users", {"name": name(), "password": "a long enough secret"})
    assert user["id"].startswith("usr_") and user["has_password"] is True
    everything = [
        dep.admin("GET", "/admin/users").text,
        dep.admin("GET", f"/admin/users/{user['id']}").text,
        dep.admin("PATCH", f"/admin/users/{user['id']}", json={"role": "viewer"}).text,
    ]
    assert all("a long enough secret" not in text and "argon2" not in text for text in everything)
    shown = dep.admin("GET", f"/admin/users/{user['name']}").json()
    assert shown["role"] == "viewer" and shown["balance"]["currency"] == "CNY"
    weak = dep.admin("POST", "/admin/users", json={"name": name(), "password": "short"})
    assert weak.status_code == 400 and weak.json()["error"]["code"] == "weak_password"
    taken = dep.admin("POST", "/admin/users", json={"name": user["name"]})
    assert taken.status_code == 409 and taken.json()["error"]["code"] == "name_taken"


def test_teams_have_members_and_a_balance(dep: Deployment) -> None:
    team = created(dep, "/admin/teams", {"name": name()})
    user = created(dep, "/admin/users", {"name": name()})
    after = created(dep, f"/admin/teams/{team['id']}/members", {"user_id": user["id"], "role": "team_admin"})
    assert after["members"] == [{"user_id": user["id"], "role": "team_admin"}]
    shown = dep.admin("GET", f"/admin/teams/{team['name']}").json()
    assert shown["balance"]["balance"] == 0.0
    assert team["id"] in [t["id"] for t in dep.admin("GET", "/admin/teams").json()["data"]]


def test_a_team_key_is_charged_to_the_team_and_a_topup_serves_at_once(dep: Deployment) -> None:
    team = created(dep, "/admin/teams", {"name": name()})
    key = dep.create_key(team_id=team["id"])
    assert key["team_id"] == team["id"]
    with pytest.raises(openai.RateLimitError) as refused:
        chat(dep, key["key"])
    assert refused.value.code == "insufficient_quota"
    topped = created(dep, f"/admin/balances/{team['id']}/topup", {"amount": "50", "reason": "trial"})
    assert topped["balance"] == 50.0 and topped["entry"]["actor"].startswith("admin:")
    answer = chat(dep, key["key"])  # no waiting: the admin API reloaded this gateway
    assert answer.usage is not None
    wait_until(
        lambda: len(dep.admin("GET", f"/admin/balances/{team['id']}").json()["ledger"]) == 2,
        timeout=10,
        what="the charge",
    )
    shown = dep.admin("GET", f"/admin/balances/{team['id']}").json()
    assert shown["ledger"][0]["kind"] == "charge" and shown["balance_micro"] < 50_000_000
    assert sum(e["amount_micro"] for e in shown["ledger"]) == shown["balance_micro"]


def test_groups_are_set_through_the_api_and_hide_models(dep: Deployment) -> None:
    group = name()
    created(dep, "/admin/groups", {"name": group, "ratio": 2, "models": ["gpt-4o-mini"]})
    patched = dep.admin("PATCH", f"/admin/groups/{group}", json={"description": "narrow"}).json()
    assert patched == {"name": group, "ratio": 2.0, "description": "narrow", "models": ["gpt-4o-mini"]}
    user = created(dep, "/admin/users", {"name": name(), "group": group})
    created(dep, f"/admin/balances/{user['id']}/topup", {"amount": 1, "reason": "start"})
    key = dep.create_key(user_id=user["id"])["key"]
    with pytest.raises(openai.NotFoundError) as hidden:
        chat(dep, key)
    assert hidden.value.code == "model_not_found"
    assert [m.id for m in make_openai_client(dep.gateway, key).models.list()] == ["gpt-4o-mini"]


def test_codes_are_shown_once_and_redeemed_once_through_the_api(dep: Deployment) -> None:
    user = created(dep, "/admin/users", {"name": name()})
    made = created(dep, "/admin/codes", {"amount": "2.5", "count": 2, "expires": "7d"})
    assert len(made["codes"]) == 2 and made["currency"] == "CNY"
    listed = dep.admin("GET", f"/admin/codes?batch={made['batch_id']}").text
    assert not any(code in listed for code in made["codes"])
    redeemed = created(dep, "/admin/codes/redeem", {"code": made["codes"][0], "user_id": user["id"]})
    assert redeemed["balance"] == 2.5 and redeemed["entry"]["kind"] == "redeem"
    again = dep.admin("POST", "/admin/codes/redeem", json={"code": made["codes"][0], "user_id": user["id"]})
    assert again.status_code == 400 and again.json()["error"]["code"] == "code_redeemed"
    unknown = dep.admin("POST", "/admin/codes/redeem", json={"code": "sgc-nope", "user_id": user["id"]})
    assert unknown.json()["error"]["code"] == "code_unknown"


def test_the_cli_manages_tenancy_and_the_gateway_follows(dep: Deployment) -> None:
    user = cli(dep, "users", "create", "--name", name())
    key = cli(dep, "keys", "create", "--name", name(), "--user", user["id"])["key"]
    dep.issued.append(key)
    wait_until(lambda: _status(dep, key) == 429, timeout=10, what="the CLI's key loaded, with no balance")
    cli(dep, "balance", "topup", user["id"], "40", "--reason", "from the shell")
    wait_until(lambda: _status(dep, key) == 200, timeout=10, what="service after the CLI top-up")
    codes = cli(dep, "codes", "create", "--amount", "1", "--count", "1")["codes"]
    redeemed = cli(dep, "codes", "redeem", codes[0], "--user", user["id"])
    assert redeemed["entry"]["amount"] == 1.0
    shown = cli(dep, "balance", "show", user["id"])
    assert set(shown) >= {"balance", "currency", "ledger"} and shown["currency"] == "CNY"
    assert sum(e["amount_micro"] for e in shown["ledger"]) == shown["balance_micro"]


def _status(dep: Deployment, key: str) -> int:
    return httpx.post(
        f"{dep.gateway.base_url}/chat/completions",
        json=PRICED,
        headers={"Authorization": f"Bearer {key}"},
        timeout=10,
    ).status_code


def test_admin_tenancy_needs_the_admin_key(dep: Deployment) -> None:
    for method, path in (("GET", "/admin/users"), ("POST", "/admin/codes"), ("GET", "/admin/balances/usr_x")):
        refused = dep.admin(method, path, headers={"Authorization": "Bearer sk-not-admin"})
        assert refused.status_code == 401


def test_a_users_rpm_holds_over_all_their_keys_and_a_teams_over_its_members(dep: Deployment) -> None:
    team = created(dep, "/admin/teams", {"name": name()})
    assert dep.admin("PATCH", f"/admin/teams/{team['id']}", json={"rpm": 3}).json()["limits"]["rpm"] == 3
    alice = created(dep, "/admin/users", {"name": name(), "team": team["id"]})
    bob = created(dep, "/admin/users", {"name": name(), "team": team["id"]})
    limited = dep.admin("PATCH", f"/admin/users/{alice['id']}", json={"rpm": 2}).json()
    assert limited["limits"] == {"rpm": 2, "rpd": None, "tpm": None, "concurrency": None}
    for who in (alice, bob):
        created(dep, f"/admin/balances/{who['id']}/topup", {"amount": 100, "reason": "start"})
    a1, a2 = (dep.create_key(user_id=alice["id"])["key"] for _ in range(2))
    b1 = dep.create_key(user_id=bob["id"])["key"]
    assert _status(dep, a1) == 200 and _status(dep, a2) == 200
    refused = httpx.post(
        f"{dep.gateway.base_url}/chat/completions",
        json=PRICED,
        headers={"Authorization": f"Bearer {a1}"},
        timeout=10,
    )
    assert refused.status_code == 429 and refused.json()["error"]["code"] == "rate_limit_exceeded"
    assert "your account" in refused.json()["error"]["message"]
    assert _status(dep, b1) == 200  # the team's third request this minute
    team_refused = httpx.post(
        f"{dep.gateway.base_url}/chat/completions",
        json=PRICED,
        headers={"Authorization": f"Bearer {b1}"},
        timeout=10,
    )
    assert team_refused.status_code == 429 and "your team" in team_refused.json()["error"]["message"]
