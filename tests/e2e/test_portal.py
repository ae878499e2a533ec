"""The self-service portal API through the real gateway: a user signs in (argon2id password, a session
that ends), sees their balance and ledger, redeems a code, creates and revokes their own keys, reads
their own usage and logs; sign-ins are throttled; and no endpoint ever shows or touches another user's
keys, usage, logs or balance (each tried with the other user's ids)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from support.deployment import CHAT_MESSAGES, Deployment, deploy, wait_until

PRICED = {"model": "priced-model", "messages": CHAT_MESSAGES, "max_tokens": 10}
PASSWORD = "correct horse battery staple"


@pytest.fixture(scope="module")
def dep(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    deployment = deploy(
        "sqlite",
        tmp_path_factory.mktemp("portal"),
        extra_models={"priced-model": "up/house-model"},
        prices={"house-model": {"input": 10_000, "output": 20_000}},
        metering={"flush_interval_s": 0.2},
        tenancy={"login_attempts_per_hour": 4},
    )
    deployment.create_key()
    yield deployment
    deployment.close()


@dataclass
class Person:
    id: str
    name: str
    session: str
    key: str  # a key of theirs, made by the operator
    key_id: str


def portal(
    dep: Deployment, method: str, path: str, session: str | None = None, **kwargs: Any
) -> httpx.Response:
    headers = {"Authorization": f"Bearer {session}"} if session else {}
    return httpx.request(method, f"{dep.url}/portal/api/{path}", headers=headers, timeout=15, **kwargs)


def person(dep: Deployment, role: str = "member") -> Person:
    name = f"p-{uuid.uuid4().hex[:8]}"
    user = dep.admin("POST", "/admin/users", json={"name": name, "password": PASSWORD, "role": role}).json()
    dep.admin("POST", f"/admin/balances/{user['id']}/topup", json={"amount": 100, "reason": "start"})
    key = dep.create_key(user_id=user["id"])
    login = portal(dep, "POST", "login", json={"name": name, "password": PASSWORD})
    assert login.status_code == 200, login.text
    return Person(user["id"], name, login.json()["token"], key["key"], key["id"])


def chat(dep: Deployment, key: str) -> httpx.Response:
    return httpx.post(
        f"{dep.gateway.base_url}/chat/completions",
        json=PRICED,
        headers={"Authorization": f"Bearer {key}"},
        timeout=15,
    )


@pytest.fixture(scope="module")
def pair(dep: Deployment) -> tuple[Person, Person]:
    """Two users who each made a request, so each has usage, logs and a ledger to (not) see."""
    a, b = person(dep), person(dep)
    for p in (a, b):
        assert chat(dep, p.key).status_code == 200
    wait_until(
        lambda: all(len(portal(dep, "GET", "logs", p.session).json()["data"]) == 1 for p in (a, b)),
        timeout=10,
        what="both requests logged",
    )
    return a, b


def test_sign_in_answers_a_session_and_a_strict_http_only_cookie(dep: Deployment) -> None:
    p = person(dep)
    login = portal(dep, "POST", "login", json={"name": p.name, "password": PASSWORD})
    cookie = login.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/portal" in cookie
    assert login.json()["user"]["id"] == p.id and "password" not in login.text.replace('"has_password"', "")
    by_cookie = httpx.get(f"{dep.url}/portal/api/me", cookies={"sluicegate_session": login.json()["token"]})
    assert by_cookie.json()["id"] == p.id


def test_a_wrong_password_and_no_session_are_refused(dep: Deployment) -> None:
    p = person(dep)
    wrong = portal(dep, "POST", "login", json={"name": p.name, "password": "not it at all"})
    assert wrong.status_code == 401 and wrong.json()["error"]["code"] == "invalid_credentials"
    for method, path in (
        ("GET", "me"),
        ("GET", "balance"),
        ("GET", "keys"),
        ("GET", "usage"),
        ("GET", "logs"),
    ):
        refused = portal(dep, method, path)
        assert refused.status_code == 401 and refused.json()["error"]["code"] == "not_signed_in"
    assert portal(dep, "GET", "me", "sgs_forged-session-token").status_code == 401


def test_signing_out_ends_the_session(dep: Deployment) -> None:
    p = person(dep)
    assert portal(dep, "POST", "logout", p.session).status_code == 200
    assert portal(dep, "GET", "me", p.session).status_code == 401


def test_sign_in_attempts_are_throttled_per_name(dep: Deployment) -> None:
    p = person(dep)  # its successful sign-in did not count
    answers = [
        portal(dep, "POST", "login", json={"name": p.name, "password": "wrong guess"}) for _ in range(5)
    ]
    assert [a.status_code for a in answers] == [401, 401, 401, 401, 429]
    assert (
        answers[-1].json()["error"]["code"] == "login_throttled"
        and int(answers[-1].headers["retry-after"]) > 0
    )
    right = portal(dep, "POST", "login", json={"name": p.name, "password": PASSWORD})
    assert right.status_code == 429  # even the right password waits: guessing gains nothing


def test_me_and_balance_show_the_users_own_ledger(dep: Deployment, pair: tuple[Person, Person]) -> None:
    a, _ = pair
    me = portal(dep, "GET", "me", a.session).json()
    assert me["id"] == a.id and me["balance"]["owner"] == f"user:{a.id}"
    wait_until(lambda: len(portal(dep, "GET", "balance", a.session).json()["ledger"]) == 2, timeout=10)
    balance = portal(dep, "GET", "balance", a.session).json()
    assert [e["kind"] for e in balance["ledger"]] == ["charge", "topup"]
    assert sum(e["amount_micro"] for e in balance["ledger"]) == balance["balance_micro"]


def test_a_user_redeems_a_code_once(dep: Deployment) -> None:
    p = person(dep)
    code = dep.admin("POST", "/admin/codes", json={"amount": 3, "count": 1}).json()["codes"][0]
    done = portal(dep, "POST", "redeem", p.session, json={"code": code})
    assert done.status_code == 200 and done.json()["balance"] == 103.0
    again = portal(dep, "POST", "redeem", p.session, json={"code": code})
    assert again.status_code == 400 and again.json()["error"]["code"] == "code_redeemed"


def test_a_user_creates_uses_and_revokes_their_own_key(dep: Deployment) -> None:
    p = person(dep)
    made = portal(
        dep, "POST", "keys", p.session, json={"name": f"mine-{uuid.uuid4().hex[:6]}", "expires": "30d"}
    )
    assert made.status_code == 201, made.text
    key = made.json()
    assert key["user_id"] == p.id and key["key"].startswith("sk-sg-")
    dep.issued.append(key["key"])
    assert chat(dep, key["key"]).status_code == 200  # the portal reloaded this gateway at once
    listed = [k["id"] for k in portal(dep, "GET", "keys", p.session).json()["data"]]
    assert sorted(listed) == sorted([p.key_id, key["id"]])
    assert all("key" not in k for k in portal(dep, "GET", "keys", p.session).json()["data"])
    revoked = portal(dep, "DELETE", f"keys/{key['id']}", p.session)
    assert revoked.status_code == 200 and revoked.json()["status"] == "revoked"
    assert chat(dep, key["key"]).status_code == 401


def test_a_viewer_may_look_but_not_change(dep: Deployment) -> None:
    v = person(dep, role="viewer")
    assert portal(dep, "GET", "keys", v.session).status_code == 200
    for method, path, body in (("POST", "keys", {"name": "v"}), ("POST", "redeem", {"code": "sgc-x"})):
        refused = portal(dep, method, path, v.session, json=body)
        assert refused.status_code == 403 and refused.json()["error"]["code"] == "viewer_read_only"
    assert portal(dep, "DELETE", f"keys/{v.key_id}", v.session).status_code == 403


# -- never anyone else's ---------------------------------------------------------------------------------


def test_keys_list_only_ones_own(dep: Deployment, pair: tuple[Person, Person]) -> None:
    a, b = pair
    mine = portal(dep, "GET", "keys", a.session).json()["data"]
    assert {k["user_id"] for k in mine} == {a.id} and b.key_id not in {k["id"] for k in mine}


def test_another_users_key_cannot_be_revoked_and_is_not_found(
    dep: Deployment, pair: tuple[Person, Person]
) -> None:
    a, b = pair
    refused = portal(dep, "DELETE", f"keys/{b.key_id}", a.session)
    assert refused.status_code == 404 and refused.json()["error"]["code"] == "key_not_found"
    assert (
        portal(dep, "DELETE", "keys/key_doesnotexist", a.session).json()["error"]["code"] == "key_not_found"
    )
    assert chat(dep, b.key).status_code == 200  # still working


def test_usage_and_logs_are_only_ones_own(dep: Deployment, pair: tuple[Person, Person]) -> None:
    a, b = pair
    usage = portal(dep, "GET", "usage", a.session).json()["data"]
    assert usage and {row["key_id"] for row in usage} == {a.key_id}
    logs = portal(dep, "GET", "logs", a.session).json()["data"]
    assert logs and {row["key_id"] for row in logs} == {a.key_id}
    assert all("request_body" not in row for row in logs)
    # Query parameters cannot widen the view to another key or user.
    for path in (
        f"usage?key={b.key_id}",
        f"logs?key={b.key_id}",
        f"logs?user={b.id}",
        f"balance?owner={b.id}",
    ):
        text = portal(dep, "GET", path, a.session).text
        assert b.key_id not in text and b.id not in text


def test_balance_and_me_are_only_ones_own(dep: Deployment, pair: tuple[Person, Person]) -> None:
    a, b = pair
    for path in ("me", "balance", f"me?id={b.id}", f"balance?user={b.id}"):
        text = portal(dep, "GET", path, a.session).text
        assert a.id in text and b.id not in text


def test_redeeming_credits_only_the_signed_in_user(dep: Deployment, pair: tuple[Person, Person]) -> None:
    a, b = pair
    before = portal(dep, "GET", "balance", b.session).json()["balance_micro"]
    code = dep.admin("POST", "/admin/codes", json={"amount": 1, "count": 1}).json()["codes"][0]
    done = portal(dep, "POST", "redeem", a.session, json={"code": code, "user_id": b.id})
    assert done.status_code == 200 and done.json()["owner"] == f"user:{a.id}"
    assert portal(dep, "GET", "balance", b.session).json()["balance_micro"] == before


def test_a_session_is_not_an_api_key_and_an_api_key_is_not_a_session(
    dep: Deployment, pair: tuple[Person, Person]
) -> None:
    a, _ = pair
    assert chat(dep, a.session).status_code == 401
    assert portal(dep, "GET", "me", a.key).status_code == 401
