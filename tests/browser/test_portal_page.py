"""The self-service portal in Chromium against a real gateway: sign in, redeem a code (balance and
ledger update), create a key and see it once, use it, revoke it, see the usage and logs, sign out;
register, change one's password, and sign in with single sign-on through a stand-in OIDC provider; in
English and in Chinese, with the translated texts checked. Screenshots go to test-artifacts/browser/.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from support.oidc_provider import CLIENT_ID, CLIENT_SECRET, OidcProvider
from support.portal_kit import PASSWORD, Site, chat, portal_site
from support.upstream import Upstream

LOCALES = {"en": "en-US", "zh": "zh-CN"}
ARTIFACTS = (
    Path(
        os.environ.get("SLUICEGATE_TEST_ARTIFACTS") or Path(__file__).resolve().parents[2] / "test-artifacts"
    )
    / "browser"
)
# What each language must show (from src/sluicegate/portal/static/i18n.json).
TEXTS = {
    "en": {
        "sign_in": "Sign in",
        "wrong": "Wrong name or password.",
        "balance": "Balance",
        "redeemed": "Redeemed: $5.00 added to your balance.",
        "kind_redeem": "Code redeemed",
        "secret_once": "copy it now: it is shown only once.",
        "active": "active",
        "no_keys": "You have no keys yet.",
        "keys_title": "My API keys",
        "sign_out": "Sign out",
        "code_redeemed": "This code was already redeemed.",
    },
    "zh": {
        "sign_in": "登录",
        "wrong": "用户名或密码错误。",
        "balance": "余额",
        "redeemed": "兑换成功：余额增加 US$5.00。",
        "kind_redeem": "兑换码充值",
        "secret_once": "请立即复制：它只显示这一次。",
        "active": "可用",
        "no_keys": "你还没有密钥。",
        "keys_title": "我的 API 密钥",
        "sign_out": "退出登录",
        "code_redeemed": "该兑换码已被使用。",
    },
}


@pytest.fixture(scope="module")
def site(upstream: Upstream) -> Iterator[Site]:
    with portal_site("sqlite", upstream) as s:
        yield s


def shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"portal-{name}.png"), full_page=True)


def text(page: Any, selector: str) -> str:
    return str(page.locator(selector).inner_text())


def sign_in(page: Any, site: Site, name: str, password: str = PASSWORD) -> None:
    page.goto(f"{site.url}/portal/")
    page.wait_for_selector("#login:not([hidden])")
    page.fill("#login-name", name)
    page.fill("#login-password", password)
    page.click("#login-form button[type=submit]")


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_a_user_signs_in_redeems_a_code_and_manages_a_key(
    site: Site, new_page: Callable[..., Any], lang: str
) -> None:
    words = TEXTS[lang]
    name = f"browser-{lang}-{time.monotonic_ns() % 100_000}"
    site.user(name)
    (code,) = site.codes("5")
    page = new_page(lang)

    # A wrong password is refused in the page's language, and the page stays at the form.
    sign_in(page, site, name, "not-the-password")
    assert text(page, "#login h1") == words["sign_in"]
    page.wait_for_selector("#login-error:not([hidden])")
    assert text(page, "#login-error") == words["wrong"]

    page.fill("#login-password", PASSWORD)
    page.click("#login-form button[type=submit]")
    page.wait_for_selector("#portal:not([hidden])")
    assert text(page, "#balance-title") == words["balance"]
    assert text(page, "#keys-title") == words["keys_title"]
    assert text(page, "#who") == name
    assert "0.00" in text(page, "#balance-amount")

    # Redeem: the balance and the ledger update.
    page.fill("#redeem-code", code)
    page.click("#redeem-form button[type=submit]")
    page.wait_for_selector("#redeem-result.ok")
    assert text(page, "#redeem-result") == words["redeemed"]
    assert "5.00" in text(page, "#balance-amount")
    assert words["kind_redeem"] in text(page, "#ledger-table tbody tr:first-child")
    # The same code again is refused, in the page's language.
    page.fill("#redeem-code", code)
    page.click("#redeem-form button[type=submit]")
    page.wait_for_selector("#redeem-result.error")
    assert text(page, "#redeem-result") == words["code_redeemed"]
    assert len(page.locator("#ledger-table tbody tr").all()) == 1

    # Create a key: its secret is shown once.
    page.fill("#key-name", "laptop")
    page.click("#key-form button[type=submit]")
    page.wait_for_selector("#key-secret:not([hidden])")
    secret = text(page, "#key-secret-value")
    assert secret.startswith("sk-")
    assert words["secret_once"] in text(page, "#key-secret")
    page.wait_for_selector("#keys-table tbody tr")
    row = page.locator("#keys-table tbody tr")
    assert row.count() == 1 and "laptop" in row.inner_text() and words["active"] in row.inner_text()
    assert secret not in text(page, "#keys-table")
    shot(page, f"{lang}-key-created")
    page.click("#key-secret-done")
    assert page.locator("#key-secret").is_hidden()
    assert secret not in page.content()

    # The key works; its request shows in the logs and usage after a refresh.
    assert chat(site, secret).status_code == 200
    deadline = time.monotonic() + 15
    # (The page asks for usage and logs side by side: one answer may predate the log's write, the other not.)
    while time.monotonic() < deadline and (
        page.locator("#logs-table tbody tr").count() == 0
        or page.locator("#usage-table tbody tr").count() == 0
    ):
        page.click("#refresh")
        page.wait_for_timeout(300)
    assert "laptop" in text(page, "#logs-table tbody tr:first-child")
    assert "gpt-4o-mini" in text(page, "#usage-table")

    # A reload keeps the session (the cookie) and never shows the secret again.
    page.reload()
    page.wait_for_selector("#portal:not([hidden])")
    assert secret not in page.content()

    shot(page, f"{lang}-signed-in")

    # Revoke it: the key stops working at once.
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#keys-table button[data-revoke]")
    page.wait_for_selector("#keys-table p.empty")
    assert text(page, "#keys-table") == words["no_keys"]
    assert chat(site, secret).status_code == 401

    # Sign out: back at the form, and the portal's data is gone.
    assert text(page, "#sign-out") == words["sign_out"]
    page.click("#sign-out")
    page.wait_for_selector("#login:not([hidden])")
    assert page.locator("#portal").is_hidden()
    page.reload()
    page.wait_for_selector("#login:not([hidden])")
    assert page.js_errors == []


def test_the_language_switch_translates_the_signed_in_page(site: Site, new_page: Callable[..., Any]) -> None:
    name = f"switch-{time.monotonic_ns() % 100_000}"
    user_id = site.user(name)
    site.topup(user_id, "3")
    page = new_page("en")
    sign_in(page, site, name)
    page.wait_for_selector("#portal:not([hidden])")
    assert text(page, "#balance-title") == "Balance"
    assert "Top-up" in text(page, "#ledger-table")
    page.click("#lang-toggle")
    assert text(page, "#balance-title") == "余额"
    assert "充值" in text(page, "#ledger-table")
    assert text(page, "#me-role") == "成员"
    assert text(page, "#lang-toggle") == "English"
    assert page.evaluate("document.documentElement.lang") == "zh-CN"
    page.click("#lang-toggle")
    assert text(page, "#me-role") == "Member"
    assert page.js_errors == []


def test_on_a_phone_the_page_fits_the_screen(site: Site, new_page: Callable[..., Any]) -> None:
    name = f"phone-{time.monotonic_ns() % 100_000}"
    site.topup(site.user(name), "1")
    page = new_page("zh", width=390)
    sign_in(page, site, name)
    page.wait_for_selector("#portal:not([hidden])")
    page.fill("#key-name", "phone")
    page.click("#key-form button[type=submit]")
    page.wait_for_selector("#keys-table tbody tr")
    # Wide tables scroll inside their own box; the page itself never scrolls sideways.
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    shot(page, "zh-phone")
    assert page.js_errors == []


# -- accounts: registering, one's own password, single sign-on -------------------------------------------

ACCOUNT_TEXTS = {
    "en": {
        "register_link": "Create an account",
        "register_title": "Create an account",
        "taken": "That name is taken; choose another.",
        "mismatch": "The two passwords differ.",
        "sso": "Sign in with Stand-in IdP",
        "wrong_current": "The current password is wrong.",
        "changed": "Password changed. Your other sign-ins have ended (0).",
        "disabled": "This account is disabled; ask the operator.",
        "password_title": "Change password",
    },
    "zh": {
        "register_link": "注册账号",
        "register_title": "注册账号",
        "taken": "该用户名已被占用，请换一个。",
        "mismatch": "两次输入的密码不一致。",
        "sso": "使用 Stand-in IdP 登录",
        "wrong_current": "当前密码错误。",
        "changed": "密码已修改，你在其他地方的登录已退出（0 个）。",
        "disabled": "该账号已停用，请联系管理员。",
        "password_title": "修改密码",
    },
}
NEW_PASSWORD = "a fresh passphrase 42"


@pytest.fixture(scope="module")
def idp() -> Iterator[OidcProvider]:
    provider = OidcProvider()
    yield provider
    provider.close()


@pytest.fixture(scope="module")
def open_site(upstream: Upstream, idp: OidcProvider) -> Iterator[Site]:
    """Registration open, and single sign-on that creates users at their first sign-in."""
    oidc = {
        "issuer": idp.issuer,
        "client_id": CLIENT_ID,
        "client_secret": "${SG_TEST_OIDC_SECRET}",
        "label": "Stand-in IdP",
        "create_users": True,
    }
    env = {"SG_TEST_OIDC_SECRET": CLIENT_SECRET}
    with portal_site("sqlite", upstream, env=env, registration={"enabled": True}, oidc=oidc) as s:
        yield s


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_a_visitor_registers_changes_their_password_and_signs_in_with_it(
    open_site: Site, new_page: Callable[..., Any], lang: str
) -> None:
    words = ACCOUNT_TEXTS[lang]
    taken = f"taken-{lang}-{time.monotonic_ns() % 100_000}"
    open_site.user(taken)
    name = f"reg-{lang}-{time.monotonic_ns() % 100_000}"
    page = new_page(lang)
    page.goto(f"{open_site.url}/portal/")
    page.wait_for_selector("#register-offer:not([hidden])")
    assert text(page, "#show-register") == words["register_link"]
    page.click("#show-register")
    page.wait_for_selector("#register:not([hidden])")
    assert text(page, "#register h1") == words["register_title"]

    # Passwords that differ never leave the page; a taken name is refused in the page's language.
    page.fill("#register-name", taken)
    page.fill("#register-password", NEW_PASSWORD)
    page.fill("#register-confirm", NEW_PASSWORD + "!")
    page.click("#register-form button[type=submit]")
    page.wait_for_selector("#register-error:not([hidden])")
    assert text(page, "#register-error") == words["mismatch"]
    page.fill("#register-confirm", NEW_PASSWORD)
    page.click("#register-form button[type=submit]")
    page.locator("#register-error", has_text=words["taken"]).wait_for()

    page.fill("#register-name", name)
    page.click("#register-form button[type=submit]")
    page.wait_for_selector("#portal:not([hidden])")
    assert text(page, "#who") == name
    assert page.locator("#register").is_hidden()
    shot(page, f"{lang}-registered")

    # Change the password: the wrong current one is refused, the right one accepted.
    assert text(page, "#password-title") == words["password_title"]
    page.fill("#password-current", "not my password")
    page.fill("#password-new", "another passphrase 7")
    page.fill("#password-confirm", "another passphrase 7")
    page.click("#password-form button[type=submit]")
    page.wait_for_selector("#password-result.error")
    assert text(page, "#password-result") == words["wrong_current"]
    page.fill("#password-current", NEW_PASSWORD)
    page.click("#password-form button[type=submit]")
    page.wait_for_selector("#password-result.ok")
    assert text(page, "#password-result") == words["changed"]
    assert page.input_value("#password-new") == ""

    # Signed out and in again with the new password.
    page.click("#sign-out")
    page.wait_for_selector("#login:not([hidden])")
    sign_in(page, open_site, name, "another passphrase 7")
    page.wait_for_selector("#portal:not([hidden])")
    assert page.js_errors == []


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_sign_in_with_single_sign_on_round_trips_through_the_provider(
    open_site: Site, idp: OidcProvider, new_page: Callable[..., Any], lang: str
) -> None:
    words = ACCOUNT_TEXTS[lang]
    login = f"sso-{lang}-{time.monotonic_ns() % 100_000}"
    idp.sign_in_as(f"subject-{login}", preferred_username=login)
    page = new_page(lang)
    page.goto(f"{open_site.url}/portal/")
    page.wait_for_selector("#sso-box:not([hidden])")
    assert text(page, "#sso-button") == words["sso"]
    shot(page, f"{lang}-sign-in-options")
    page.click("#sso-button")
    page.wait_for_selector("#portal:not([hidden])")
    assert page.url == f"{open_site.url}/portal/"
    assert text(page, "#who") == login
    # A user made by single sign-on has no password to give, and may not set one by default.
    assert page.locator("#password-form").is_hidden()
    assert page.locator("#password-hint").is_visible()

    # Once the operator disables them, the round trip comes back refused, in the page's language.
    user = open_site.store(lambda store: store.tenancy.get_user(login))
    open_site.store(lambda store: store.tenancy.update_user(user.id, disabled=True))
    page.click("#sign-out")
    page.wait_for_selector("#login:not([hidden])")
    page.click("#sso-button")
    page.wait_for_selector("#login-error:not([hidden])")
    assert text(page, "#login-error") == words["disabled"]
    assert "sso_error" not in page.url  # shown once, then dropped from the address
    assert page.locator("#portal").is_hidden()
    assert page.js_errors == []
