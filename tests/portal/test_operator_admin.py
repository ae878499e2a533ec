"""The operator role opens the admin API: a user with role `operator` who signs in to the portal gets a
second session cookie scoped to /admin, and the admin API (and so the dashboard) accepts it in place of
the admin key, on SQLite and PostgreSQL. Other roles get no such cookie and are refused; a change made
through the cookie must come from the gateway's own origin; the audit log names the operator; demoting,
disabling or signing out closes the door at once; a bearer token is always judged as the admin key.
"""

from __future__ import annotations

import time
from http.cookies import SimpleCookie
from typing import Any

import httpx
from support.deployment import ADMIN_KEY
from support.portal_kit import PortalClient, Site
from support.upstream import Upstream

from sluicegate.store import Store


def person(site: Site, role: str) -> tuple[str, str, PortalClient]:
    """A new user with `role`, signed in: (id, name, client)."""
    name = f"{role}-{time.monotonic_ns() % 10_000_000}"
    uid = site.user(name, role=role)
    return uid, name, site.client().signed_in(name)


def cookies_set(response: httpx.Response) -> dict[str, Any]:
    jar: dict[str, Any] = {}
    for line in response.headers.get_list("set-cookie"):
        parsed = SimpleCookie()
        parsed.load(line)
        jar.update(parsed)
    return jar


def origin(site: Site) -> dict[str, str]:
    return {"origin": site.url}


def test_an_operators_sign_in_sets_an_admin_cookie_scoped_to_admin(site: Site) -> None:
    name = f"op-{time.monotonic_ns() % 10_000_000}"
    site.user(name, role="operator")
    response = site.client().login(name)
    assert response.status_code == 200, response.text
    jar = cookies_set(response)
    assert jar["sg_portal"]["path"] == "/portal"
    admin = jar["sg_admin"]
    assert admin["path"] == "/admin" and admin["httponly"] and admin["samesite"] == "Strict"
    assert admin.value == jar["sg_portal"].value and int(admin["max-age"]) > 0


def test_a_member_gets_no_admin_cookie_and_the_admin_api_refuses_their_session(site: Site) -> None:
    _, name, client = person(site, "member")
    jar = cookies_set(client.login(name))
    assert jar["sg_admin"].value == "" and jar["sg_admin"]["max-age"] == "0"
    token = jar["sg_portal"].value
    for role in ("member", "team_admin", "viewer"):
        if role != "member":
            _, name, client = person(site, role)
            token = cookies_set(client.login(name))["sg_portal"].value
        answer = httpx.get(f"{site.url}/admin/keys", cookies={"sg_admin": token})
        assert answer.status_code == 401, (role, answer.text)
        assert answer.json()["error"]["code"] == "invalid_admin_key"


def test_an_operator_uses_the_admin_api_without_the_key(site: Site) -> None:
    _, name, client = person(site, "operator")
    whoami = client.http.get("/admin/session")
    assert whoami.status_code == 200, whoami.text
    assert whoami.json() == {"actor": f"operator:{name}", "via": "operator_session"}
    assert client.http.get("/admin/keys").status_code == 200
    assert client.http.get("/admin/users").status_code == 200
    with_key = httpx.get(f"{site.url}/admin/session", headers={"Authorization": f"Bearer {ADMIN_KEY}"})
    assert with_key.json()["via"] == "admin_key" and with_key.json()["actor"].startswith("admin:")
    nobody = httpx.get(f"{site.url}/admin/session")
    assert nobody.status_code == 200 and nobody.json() == {"actor": None, "via": None}
    wrong = httpx.get(f"{site.url}/admin/session", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 200 and wrong.json() == {"actor": None, "via": None}


def test_an_operators_changes_need_the_gateways_own_origin_and_are_audited_by_name(site: Site) -> None:
    _, name, client = person(site, "operator")
    key_name = f"made-by-{name}"
    no_origin = client.http.post("/admin/keys", json={"name": key_name})
    assert no_origin.status_code == 403 and no_origin.json()["error"]["code"] == "cross_origin"
    elsewhere = client.http.post(
        "/admin/keys", json={"name": key_name}, headers={"origin": "https://evil.example"}
    )
    assert elsewhere.status_code == 403 and elsewhere.json()["error"]["code"] == "cross_origin"
    made = client.http.post("/admin/keys", json={"name": key_name}, headers=origin(site))
    assert made.status_code == 201, made.text
    key_id = made.json()["id"]
    revoked = client.http.delete(f"/admin/keys/{key_id}", headers=origin(site))
    assert revoked.status_code == 200, revoked.text
    audit = client.http.get("/admin/audit").json()["data"]
    mine = [e for e in audit if e["target"] in (key_name, key_id) or key_id in str(e.get("after"))]
    assert mine and {e["actor"] for e in mine} == {f"operator:{name}"}, mine
    assert {e["action"] for e in mine} >= {"create", "revoke"}


def test_demoting_disabling_or_signing_out_closes_the_admin_api_at_once(site: Site) -> None:
    for how in ("demote", "disable", "sign out"):
        uid, _, client = person(site, "operator")
        assert client.http.get("/admin/keys").status_code == 200
        if how == "sign out":
            out = client.post("logout")
            assert out.status_code == 200
            assert cookies_set(out)["sg_admin"]["max-age"] == "0"
            token = None
        else:
            token = client.http.cookies.get("sg_admin")

            async def change(store: Store, uid: str = uid, how: str = how) -> None:
                if how == "demote":
                    await store.tenancy.update_user(uid, role="member")
                else:
                    await store.tenancy.update_user(uid, disabled=True)

            site.store(change)
        answer = (
            client.http.get("/admin/keys")
            if token is None
            else httpx.get(f"{site.url}/admin/keys", cookies={"sg_admin": token})
        )
        assert answer.status_code == 401, (how, answer.text)


def test_a_wrong_bearer_token_is_refused_even_with_an_operators_cookie(site: Site) -> None:
    _, _, client = person(site, "operator")
    answer = client.http.get("/admin/keys", headers={"Authorization": "Bearer sk-not-the-admin-key"})
    assert answer.status_code == 401 and answer.json()["error"]["code"] == "invalid_admin_key"


def test_the_admin_cookie_is_not_sent_outside_admin_and_never_reaches_an_upstream(
    site: Site, upstream: Upstream
) -> None:
    _, _, client = person(site, "operator")
    assert client.http.cookies.get("sg_admin")
    # httpx honours the cookie's Path like a browser: /v1 gets neither session cookie.
    request = client.http.build_request("POST", "/v1/chat/completions", json={"model": "gpt-4o-mini"})
    assert "sg_admin" not in request.headers.get("cookie", "")
    assert "sg_portal" not in request.headers.get("cookie", "")
