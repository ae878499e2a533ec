"""The portal's playground in Chromium against a real gateway and the stand-in upstream: a user signs
in, creates a key and hands it to the playground, picks a model from the key's own /v1/models, and a
streamed answer comes in piece by piece; the call's tokens and what it was charged show, and the
balance and ledger then hold the charge. A revoked key's refusal is said readably; stop ends a stream;
the same call in code carries no secret unless asked; at phone width nothing scrolls sideways. In
English and Chinese. Screenshots go to test-artifacts/browser/.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Iterator
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import pytest
from support.gateway import start_gateway
from support.portal_kit import PASSWORD, Site, database, portal_config
from support.upstream import Upstream

LOCALES = {"en": "en-US", "zh": "zh-CN"}
ARTIFACTS = (
    Path(
        os.environ.get("SLUICEGATE_TEST_ARTIFACTS") or Path(__file__).resolve().parents[2] / "test-artifacts"
    )
    / "browser"
)
# Dear prices (USD per million tokens), so that one small call costs whole cents and shows in the ledger.
PRICES = {"gpt-4o-mini": {"input": 2000.0, "output": 4000.0}}
# What the stand-in answers to a chat (support/upstream.py): an echo of the last message, in chunks.
ECHO = re.compile(r"Echo: (.+) #1 #2 #3")
WORDS = {
    "en": {
        "title": "Playground",
        "charge": "Charge",
        "revoked": "The gateway refused the call (401): this key is not valid here: it was revoked, or it was not pasted whole.",
        "stopped": "(stopped)",
        "not_yours": "This is not one of your active keys",
    },
    "zh": {
        "title": "调试台",
        "charge": "扣费",
        "revoked": "网关拒绝了这次调用（401）：此密钥在这里无效：它已被吊销，或没有完整粘贴。",
        "stopped": "（已停止）",
        "not_yours": "这不是你的可用密钥",
    },
}


@pytest.fixture(scope="module")
def site(upstream: Upstream) -> Iterator[Site]:
    with database("sqlite") as url:
        config = {**portal_config(upstream, url), "prices": PRICES}
        with start_gateway(config) as gateway:
            yield Site(gateway, url)


def shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"portal-playground-{name}.png"), full_page=True)


def text(page: Any, selector: str) -> str:
    return str(page.locator(selector).inner_text())


def signed_in_user(site: Site, page: Any, prefix: str, topup: str = "5") -> str:
    name = f"{prefix}-{time.monotonic_ns() % 1_000_000}"
    site.topup(site.user(name), topup)
    page.goto(f"{site.url}/portal/")
    page.wait_for_selector("#login:not([hidden])")
    page.fill("#login-name", name)
    page.fill("#login-password", PASSWORD)
    page.click("#login-form button[type=submit]")
    page.wait_for_selector("#portal:not([hidden])")
    return name


def new_key_to_playground(page: Any, label: str) -> str:
    """Create a key in the portal and hand it over from the one-time box; returns its secret."""
    page.fill("#key-name", label)
    page.click("#key-form button[type=submit]")
    page.wait_for_selector("#key-secret:not([hidden])")
    secret = text(page, "#key-secret-value")
    page.click("#key-secret-play")
    assert page.locator("#key-secret").is_hidden() and text(page, "#key-secret-value") == ""
    page.wait_for_selector('#play-model option[value="gpt-4o-mini"]', state="attached")
    assert page.input_value("#play-key") == secret
    page.select_option("#play-model", "gpt-4o-mini")
    return secret


def send(page: Any, prompt: str) -> None:
    page.fill("#play-prompt", prompt)
    page.click("#play-send")


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_a_new_key_streams_an_answer_and_the_charge_reaches_the_ledger(
    site: Site, upstream: Upstream, new_page: Callable[..., Any], lang: str
) -> None:
    words = WORDS[lang]
    page = new_page(lang)
    signed_in_user(site, page, f"play-{lang}")
    assert text(page, "#play-title") == words["title"]
    assert "5.00" in text(page, "#balance-amount")
    secret = new_key_to_playground(page, "playground")
    assert page.locator("#play-key-note").is_hidden()  # the user's own key: no warning
    assert page.is_checked("#play-stream")

    upstream.behaviour = "slow_stream delay=0.3"  # chunks 0.3 s apart: the page must show them as they come
    try:
        send(page, f"hello from {lang}")
        partial = page.wait_for_function(
            "() => { const m = document.querySelector('#play-chat .msg.assistant .msg-text');"
            " return m && m.textContent.length > 0 && !m.textContent.endsWith('#3') && m.textContent; }"
        ).json_value()
        page.wait_for_function("() => !document.querySelector('#play-send').disabled")
    finally:
        upstream.behaviour = "ok"
    answer = text(page, "#play-chat .msg.assistant .msg-text")
    found = ECHO.fullmatch(answer)
    assert found and found.group(1) == f"hello from {lang}"
    assert answer.startswith(partial) and len(partial) < len(answer), "the answer did not arrive in pieces"

    # The figures: status, tokens from the usage chunk, and the charge from the user's own log.
    metrics = page.locator("#play-metrics")
    assert "200" in metrics.inner_text()
    tokens = re.search(r"(\d+) \+ (\d+)", metrics.inner_text())
    assert tokens and int(tokens.group(1)) > 0 and int(tokens.group(2)) > 0
    page.wait_for_function(
        "() => /\\$0\\.0\\d*[1-9]/.test(document.querySelector('#play-metrics').textContent)"
    )
    charged = re.search(r"((?:US)?\$)(0\.\d+)", metrics.inner_text())
    assert charged is not None
    dollar, amount = charged.group(1), Decimal(charged.group(2))
    # The balance and ledger are drawn again with the charge in them, to the same amount.
    page.wait_for_function(
        f"() => document.querySelector('#ledger-table tbody tr')?.textContent.includes('{words['charge']}')"
    )
    first = text(page, "#ledger-table tbody tr:first-child")
    assert f"-{dollar}{amount}" in first.replace("\u2212", "-")
    left = (Decimal(5) - amount).quantize(Decimal("0.01"), ROUND_HALF_UP)
    assert text(page, "#balance-amount") == f"{dollar}{left}"
    assert "playground" in text(page, "#logs-table tbody tr:first-child")

    # The same call in code: the endpoint and the prompt, the secret only when asked.
    code = text(page, "#play-code")
    assert f"{site.url}/v1/chat/completions" in code and f"hello from {lang}" in code
    assert secret not in code and "$SLUICEGATE_API_KEY" in code
    page.click('#play-code-langs [data-lang="python"]')
    code = text(page, "#play-code")
    assert "from openai import OpenAI" in code and f'base_url="{site.url}/v1"' in code and secret not in code
    page.check("#play-code-key")
    assert secret in text(page, "#play-code")
    shot(page, f"{lang}-answered")

    # Revoke the key: the next call is refused, and the page says so readably, in the page's language.
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#keys-table button[data-revoke]")
    page.wait_for_selector("#keys-table p.empty")
    assert words["not_yours"] in text(page, "#play-key-note")  # no longer one of the user's active keys
    send(page, "once more")
    page.wait_for_selector("#play-error:not([hidden])")
    assert text(page, "#play-error") == words["revoked"]
    assert page.locator("#play-chat .msg").count() == 2  # the refused prompt is not left in the chat
    assert "401" in text(page, "#play-metrics")
    assert text(page, "#play-metrics .card:nth-child(4) .card-value") == "-"  # a refused call: no charge
    shot(page, f"{lang}-revoked")
    assert page.js_errors == []


def test_stop_ends_a_streamed_answer_and_says_so(
    site: Site, upstream: Upstream, new_page: Callable[..., Any]
) -> None:
    page = new_page("zh")
    signed_in_user(site, page, "stopper")
    new_key_to_playground(page, "stop")
    upstream.behaviour = "slow_stream delay=1.5"
    try:
        send(page, "a long answer")
        page.wait_for_function("() => !document.querySelector('#play-stop').disabled")
        page.wait_for_function(
            "() => (document.querySelector('#play-chat .msg.assistant .msg-text')?.textContent || '').length > 0"
        )
        page.click("#play-stop")
        page.wait_for_function("() => !document.querySelector('#play-send').disabled")
    finally:
        upstream.behaviour = "ok"
    answer = text(page, "#play-chat .msg.assistant .msg-text")
    assert answer.endswith(WORDS["zh"]["stopped"]) and "#3" not in answer
    assert page.is_disabled("#play-stop")
    assert page.js_errors == []


def test_a_pasted_key_of_another_user_is_flagged_and_charged_to_its_owner(
    site: Site, new_page: Callable[..., Any]
) -> None:
    owner = new_page("en")
    signed_in_user(site, owner, "owner")
    theirs = new_key_to_playground(owner, "lent")
    page = new_page("en")
    signed_in_user(site, page, "borrower")
    page.fill("#play-key", theirs)
    page.click("#play-models-load")
    page.wait_for_selector('#play-model option[value="gpt-4o-mini"]', state="attached")
    assert WORDS["en"]["not_yours"] in text(page, "#play-key-note")
    send(page, "whose money?")
    page.wait_for_function(
        "() => document.querySelector('#play-metrics').textContent.includes(\"to the key's owner\")"
    )
    assert "5.00" in text(page, "#balance-amount")  # nothing charged to the borrower
    assert page.js_errors == []


def test_at_phone_width_the_playground_fits_the_screen(site: Site, new_page: Callable[..., Any]) -> None:
    page = new_page("zh", width=390)
    signed_in_user(site, page, "phone")
    new_key_to_playground(page, "phone")
    send(page, "small screen")
    page.wait_for_selector("#play-chat .msg.assistant")
    page.wait_for_function("() => !document.querySelector('#play-send').disabled")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    box = page.locator("#play-send").bounding_box()
    assert box is not None and box["x"] + box["width"] <= 390
    shot(page, "zh-phone")
    assert page.js_errors == []
