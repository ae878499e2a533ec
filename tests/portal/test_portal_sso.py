"""Single sign-on (OIDC) against a stand-in provider and a real gateway on SQLite and PostgreSQL: the
whole authorization-code flow with PKCE followed by an HTTP client keeping cookies; ID tokens that are
wrong in any way refused; a forged, replayed or other browser's state refused; users linked by
(issuer, subject) only; creation at first sign-in only when configured; disabled users refused; and
no secret, code or token in the gateway's logs.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from support.gateway import free_port, start_gateway
from support.oidc_provider import CLIENT_ID, CLIENT_SECRET, MISBEHAVIOURS, OidcProvider
from support.pg import fresh_postgres_database
from support.portal_kit import Site, next_address, portal_config, portal_site
from support.upstream import Upstream

from sluicegate.store import Store
from sluicegate.store.schema import oidc_logins

SECRET_ENV = {"SG_TEST_OIDC_SECRET": CLIENT_SECRET}


@pytest.fixture(scope="module")
def upstream() -> Iterator[Upstream]:
    with Upstream() as stand_in:
        yield stand_in


@pytest.fixture(scope="module")
def idp() -> Iterator[OidcProvider]:
    provider = OidcProvider()
    yield provider
    provider.close()


@pytest.fixture(autouse=True)
def well_behaved(idp: OidcProvider) -> Iterator[None]:
    idp.misbehave = None
    yield
    idp.misbehave = None


def oidc_config(idp: OidcProvider, **more: Any) -> dict[str, Any]:
    return {
        "issuer": idp.issuer,
        "client_id": CLIENT_ID,
        "client_secret": "${SG_TEST_OIDC_SECRET}",
        "label": "Stand-in IdP",
        **more,
    }


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def site(request: pytest.FixtureRequest, upstream: Upstream, idp: OidcProvider) -> Iterator[Site]:
    with portal_site(request.param, upstream, env=SECRET_ENV, oidc=oidc_config(idp)) as s:
        yield s


@pytest.fixture(scope="module")
def creating(upstream: Upstream, idp: OidcProvider) -> Iterator[Site]:
    config = oidc_config(idp, create_users=True, group="sso-people", allowed_domains=["example.com"])
    with portal_site("sqlite", upstream, env=SECRET_ENV, oidc=config) as s:
        s.store(lambda store: store.tenancy.set_group("sso-people", ratio=1.0))
        yield s


def browser() -> httpx.Client:
    return httpx.Client(headers={"x-forwarded-for": next_address()}, timeout=20, follow_redirects=True)


def sign_in(site: Site, client: httpx.Client) -> httpx.Response:
    """Press "Sign in with ...": follow the provider and back to the portal's page."""
    return client.get(f"{site.url}/portal/api/oidc/start")


def refusal(response: httpx.Response) -> str | None:
    assert response.status_code == 200, response.text
    assert urlsplit(str(response.url)).path == "/portal/"
    return parse_qs(urlsplit(str(response.url)).query).get("sso_error", [None])[0]


def me(site: Site, client: httpx.Client) -> httpx.Response:
    return client.get(f"{site.url}/portal/api/me")


def linked_user(site: Site, idp: OidcProvider, **kw: Any) -> tuple[str, str, str]:
    """A user linked to a fresh subject at the provider, which will sign in as them: (id, name, sub)."""
    name = f"linked-{time.monotonic_ns() % 10_000_000}"
    subject = f"sub-{time.monotonic_ns()}"
    user_id = site.user(name, password=None, sso=(idp.issuer, subject), **kw)
    idp.sign_in_as(subject, preferred_username="whatever-the-idp-says")
    return user_id, name, subject


def pending_logins(site: Site) -> int:
    async def count(store: Store) -> int:
        async with store.engine.connect() as conn:
            return len((await conn.execute(oidc_logins.select())).all())

    return site.store(count)


# -- the flow ------------------------------------------------------------------------------------------


def test_the_page_is_told_single_sign_on_is_there(site: Site) -> None:
    options = httpx.get(f"{site.url}/portal/api/options").json()
    assert options["sso"]["label"] == "Stand-in IdP"
    assert options["registration"] is False


def test_a_linked_user_signs_in_and_gets_the_same_session_as_a_password_sign_in(
    site: Site, idp: OidcProvider
) -> None:
    user_id, name, _ = linked_user(site, idp)
    with browser() as client:
        answer = sign_in(site, client)
        assert refusal(answer) is None
        hops = [r for r in answer.history]
        # start -> provider -> callback -> page
        assert [r.status_code for r in hops] == [302, 302, 302]
        session_cookie = hops[-1].headers.get_list("set-cookie")
        sg = next(c for c in session_cookie if c.startswith("sg_portal="))
        assert "HttpOnly" in sg and "SameSite=Strict" in sg and "Path=/portal" in sg
        assert hops[-1].headers["location"] == "/portal/"
        found = me(site, client)
        assert found.status_code == 200, found.text
        assert found.json()["user"] == {**found.json()["user"], "id": user_id, "name": name}
    # The provider was asked for a code with PKCE S256, a state and a nonce; the verifier went to the
    # token endpoint with the client's secret (HTTP Basic, so not in the form).
    asked = idp.authorize_requests[-1]
    assert (
        asked["code_challenge_method"] == "S256" and len(asked["state"]) >= 32 and len(asked["nonce"]) >= 32
    )
    assert asked["redirect_uri"] == f"{site.url}/portal/api/oidc/callback"
    assert len(idp.token_requests[-1]["code_verifier"]) >= 43
    assert "client_secret" not in idp.token_requests[-1]
    assert pending_logins(site) == 0  # the login was used up


def test_an_unknown_user_is_refused_when_creation_is_off(site: Site, idp: OidcProvider) -> None:
    idp.sign_in_as(f"stranger-{time.monotonic_ns()}", preferred_username="stranger")
    with browser() as client:
        assert refusal(sign_in(site, client)) == "sso_unknown_user"
        assert me(site, client).status_code == 401
    assert site.store(lambda store: store.tenancy.get_user("stranger")) is None


def test_a_disabled_user_is_refused(site: Site, idp: OidcProvider) -> None:
    user_id, _, _ = linked_user(site, idp)
    site.store(lambda store: store.tenancy.update_user(user_id, disabled=True))
    with browser() as client:
        assert refusal(sign_in(site, client)) == "sso_user_disabled"
        assert me(site, client).status_code == 401


@pytest.mark.parametrize("misbehaviour", MISBEHAVIOURS)
def test_an_id_token_that_is_wrong_in_any_way_is_refused(
    site: Site, idp: OidcProvider, misbehaviour: str
) -> None:
    linked_user(site, idp)
    idp.misbehave = misbehaviour
    with browser() as client:
        assert refusal(sign_in(site, client)) == "sso_failed"
        assert me(site, client).status_code == 401
    refused = [line for line in site.gateway.logs().splitlines() if "single sign-on refused" in line]
    assert WHY[misbehaviour] in refused[-1]


# What the gateway's log says for each way an ID token is wrong.
WHY = {
    "aud": "'aud'",
    "iss": "'iss'",
    "expired": "ExpiredTokenError",
    "signature": "BadSignatureError",
    "nonce": "'nonce'",
}


def callback_url(site: Site, client: httpx.Client) -> str:
    """Start a login and let the provider approve it, stopping before the callback: its URL."""
    start = client.get(f"{site.url}/portal/api/oidc/start", follow_redirects=False)
    assert start.status_code == 302
    approved = client.get(start.headers["location"], follow_redirects=False)
    assert approved.status_code == 302
    return str(approved.headers["location"])


def test_a_replayed_state_is_refused(site: Site, idp: OidcProvider) -> None:
    linked_user(site, idp)
    with browser() as client:
        url = callback_url(site, client)
        binding = client.cookies["sg_oidc"]
        assert refusal(client.get(url)) is None
        client.post(f"{site.url}/portal/api/logout", json={})
        # The first callback cleared the binding cookie: give it back, as an attacker replaying the
        # whole request would. The state itself is used up.
        client.cookies.set("sg_oidc", binding, path="/portal/api/oidc")
        replay = client.get(url)
        assert refusal(replay) == "sso_expired"
        assert me(site, client).status_code == 401


def test_a_forged_state_is_refused(site: Site, idp: OidcProvider) -> None:
    linked_user(site, idp)
    with browser() as client:
        callback_url(site, client)  # a real login under way in this browser, with its cookie
        forged = client.get(
            f"{site.url}/portal/api/oidc/callback", params={"code": "code-x", "state": "forged"}
        )
        assert refusal(forged) == "sso_expired"
        assert me(site, client).status_code == 401


def test_a_login_started_in_another_browser_cannot_be_finished_here(site: Site, idp: OidcProvider) -> None:
    """Login CSRF: an attacker starts a login as themselves and sends the victim the callback link."""
    linked_user(site, idp)
    with browser() as attacker, browser() as victim:
        url = callback_url(site, attacker)
        assert refusal(victim.get(url)) == "sso_expired"
        assert me(site, victim).status_code == 401
        assert refusal(attacker.get(url)) == "sso_expired"  # and it is used up


def test_the_provider_saying_no_is_a_clear_refusal(site: Site) -> None:
    with browser() as client:
        answer = client.get(
            f"{site.url}/portal/api/oidc/callback", params={"error": "access_denied", "state": "s"}
        )
        assert refusal(answer) == "sso_refused"


def test_a_user_signed_in_by_sso_cannot_set_a_password_by_default(site: Site, idp: OidcProvider) -> None:
    linked_user(site, idp)
    with browser() as client:
        assert refusal(sign_in(site, client)) is None
        answer = client.post(f"{site.url}/portal/api/password", json={"new": "a long new passphrase"})
        assert answer.status_code == 403 and answer.json()["error"]["code"] == "password_not_allowed"


def test_the_operator_sees_who_is_linked_without_secrets(site: Site, idp: OidcProvider) -> None:
    user_id, _, subject = linked_user(site, idp)
    shown = httpx.get(f"{site.url}/admin/users/{user_id}", headers={"authorization": "Bearer " + admin_key()})
    assert shown.status_code == 200, shown.text
    assert shown.json()["sso"] == {"issuer": idp.issuer, "subject": subject}
    assert CLIENT_SECRET not in shown.text


def admin_key() -> str:
    from support.deployment import ADMIN_KEY

    return ADMIN_KEY


def test_no_secret_code_or_token_reaches_the_logs(site: Site, idp: OidcProvider) -> None:
    linked_user(site, idp)
    with browser() as client:
        assert refusal(sign_in(site, client)) is None
    idp.misbehave = "nonce"
    with browser() as client:
        assert refusal(sign_in(site, client)) == "sso_failed"
    logs = site.gateway.logs()
    assert "single sign-on" in logs  # the gateway does log the sign-ins...
    assert CLIENT_SECRET not in logs  # ...but never the secret, a code or a token
    leaked = [value for value in idp.issued if value in logs]
    assert not leaked
    assert "sg_oidc=" not in logs and "sgs_" not in logs


# -- creating users at first sign-in ----------------------------------------------------------------------


def test_first_sign_in_creates_a_member_in_the_configured_group(creating: Site, idp: OidcProvider) -> None:
    subject = f"new-{time.monotonic_ns()}"
    idp.sign_in_as(
        subject, preferred_username=f"ada-{subject[-6:]}", email="ada@example.com", email_verified=True
    )
    with browser() as client:
        assert refusal(sign_in(creating, client)) is None
        user = me(creating, client).json()["user"]
    assert user["name"] == f"ada-{subject[-6:]}"
    assert (user["role"], user["group"]) == ("member", "sso-people")
    stored = creating.store(lambda store: store.tenancy.get_user(user["id"]))
    assert stored.sso == (idp.issuer, subject) and not stored.has_password
    # The second sign-in finds the same user.
    with browser() as client:
        assert refusal(sign_in(creating, client)) is None
        assert me(creating, client).json()["user"]["id"] == user["id"]


def test_a_name_the_provider_gives_never_signs_in_as_the_local_user_holding_it(
    creating: Site, idp: OidcProvider
) -> None:
    holder = f"boss-{time.monotonic_ns() % 1_000_000}"
    holder_id = creating.user(holder)
    idp.sign_in_as(f"impostor-{time.monotonic_ns()}", preferred_username=holder, email="x@example.com")
    with browser() as client:
        assert refusal(sign_in(creating, client)) is None
        user = me(creating, client).json()["user"]
    assert user["id"] != holder_id
    assert user["name"].startswith(f"{holder}-")


def test_an_e_mail_outside_the_allowed_domains_is_refused(creating: Site, idp: OidcProvider) -> None:
    idp.sign_in_as(f"outsider-{time.monotonic_ns()}", preferred_username="outsider", email="eve@evil.example")
    with browser() as client:
        assert refusal(sign_in(creating, client)) == "sso_domain_not_allowed"
    idp.sign_in_as(
        f"unverified-{time.monotonic_ns()}",
        preferred_username="unverified",
        email="u@example.com",
        email_verified=False,
    )
    with browser() as client:
        assert refusal(sign_in(creating, client)) == "sso_domain_not_allowed"


# -- two nodes behind one address ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def nodes(upstream: Upstream, idp: OidcProvider) -> Iterator[tuple[Site, Site]]:
    """Two gateways on one PostgreSQL database; the provider sends everyone back to the second."""
    port = free_port()
    callback = f"http://127.0.0.1:{port}/portal/api/oidc/callback"
    with fresh_postgres_database("sg_sso2") as url:
        config = portal_config(upstream, url, oidc=oidc_config(idp, redirect_uri=callback))
        with (
            start_gateway(config, env=SECRET_ENV) as first,
            start_gateway(config, env=SECRET_ENV, port=port) as second,
        ):
            yield Site(first, url), Site(second, url)


def test_a_login_started_on_one_node_finishes_on_the_other(
    nodes: tuple[Site, Site], idp: OidcProvider
) -> None:
    first, second = nodes
    user_id, _, _ = linked_user(first, idp)
    with browser() as client:
        answer = sign_in(first, client)
        assert refusal(answer) is None
        assert str(answer.url).startswith(second.url)  # the callback (and the page after it) on the second
        assert urlsplit(str(answer.history[1].url)).netloc == urlsplit(idp.issuer).netloc
        assert me(second, client).json()["user"]["id"] == user_id
        assert me(first, client).json()["user"]["id"] == user_id  # one session, good on both
    assert "single sign-on" in second.gateway.logs() and "signed in with" not in first.gateway.logs()
