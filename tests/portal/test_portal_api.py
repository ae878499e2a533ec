"""The portal's API against a real gateway on SQLite and PostgreSQL: signing in (cookie, throttling,
disabled users, expiry, sign-out), the balance and ledger, redeeming codes, one's own keys (shown once,
usable, revoked at once), usage and logs; and, for every endpoint, two users who never see each other's.
"""

from __future__ import annotations

import time
from typing import Any

import httpx
from sqlalchemy import update
from support.portal_kit import PASSWORD, PortalClient, Site, chat

from sluicegate.store import Store
from sluicegate.store.schema import sessions

_names = iter(range(1, 10_000))


def fresh(site: Site, prefix: str = "user", **kw: Any) -> tuple[str, str]:
    """A new user: (id, name)."""
    name = f"{prefix}-{next(_names)}-{time.monotonic_ns() % 100_000}"
    return site.user(name, **kw), name


def error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()["error"]
    assert set(body) == {"message", "type", "param", "code"}
    assert body["code"] == code
    return dict(body)


def wait_logged(client: PortalClient, count: int) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 15
    while True:
        rows = client.get("logs").json()["data"]
        if len(rows) >= count or time.monotonic() > deadline:
            return list(rows)
        time.sleep(0.1)


# -- signing in --------------------------------------------------------------------------------------


def test_signing_in_sets_an_http_only_strict_session_cookie(site: Site) -> None:
    _, name = fresh(site)
    response = site.client().login(name)
    assert response.status_code == 200, response.text
    assert response.json()["user"]["name"] == name
    cookie = response.headers["set-cookie"]
    assert cookie.startswith("sg_portal=")
    attributes = {part.strip().split("=")[0].lower() for part in cookie.split(";")}
    assert {"httponly", "path", "max-age"} <= attributes
    assert "SameSite=Strict" in cookie and "Path=/portal" in cookie
    assert "Max-Age=43200" in cookie  # session_ttl_h defaults to 12
    assert "secure" not in attributes  # plain http, no proxy saying https
    assert PASSWORD not in response.text


def test_the_cookie_is_secure_when_a_trusted_proxy_says_https(site: Site) -> None:
    _, name = fresh(site)
    client = site.client()
    response = client.http.post(
        "/portal/api/login",
        json={"name": name, "password": PASSWORD},
        headers={"x-forwarded-proto": "https"},
    )
    assert response.status_code == 200
    assert "; Secure" in response.headers["set-cookie"]


def test_the_session_token_is_stored_only_hashed(site: Site) -> None:
    user_id, name = fresh(site)
    response = site.client().login(name)
    token = response.cookies["sg_portal"]

    async def rows(store: Store) -> list[Any]:
        async with store.engine.connect() as conn:
            result = await conn.execute(sessions.select().where(sessions.c.user_id == user_id))
            return list(result)

    stored = site.store(rows)
    assert len(stored) == 1
    assert token not in str(tuple(stored[0]))
    assert len(stored[0].token_hash) == 64


def test_a_wrong_password_and_an_unknown_name_get_the_same_answer(site: Site) -> None:
    _, name = fresh(site)
    wrong = error(site.client().login(name, "not the password"), 401, "invalid_credentials")
    unknown = error(site.client().login("nobody-by-this-name", "whatever1"), 401, "invalid_credentials")
    assert wrong["message"] == unknown["message"]
    assert "set-cookie" not in site.client().login(name, "nope-nope").headers


def test_five_failures_for_a_name_lock_it_out_with_retry_after(site: Site) -> None:
    _, name = fresh(site)
    for _ in range(5):
        error(site.client().login(name, "wrong-password"), 401, "invalid_credentials")
    # Even the right password, from yet another address, waits now.
    refused = site.client().login(name)
    body = error(refused, 429, "login_throttled")
    assert body["type"] == "rate_limit_error"
    assert 0 < int(refused.headers["retry-after"]) <= 300


def test_five_failures_from_one_address_lock_that_address_out(site: Site) -> None:
    _, name = fresh(site)
    client = site.client()
    for i in range(5):
        error(client.login(f"guess-{i}-{name}", "wrong-password"), 401, "invalid_credentials")
    error(client.login(name), 429, "login_throttled")
    assert site.client().login(name).status_code == 200  # another address is not affected


def test_a_disabled_user_cannot_sign_in_and_loses_their_session(site: Site) -> None:
    user_id, name = fresh(site)
    client = site.client().signed_in(name)
    assert client.get("me").status_code == 200

    async def disable(store: Store) -> None:
        await store.tenancy.update_user(user_id, disabled=True)

    site.store(disable)
    error(client.get("me"), 401, "not_signed_in")
    error(site.client().login(name), 403, "user_disabled")


def test_a_user_without_a_password_cannot_sign_in(site: Site) -> None:
    _, name = fresh(site, password=None)
    error(site.client().login(name, "anything-at-all"), 401, "invalid_credentials")


def test_signing_out_ends_the_session_for_good(site: Site) -> None:
    _, name = fresh(site)
    client = site.client().signed_in(name)
    token = client.http.cookies["sg_portal"]
    response = client.post("logout")
    assert response.status_code == 200
    assert "Max-Age=0" in response.headers["set-cookie"]
    replay = httpx.get(f"{site.url}/portal/api/me", cookies={"sg_portal": token}, timeout=10)
    error(replay, 401, "not_signed_in")


def test_an_expired_session_is_refused(site: Site) -> None:
    user_id, name = fresh(site)
    client = site.client().signed_in(name)

    async def expire(store: Store) -> None:
        async with store.engine.begin() as conn:
            await conn.execute(update(sessions).where(sessions.c.user_id == user_id).values(expires_at=1.0))

    site.store(expire)
    error(client.get("me"), 401, "not_signed_in")


def test_without_a_session_every_endpoint_is_refused(site: Site) -> None:
    anonymous = site.client()
    for response in (
        anonymous.get("me"),
        anonymous.get("balance"),
        anonymous.get("keys"),
        anonymous.get("usage"),
        anonymous.get("logs"),
        anonymous.post("redeem", {"code": "sgc-x"}),
        anonymous.post("keys", {"name": "k"}),
        anonymous.delete("keys/key_0123456789abcdef"),
    ):
        error(response, 401, "not_signed_in")


def test_changes_must_be_json_from_the_portals_own_origin(site: Site) -> None:
    _, name = fresh(site)
    client = site.client().signed_in(name)
    form = client.http.post("/portal/api/keys", data={"name": "k"})
    error(form, 400, "json_required")
    foreign = client.http.post(
        "/portal/api/keys", json={"name": "k"}, headers={"origin": "https://evil.example"}
    )
    error(foreign, 403, "cross_origin")
    own = client.http.post("/portal/api/keys", json={"name": "k"}, headers={"origin": site.url})
    assert own.status_code == 201, own.text
    # Behind a trusted proxy that passes the public name in X-Forwarded-Host, that origin is the portal's.
    proxied = client.http.post(
        "/portal/api/keys",
        json={"name": "k2"},
        headers={"origin": "https://llm.example.com", "x-forwarded-host": "llm.example.com"},
    )
    assert proxied.status_code == 201, proxied.text


# -- the balance, the ledger, codes ---------------------------------------------------------------------


def test_me_shows_the_user_their_role_group_and_balance(site: Site) -> None:
    user_id, name = fresh(site)
    site.topup(user_id, "2.5")
    body = site.client().signed_in(name).get("me").json()
    assert body["user"] == {
        "id": user_id,
        "name": name,
        "role": "member",
        "group": "default",
        "team_id": None,
    }
    assert body["balance"]["balance"] == 2.5 and body["balance"]["currency"] == "USD"
    assert body["can_write"] is True
    assert body["keys"] == {"count": 0, "max": 3}
    # Whether there is a password (for the change-password form), never the password or its hash.
    assert (body["has_password"], body["may_set_password"]) == (True, True)
    assert PASSWORD not in str(body) and "argon2" not in str(body) and "password_hash" not in str(body)


def test_redeeming_a_code_credits_once_and_shows_in_the_ledger(site: Site) -> None:
    _, alice_name = fresh(site, "alice")
    _, bob_name = fresh(site, "bob")
    alice, bob = site.client().signed_in(alice_name), site.client().signed_in(bob_name)
    (code,) = site.codes("5")
    redeemed = alice.post("redeem", {"code": code})
    assert redeemed.status_code == 200, redeemed.text
    assert redeemed.json()["balance"]["balance"] == 5.0
    assert code not in redeemed.text  # only a prefix is ever shown again
    error(alice.post("redeem", {"code": code}), 400, "code_redeemed")
    error(bob.post("redeem", {"code": code}), 400, "code_redeemed")
    error(bob.post("redeem", {"code": "sgc-no-such-code"}), 400, "code_unknown")
    ledger = alice.get("balance").json()
    assert ledger["balance"] == 5.0
    assert [(e["kind"], e["amount"]) for e in ledger["ledger"]] == [("redeem", 5.0)]
    assert bob.get("balance").json()["ledger"] == []
    assert bob.get("balance").json()["balance"] == 0.0


def test_the_ledger_is_paged_newest_first(site: Site) -> None:
    user_id, name = fresh(site)
    for amount in ("1", "2", "3"):
        site.topup(user_id, amount)
    client = site.client().signed_in(name)
    first = client.get("balance", limit=2).json()
    assert [e["amount"] for e in first["ledger"]] == [3.0, 2.0]
    second = client.get("balance", limit=2, before=first["next_before"]).json()
    assert [e["amount"] for e in second["ledger"]] == [1.0]
    assert second["next_before"] is None
    error(client.get("balance", limit=0), 400, "invalid_value")


def test_a_team_admin_sees_the_teams_balance_and_a_member_does_not(site: Site) -> None:
    admin_id, admin_name = fresh(site, "lead")
    member_id, member_name = fresh(site, "member")

    async def team(store: Store) -> str:
        t = await store.tenancy.create_team(f"team-{admin_name}")
        await store.tenancy.add_member(t.id, admin_id, "team_admin")
        await store.tenancy.add_member(t.id, member_id, "member")
        await store.tenancy.topup(f"team:{t.id}", 7_000_000, "budget")
        return t.id

    team_id = site.store(team)
    lead = site.client().signed_in(admin_name)
    body = lead.get("balance", owner="team").json()
    assert body["owner"] == f"team:{team_id}" and body["balance"] == 7.0
    assert lead.get("me").json()["team"] == {
        "id": team_id,
        "name": f"team-{admin_name}",
        "role": "team_admin",
        "manage": True,
        "models": ["gpt-4o", "gpt-4o-mini"],
    }
    error(site.client().signed_in(member_name).get("balance", owner="team"), 403, "not_team_admin")


def test_a_viewer_may_look_but_not_change(site: Site) -> None:
    _, name = fresh(site, role="viewer")
    viewer = site.client().signed_in(name)
    assert viewer.get("me").json()["can_write"] is False
    assert viewer.get("balance").status_code == 200
    assert viewer.get("keys").json()["data"] == []
    (code,) = site.codes("1")
    error(viewer.post("redeem", {"code": code}), 403, "read_only_role")
    error(viewer.post("keys", {"name": "mine"}), 403, "read_only_role")


# -- keys -----------------------------------------------------------------------------------------------


def test_a_key_is_shown_once_works_and_is_revoked_at_once(site: Site) -> None:
    user_id, name = fresh(site)
    site.topup(user_id, "10")
    client = site.client().signed_in(name)
    created = client.post("keys", {"name": "laptop"})
    assert created.status_code == 201, created.text
    body = created.json()
    secret = body["key"]
    assert secret.startswith("sk-") and body["name"] == "laptop" and body["status"] == "active"
    listed = client.get("keys").text
    assert secret not in listed and body["id"] in listed
    assert chat(site, secret).status_code == 200
    revoked = client.delete(f"keys/{body['id']}")
    assert revoked.status_code == 200 and revoked.json()["status"] == "revoked"
    assert chat(site, secret).status_code == 401  # this node's key cache was refreshed before the answer
    assert client.get("keys").json()["data"] == []
    assert [k["status"] for k in client.get("keys", all="1").json()["data"]] == ["revoked"]
    # Both changes are in the admin audit log, by the user, without the secret.
    audit = httpx.get(
        f"{site.url}/admin/audit",
        params={"target": body["id"]},
        headers={"Authorization": "Bearer adm-e2e-0123456789abcdef-keys"},
        timeout=10,
    )
    assert audit.status_code == 200, audit.text
    entries = audit.json()["data"]
    assert sorted(e["action"] for e in entries) == ["create", "revoke"]
    assert {e["actor"] for e in entries} == {f"portal:{name}"}
    assert secret not in audit.text


def test_keys_are_limited_per_user_and_names_are_per_user(site: Site) -> None:
    _, alice_name = fresh(site, "alice")
    _, bob_name = fresh(site, "bob")
    alice, bob = site.client().signed_in(alice_name), site.client().signed_in(bob_name)
    for label in ("a", "b", "c"):
        assert alice.post("keys", {"name": label}).status_code == 201
    error(alice.post("keys", {"name": "d"}), 403, "key_limit_reached")
    # Bob may use a name Alice uses: names are the user's own.
    assert bob.post("keys", {"name": "a"}).status_code == 201
    error(bob.post("keys", {"name": "a"}), 409, "key_name_taken")


def test_key_models_stay_within_the_users_group(site: Site) -> None:
    async def vip(store: Store) -> None:
        await store.tenancy.set_group("narrow", ratio=1.0, models=["gpt-4o-mini"])

    site.store(vip)
    _, name = fresh(site, group="narrow")
    client = site.client().signed_in(name)
    assert client.get("me").json()["models"] == ["gpt-4o-mini"]
    error(client.post("keys", {"name": "wide", "models": ["gpt-4o"]}), 400, "model_not_allowed")
    created = client.post("keys", {"name": "narrow"})
    assert created.status_code == 201 and created.json()["models"] == ["gpt-4o-mini"]


# -- two users never see each other's -----------------------------------------------------------------------


def test_two_users_never_see_or_touch_each_others_keys_usage_logs_or_ledger(site: Site) -> None:
    alice_id, alice_name = fresh(site, "alice")
    bob_id, bob_name = fresh(site, "bob")
    site.topup(alice_id, "10")
    site.topup(bob_id, "3")
    alice, bob = site.client().signed_in(alice_name), site.client().signed_in(bob_name)
    alice_key = alice.post("keys", {"name": "work"}).json()
    bob_key = bob.post("keys", {"name": "home"}).json()
    assert chat(site, alice_key["key"], "from alice").status_code == 200
    assert chat(site, alice_key["key"], "again").status_code == 200
    assert chat(site, bob_key["key"], "from bob").status_code == 200
    alice_logs, bob_logs = wait_logged(alice, 2), wait_logged(bob, 1)

    # keys: each list holds one's own only; another's id is not found, for reading and revoking alike
    assert [k["id"] for k in alice.get("keys").json()["data"]] == [alice_key["id"]]
    assert [k["id"] for k in bob.get("keys").json()["data"]] == [bob_key["id"]]
    error(bob.delete(f"keys/{alice_key['id']}"), 404, "key_not_found")
    error(bob.delete("keys/key_does_not_exist"), 404, "key_not_found")
    assert chat(site, alice_key["key"]).status_code == 200  # still works

    # logs
    assert {r["key_id"] for r in alice_logs} == {alice_key["id"]} and len(alice_logs) == 2
    assert {r["key_id"] for r in bob_logs} == {bob_key["id"]} and len(bob_logs) == 1
    assert alice_logs[0]["key_name"] == "work"
    # usage
    alice_usage = alice.get("usage").json()["data"]
    bob_usage = bob.get("usage").json()["data"]
    assert sum(r["requests"] for r in alice_usage) >= 2
    assert sum(r["requests"] for r in bob_usage) == 1
    assert {r["model"] for r in alice_usage} == {"gpt-4o-mini"}
    # ledger and balance
    assert {e["owner"] for e in alice.get("balance").json()["ledger"]} == {f"user:{alice_id}"}
    assert {e["owner"] for e in bob.get("balance").json()["ledger"]} == {f"user:{bob_id}"}
    assert alice.get("me").json()["user"]["id"] == alice_id
    # paging the logs
    page = alice.get("logs", limit=1).json()
    assert len(page["data"]) == 1 and page["next_before"] == page["data"][0]["id"]
    rest = alice.get("logs", limit=1, before=page["next_before"]).json()["data"]
    assert rest and rest[0]["id"] < page["data"][0]["id"] and rest[0]["key_id"] == alice_key["id"]


def test_keys_the_operator_gave_a_user_are_theirs_in_the_portal(site: Site) -> None:
    user_id, name = fresh(site)
    given = httpx.post(
        f"{site.url}/admin/keys",
        json={"name": f"given-{name}"},
        headers={"Authorization": "Bearer adm-e2e-0123456789abcdef-keys"},
        timeout=10,
    ).json()

    async def own(store: Store) -> None:
        await store.keys.update(given["id"], user_id=user_id)

    site.store(own)
    client = site.client().signed_in(name)
    assert [k["id"] for k in client.get("keys").json()["data"]] == [given["id"]]
    assert client.delete(f"keys/{given['id']}").status_code == 200


# -- the portal switched off, and its page ---------------------------------------------------------------


def test_the_page_is_served_with_the_dashboards_strict_headers(site: Site) -> None:
    page = httpx.get(f"{site.url}/portal/", timeout=10)
    assert page.status_code == 200 and page.text.startswith("<!doctype html>")
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["x-frame-options"] == "DENY"
    assert httpx.get(f"{site.url}/portal", timeout=10).status_code == 308
    assert httpx.get(f"{site.url}/portal/i18n.json", timeout=10).json()["zh-CN"]
    error(httpx.get(f"{site.url}/portal/nothing.js", timeout=10), 404, "not_found")
    error(httpx.get(f"{site.url}/portal/api/nothing", timeout=10), 404, "not_found")


def test_racing_key_creations_never_exceed_the_limit(site: Site) -> None:
    from concurrent.futures import ThreadPoolExecutor

    _, name = fresh(site)
    client = site.client().signed_in(name)
    cookie = client.http.cookies["sg_portal"]

    def create(i: int) -> int:
        with httpx.Client(base_url=site.url, cookies={"sg_portal": cookie}, timeout=30) as http:
            return http.post("/portal/api/keys", json={"name": f"race-{i}"}).status_code

    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(create, range(8)))
    assert set(statuses) <= {201, 403}
    assert statuses.count(201) <= 3
    assert len(client.get("keys").json()["data"]) == statuses.count(201) <= 3
