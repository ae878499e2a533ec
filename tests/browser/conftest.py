"""The dashboard in a real browser: Playwright driving Debian's Chromium (/usr/bin/chromium).

Never a downloaded browser (`playwright install` is not used anywhere): scripts/test.sh installs the
distribution's package. Without it the browser tests are skipped on a developer's machine and fail in
CI (CI=true), where a skip would hide that the dashboard went untested.

Each test gets a fresh browser context (its own sessionStorage, so its own sign-in) at a given language
and width; screenshots go to test-artifacts/browser/ (gitignored) or $SLUICEGATE_TEST_ARTIFACTS.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from support.deployment import ADMIN_KEY, PROVIDER_KEY
from support.gateway import Gateway, start_gateway
from support.upstream import Upstream

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
WIDTHS = {"desktop": (1280, 860), "phone": (390, 844)}
LOCALES = {"en": "en-US", "zh": "zh-CN"}
ARTIFACTS = (
    Path(
        os.environ.get("SLUICEGATE_TEST_ARTIFACTS") or Path(__file__).resolve().parents[2] / "test-artifacts"
    )
    / "browser"
)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Chromium for one module's tests. Not for the session: while Playwright's sync API is open it keeps
    an asyncio loop marked running in the main thread, so later tests' `asyncio.run` would fail."""
    if not os.access(CHROMIUM, os.X_OK):
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing: scripts/test.sh installs Debian's chromium package")
        pytest.skip(f"{CHROMIUM} is not installed (scripts/test.sh installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def upstream() -> Iterator[Upstream]:
    with Upstream() as stand_in:
        yield stand_in


@pytest.fixture(scope="module")
def site(upstream: Upstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    """A gateway with an admin key, a store and the stand-in upstream, logging every 0.2 s."""
    database = tmp_path_factory.mktemp("browser") / "sluicegate.db"
    config = {
        "admin_key": ADMIN_KEY,
        "database": f"sqlite:///{database}",
        "upstreams": {"up": {"base_url": upstream.url, "api_key": PROVIDER_KEY}},
        "models": {"gpt-4o-mini": "up", "gpt-4o": "up/gpt-4o-mini"},
        "metering": {"flush_interval_s": 0.2},
    }
    # The master key seals provider keys added through the live-config API (store/crypto.py).
    with start_gateway(config, env={"SLUICEGATE_MASTER_KEY": "browser-tests-master-key"}) as gateway:
        yield gateway


def shot_name(text: str) -> str:
    return re.sub(r"[^a-zA-Z0-9_.-]+", "-", text).strip("-")


@pytest.fixture
def open_page(browser: Any, request: pytest.FixtureRequest) -> Iterator[Callable[..., Any]]:
    """`open_page(site, lang, width)`: a new signed-in page; `page.shot(name)` saves a screenshot."""
    contexts: list[Any] = []

    def make(site: Gateway, lang: str = "en", width: str = "desktop", sign_in: bool = True) -> Any:
        w, h = WIDTHS[width]
        context = browser.new_context(
            viewport={"width": w, "height": h}, locale=LOCALES[lang], accept_downloads=True
        )
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(15_000)
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.js_errors = errors
        page.goto(f"{site.url}/admin/ui/")
        if sign_in:
            page.fill("#admin-key", ADMIN_KEY)
            page.click("#login-form button[type=submit]")
            page.wait_for_selector("#tabs:not([hidden])")

        def shot(name: str) -> Path:
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            path = ARTIFACTS / f"{shot_name(request.node.name)}-{name}.png"
            page.screenshot(path=str(path), full_page=True)
            return path

        page.shot = shot
        return page

    yield make
    for context in contexts:
        context.close()


@pytest.fixture
def new_page(browser: Any) -> Iterator[Callable[..., Any]]:
    """`new_page(lang, width=1280)`: a fresh page in its own context (the self-service portal's tests
    sign in themselves); `page.js_errors` collects the page's uncaught errors."""
    contexts: list[Any] = []

    def make(lang: str, width: int = 1280) -> Any:
        context = browser.new_context(viewport={"width": width, "height": 900}, locale=LOCALES[lang])
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(15_000)
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.js_errors = errors
        return page

    yield make
    for context in contexts:
        context.close()
