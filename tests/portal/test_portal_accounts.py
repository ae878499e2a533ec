"""Accounts people look after themselves, against a real gateway on SQLite and PostgreSQL: registering
(closed by default; when open: a signed-in member of the configured group, the name and password
rules, a taken name, the per-address throttle) and changing one's own password (the current one
checked and throttled, the user's other sessions ended, this one kept).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from support.portal_kit import PASSWORD, PortalClient, Site, portal_site
from support.upstream import Upstream

NEW_PASSWORD = "a brand new passphrase"


@pytest.fixture(scope="module")
def upstream() -> Iterator[Upstream]:
    with Upstream() as stand_in:
        yield stand_in


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def site(request: pytest.FixtureRequest, upstream: Upstream) -> Iterator[Site]:
    registration = {"enabled": True, "group": "newcomers", "max_per_address": 3}
    with portal_site(request.param, upstream, registration=registration) as s:
        s.store(lambda store: store.tenancy.set_group("newcomers", ratio=1.5))
        yield s


@pytest.fixture(scope="module")
def closed(upstream: Upstream) -> Iterator[Site]:
    with portal_site("sqlite", upstream) as s:
        yield s


def unique(prefix: str) -> str:
    return f"{prefix}-{time.monotonic_ns() % 10_000_000}"


def error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()["error"]
    assert body["code"] == code, body
    return dict(body)


# -- registration --------------------------------------------------------------------------------------


def test_registration_is_closed_by_default(closed: Site) -> None:
    client = closed.client()
    error(
        client.post("register", {"name": unique("someone"), "password": NEW_PASSWORD}),
        403,
        "registration_closed",
    )
    assert client.get("me").status_code == 401
    assert client.get("options").json() == {"registration": False, "sso": None, "min_password_length": 10}


def test_options_tell_the_page_that_registration_is_open(site: Site) -> None:
    answer = site.client().get("options")
    assert answer.status_code == 200
    assert answer.json()["registration"] is True and answer.json()["sso"] is None


def test_registering_creates_a_member_of_the_configured_group_and_signs_them_in(site: Site) -> None:
    client = site.client()
    name = unique("newbie")
    answer = client.post("register", {"name": name, "password": NEW_PASSWORD})
    assert answer.status_code == 201, answer.text
    cookie = answer.headers["set-cookie"]
    assert cookie.startswith("sg_portal=") and "HttpOnly" in cookie and "SameSite=Strict" in cookie
    me = client.get("me").json()
    assert me["user"]["name"] == name
    assert (me["user"]["role"], me["user"]["group"]) == ("member", "newcomers")
    assert me["balance"]["balance"] == 0
    # The password works for a sign-in from elsewhere, and nothing was stored in the clear.
    PortalClient(site).signed_in(name, NEW_PASSWORD)
    user = site.store(lambda store: store.tenancy.get_user(name))
    assert user.has_password and user.sso is None


def test_a_taken_name_is_a_409_that_says_only_that(site: Site) -> None:
    name = unique("taken")
    site.user(name)
    answer = site.client().post("register", {"name": name, "password": NEW_PASSWORD})
    body = error(answer, 409, "name_taken")
    assert body["message"] == "That name is taken; choose another."
    assert "usr_" not in answer.text


@pytest.mark.parametrize(
    ("name", "password", "code"),
    [
        ("x", NEW_PASSWORD, "invalid_name"),
        ("has space", NEW_PASSWORD, "invalid_name"),
        ("usr_0123456789abcdef", NEW_PASSWORD, "invalid_name"),
        ("<script>", NEW_PASSWORD, "invalid_name"),
        ("a" * 65, NEW_PASSWORD, "invalid_name"),
        ("shortpass", "nine char", "password_too_short"),
        ("samename99", "SameName99", "password_is_name"),
        ("longpass", "p" * 1025, "password_too_long"),
    ],
)
def test_names_and_passwords_that_break_the_rules_are_refused(
    site: Site, name: str, password: str, code: str
) -> None:
    client = site.client()
    error(client.post("register", {"name": name, "password": password}), 400, code)
    assert client.get("me").status_code == 401


def test_a_name_in_another_script_is_welcome(site: Site) -> None:
    answer = site.client().post("register", {"name": unique("张伟"), "password": NEW_PASSWORD})
    assert answer.status_code == 201, answer.text


def test_registration_is_throttled_per_address(site: Site) -> None:
    client = site.client()
    for _ in range(2):
        assert client.post("register", {"name": unique("burst"), "password": NEW_PASSWORD}).status_code == 201
    taken = unique("burst-taken")
    site.user(taken)
    error(client.post("register", {"name": taken, "password": NEW_PASSWORD}), 409, "name_taken")  # counts too
    answer = client.post("register", {"name": unique("burst"), "password": NEW_PASSWORD})
    error(answer, 429, "registration_throttled")
    assert int(answer.headers["retry-after"]) > 0
    # Another address may still register.
    assert (
        site.client().post("register", {"name": unique("other"), "password": NEW_PASSWORD}).status_code == 201
    )


def test_registration_needs_json_from_the_portals_own_origin(site: Site) -> None:
    client = site.client()
    form = client.http.post("/portal/api/register", data={"name": unique("form"), "password": NEW_PASSWORD})
    error(form, 400, "json_required")
    evil = client.http.post(
        "/portal/api/register",
        json={"name": unique("csrf"), "password": NEW_PASSWORD},
        headers={"origin": "https://evil.example"},
    )
    error(evil, 403, "cross_origin")


# -- changing one's own password ---------------------------------------------------------------------------


def test_changing_the_password_ends_the_other_sessions_and_keeps_this_one(site: Site) -> None:
    name = unique("changer")
    site.user(name)
    here, elsewhere = PortalClient(site).signed_in(name), PortalClient(site).signed_in(name)
    answer = here.post("password", {"current": PASSWORD, "new": NEW_PASSWORD})
    assert answer.status_code == 200, answer.text
    assert answer.json()["other_sessions_ended"] == 1
    assert here.get("me").status_code == 200
    error(elsewhere.get("me"), 401, "not_signed_in")
    assert PortalClient(site).login(name, PASSWORD).status_code == 401
    PortalClient(site).signed_in(name, NEW_PASSWORD)


def test_a_wrong_current_password_is_refused_and_counts_as_a_failed_sign_in(site: Site) -> None:
    name = unique("guesser")
    site.user(name)
    client = PortalClient(site).signed_in(name)
    for _ in range(5):
        error(
            client.post("password", {"current": "not it at all", "new": NEW_PASSWORD}), 403, "wrong_password"
        )
    answer = client.post("password", {"current": PASSWORD, "new": NEW_PASSWORD})
    error(answer, 429, "login_throttled")
    assert int(answer.headers["retry-after"]) > 0
    assert client.get("me").status_code == 200  # still signed in, password unchanged
    assert PortalClient(site).login(name, NEW_PASSWORD).status_code in (401, 429)


def test_a_new_password_follows_the_policy(site: Site) -> None:
    name = unique("policy")
    site.user(name)
    client = PortalClient(site).signed_in(name)
    error(client.post("password", {"current": PASSWORD, "new": "short"}), 400, "password_too_short")
    error(client.post("password", {"current": PASSWORD, "new": name.upper()}), 400, "password_is_name")


def test_a_viewer_may_change_their_own_password(site: Site) -> None:
    name = unique("viewer")
    site.user(name, role="viewer")
    client = PortalClient(site).signed_in(name)
    assert client.post("password", {"current": PASSWORD, "new": NEW_PASSWORD}).status_code == 200


def test_a_user_without_a_password_may_not_set_one_unless_the_operator_allows(site: Site) -> None:
    name = unique("ssoonly")
    user_id = site.user(name, password=None)

    async def sign_in(store: Any) -> str:
        token, _ = await store.tenancy.create_session(user_id, 600)
        return str(token)

    client = PortalClient(site)
    client.http.cookies.set("sg_portal", site.store(sign_in))
    assert client.get("me").status_code == 200
    error(client.post("password", {"new": NEW_PASSWORD}), 403, "password_not_allowed")


def test_changing_the_password_needs_a_session(site: Site) -> None:
    error(site.client().post("password", {"current": PASSWORD, "new": NEW_PASSWORD}), 401, "not_signed_in")


@pytest.fixture(scope="module")
def misconfigured(upstream: Upstream) -> Iterator[Site]:
    """Registration into a group nobody made, and a single sign-on provider that is not there."""
    oidc = {"issuer": "http://127.0.0.1:9/nowhere", "client_id": "c", "label": "Gone"}
    with portal_site("sqlite", upstream, registration={"enabled": True, "group": "nowhere"}, oidc=oidc) as s:
        yield s


def test_registration_into_a_missing_group_says_to_tell_the_operator(misconfigured: Site) -> None:
    client = misconfigured.client()
    error(
        client.post("register", {"name": unique("lost"), "password": NEW_PASSWORD}),
        503,
        "registration_misconfigured",
    )
    assert client.get("me").status_code == 401
    assert "registration cannot create users" in misconfigured.gateway.logs()


def test_an_unreachable_provider_sends_the_browser_back_with_a_clear_refusal(misconfigured: Site) -> None:
    answer = httpx.get(f"{misconfigured.url}/portal/api/oidc/start", timeout=30)
    assert answer.status_code == 302
    assert answer.headers["location"] == "/portal/?sso_error=sso_unavailable"
    assert "set-cookie" not in answer.headers
