"""Roles in Chromium. An operator signs in to the portal, follows its link to the dashboard and uses
it without the admin key: the dashboard asks the admin API who it is acting as, shows the operator's
name, loads its pages and makes a change (a key) through the operator's session; signing out there ends
the portal session too. A member sees no such link and meets the dashboard's admin-key form. A team
admin switches the portal to the team and runs the team's keys against the team's balance. Both
languages.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from support.portal_kit import PASSWORD, Site, portal_site
from support.upstream import Upstream

WHO = {"en": "Operator: {name}", "zh": "运营者：{name}"}
TEAM = {"en": "Team: {team}", "zh": "团队：{team}"}
MINE = {"en": "My account", "zh": "我的账户"}
DASHBOARD = {"en": "Open the dashboard", "zh": "打开管理控制台"}


@pytest.fixture(scope="module")
def site(upstream: Upstream) -> Iterator[Site]:
    with portal_site("sqlite", upstream) as s:
        yield s


def portal_sign_in(page: Any, site: Site, name: str) -> None:
    page.goto(f"{site.url}/portal/")
    page.wait_for_selector("#login:not([hidden])")
    page.fill("#login-name", name)
    page.fill("#login-password", PASSWORD)
    page.click("#login-form button[type=submit]")
    page.wait_for_selector("#portal:not([hidden])")


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_an_operator_opens_the_dashboard_without_the_admin_key(
    site: Site, new_page: Callable[..., Any], lang: str
) -> None:
    name = f"op-{lang}-{time.monotonic_ns() % 100_000}"
    site.user(name, role="operator")
    page = new_page(lang)
    portal_sign_in(page, site, name)
    link = page.locator("#dashboard-link")
    assert link.inner_text() == DASHBOARD[lang]
    link.click()
    page.wait_for_url("**/admin/ui/**")
    page.goto(f"{site.url}/admin/ui/#keys")
    page.wait_for_selector("#tabs:not([hidden])")
    assert page.locator("#login").is_hidden()
    assert page.locator("#who").inner_text() == WHO[lang].format(name=name)
    assert page.evaluate("sessionStorage.getItem('sluicegate.adminKey')") is None
    # A change through the session: a key, made on the Keys page as with the admin key.
    page.wait_for_selector("#page-keys:not([hidden])")
    made = page.evaluate(
        """async (name) => {
          const r = await fetch('/admin/keys', {method: 'POST', headers: {'content-type': 'application/json'},
                                                 body: JSON.stringify({name}), credentials: 'same-origin'});
          return r.status;
        }""",
        f"dash-{name}",
    )
    assert made == 201
    audit = site.store(lambda store: store.catalog.audit(limit=20))
    assert any(e.actor == f"operator:{name}" and e.target_kind == "key" for e in audit), audit
    # Signing out of the dashboard ends the portal session as well.
    page.click("#sign-out")
    page.wait_for_selector("#login:not([hidden])")
    page.reload()
    page.wait_for_selector("#login:not([hidden])")
    page.goto(f"{site.url}/portal/")
    page.wait_for_selector("#login:not([hidden])")
    assert page.js_errors == []


def test_a_member_still_meets_the_admin_key_form(site: Site, new_page: Callable[..., Any]) -> None:
    name = f"member-{time.monotonic_ns() % 100_000}"
    site.user(name)
    page = new_page("en")
    portal_sign_in(page, site, name)
    assert page.locator("#dashboard-link").is_hidden()
    assert page.locator("#owner-switch").is_hidden()  # no team to run
    page.goto(f"{site.url}/admin/ui/")
    page.wait_for_selector("#login:not([hidden])")
    assert page.locator("#tabs").is_hidden()
    assert page.locator("#who").is_hidden()
    assert page.js_errors == []


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_a_team_admin_switches_to_the_team_and_runs_its_keys(
    site: Site, new_page: Callable[..., Any], lang: str
) -> None:
    stamp = time.monotonic_ns() % 100_000
    lead = f"lead-{lang}-{stamp}"
    lead_id = site.user(lead)
    site.topup(lead_id, "1")

    async def make(store: Any) -> str:
        team = await store.tenancy.create_team(f"crew-{lang}-{stamp}")
        await store.tenancy.add_member(team.id, lead_id, "team_admin")
        await store.tenancy.topup(f"team:{team.id}", 7_000_000, "budget")
        return str(team.id)

    team_id = site.store(make)
    team_name = f"crew-{lang}-{stamp}"
    page = new_page(lang)
    portal_sign_in(page, site, lead)
    switch = page.locator("#owner-team")
    assert switch.inner_text() == TEAM[lang].format(team=team_name)
    assert page.locator("#owner-user").inner_text() == MINE[lang]
    assert "1" in page.locator("#balance-amount").inner_text()
    switch.click()
    page.wait_for_selector('#owner-team[aria-pressed="true"]')
    page.wait_for_function("document.querySelector('#balance-amount').textContent.includes('7')")
    page.fill("#key-name", "crew-ci")
    page.click("#key-form button[type=submit]")
    page.wait_for_selector("#key-secret:not([hidden])")
    assert page.locator("#key-secret-value").inner_text().startswith("sk-sg-")
    page.click("#key-secret-done")
    page.wait_for_selector("#keys-table >> text=crew-ci")

    async def team_keys(store: Any) -> list[str]:
        return [k.name for k in await store.keys.list() if k.team_id == team_id]

    assert site.store(team_keys) == [f"{team_id}/crew-ci"]  # stored as the team's key, not the lead's
    page.click("#owner-user")
    page.wait_for_selector('#owner-user[aria-pressed="true"]')
    page.wait_for_function("!document.querySelector('#keys-table').textContent.includes('crew-ci')")
    assert page.js_errors == []
