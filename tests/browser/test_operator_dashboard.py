"""An operator signs in to the portal and opens the dashboard without the admin key, in Chromium:
the dashboard asks the admin API who it is acting as, shows the operator's name, loads its pages and
makes a change (a key) through the operator's session; signing out there ends the portal session too.
A member who signs in to the portal still meets the dashboard's admin-key form. Both languages.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from support.portal_kit import PASSWORD, Site, portal_site
from support.upstream import Upstream

WHO = {"en": "Operator: {name}", "zh": "运营者：{name}"}


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
    page.goto(f"{site.url}/admin/ui/")
    page.wait_for_selector("#login:not([hidden])")
    assert page.locator("#tabs").is_hidden()
    assert page.locator("#who").is_hidden()
    assert page.js_errors == []
