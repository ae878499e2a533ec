"""The dashboard driven in Chromium against a real gateway and the stand-in upstream: sign in, every
tab in reach, the playground's streamed chat with its figures and code, the logs' filters and detail,
the keys' meters, the usage chart's cost axis; in English and Chinese, at 1280 and 390 pixels.

Screenshots of each state are kept under test-artifacts/browser/ (see conftest.py).
"""

from __future__ import annotations

import re
import time
from typing import Any

import httpx
import pytest
from support.deployment import ADMIN_KEY, PROVIDER_KEY
from support.gateway import Gateway
from support.upstream import Upstream

LANGS = ["en", "zh"]
WIDTHS = ["desktop", "phone"]
EVERYWHERE = pytest.mark.parametrize(("lang", "width"), [(lang, w) for lang in LANGS for w in WIDTHS])
TABS = ["overview", "playground", "keys", "usage", "logs", "channels", "upstreams", "models", "audit"]
TABS += ["selfhost"]  # the planner's page (issue 15)
# What the stand-in answers to a chat (support/upstream.py): an echo of the last message, in chunks.
ECHO = re.compile(r"Echo: (.+) #1 #2 #3")


def admin(site: Gateway, method: str, path: str, **kwargs: Any) -> httpx.Response:
    """A call to the admin API, as a script would make it (to set up what the page then shows)."""
    headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
    return httpx.request(method, f"{site.url}{path}", headers=headers, timeout=15, **kwargs)


def create_key(site: Gateway, name: str, **fields: Any) -> dict[str, Any]:
    response = admin(site, "POST", "/admin/keys", json={"name": name, **fields})
    assert response.status_code == 201, response.text
    return dict(response.json())


def chat(site: Gateway, key: str, model: str = "gpt-4o-mini", text: str = "hi") -> httpx.Response:
    return httpx.post(
        f"{site.url}/v1/chat/completions",
        json={"model": model, "messages": [{"role": "user", "content": text}]},
        headers={"Authorization": f"Bearer {key}"},
        timeout=15,
    )


def logged(site: Gateway, request_id: str) -> None:
    """Wait until the request is in the log (written in batches)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if admin(site, "GET", f"/admin/requests?request_id={request_id}").json()["data"]:
            return
        time.sleep(0.1)
    raise AssertionError(f"{request_id} never reached the log")


def go(page: Any, tab: str) -> None:
    page.click(f'#tabs a[data-tab="{tab}"]')
    page.wait_for_selector(f"#page-{tab}:not([hidden])")


def choose_in_playground(page: Any, key: str, model: str) -> None:
    """Open the playground with a client key and pick a model from the key's own /v1/models."""
    go(page, "playground")
    page.fill("#play-key", key)
    page.click("#play-models-load")
    page.wait_for_selector(f'#play-model option[value="{model}"]', state="attached")
    page.select_option("#play-model", model)


# -- sign-in and navigation -----------------------------------------------------------------------


@EVERYWHERE
def test_signing_in_shows_every_tab_within_the_screen(
    site: Gateway, open_page: Any, lang: str, width: str
) -> None:
    page = open_page(site, lang, width)
    viewport = page.viewport_size["width"]
    for tab in TABS:
        box = page.locator(f'#tabs a[data-tab="{tab}"]').bounding_box()
        assert box is not None and box["width"] > 0, tab
        assert 0 <= box["x"] and box["x"] + box["width"] <= viewport, f"{tab} is off screen at {viewport}px"
    assert page.evaluate("document.documentElement.scrollWidth") <= viewport, "the page scrolls sideways"
    expected = {"en": "Overview", "zh": "概览"}[lang]
    assert page.inner_text('#tabs a[data-tab="overview"]') == expected
    page.shot("overview")
    assert page.js_errors == []


def test_a_wrong_admin_key_is_refused_and_said_so(site: Gateway, open_page: Any) -> None:
    page = open_page(site, "en", "desktop", sign_in=False)
    page.fill("#admin-key", ADMIN_KEY + "-wrong")
    page.click("#login-form button[type=submit]")
    page.wait_for_selector("#login-error:not([hidden])")
    assert "refused" in page.inner_text("#login-error")
    assert page.is_hidden("#tabs")


@pytest.mark.parametrize("lang", LANGS)
def test_no_button_wraps_its_label_at_desktop_width(site: Gateway, open_page: Any, lang: str) -> None:
    """Chinese labels used to break one character per line in the keys table's action buttons."""
    create_key(  # a key with everything set makes the widest keys table
        site, f"wrap-check-{lang}", owner="platform-team@example.com", rpm=60, rpd=10_000, tpm=100_000,
        concurrency=8, budget_usd=25, budget_period="month", models=["gpt-4o-mini", "gpt-4o", "text-embedding-*"],
        endpoints=["chat", "embeddings", "models"], networks=["10.0.0.0/8", "192.168.0.0/16"],
    )  # fmt: skip
    page = open_page(site, lang, "desktop")
    for tab in ["keys", "logs", "channels", "playground"]:
        go(page, tab)
        page.wait_for_timeout(300)
        boxes = page.eval_on_selector_all(
            f"#page-{tab} button:not([hidden])",
            "bs => bs.filter(b => b.offsetParent).map(b => { const r = b.getBoundingClientRect();"
            " return [b.textContent, r.height, r.right, parseFloat(getComputedStyle(b).lineHeight) || 20]; })",
        )
        assert boxes, tab
        for label, height, right, line in boxes:
            assert height < 2 * line + 14, f"{tab}: button {label!r} wraps ({height}px)"
            assert right <= 1280, f"{tab}: button {label!r} is cut off at {right}px"
    go(page, "keys")
    page.shot("keys")


# -- the playground -----------------------------------------------------------------------------------


@EVERYWHERE
def test_the_playground_streams_a_chat_and_shows_its_figures(
    site: Gateway, upstream: Upstream, open_page: Any, lang: str, width: str
) -> None:
    key = create_key(site, f"play-{lang}-{width}")
    page = open_page(site, lang, width)
    choose_in_playground(page, key["key"], "gpt-4o-mini")
    assert page.is_checked("#play-stream")
    upstream.behaviour = "slow_stream delay=0.3"  # chunks 0.3 s apart: the page must show them as they come
    try:
        page.fill("#play-prompt", f"hello from {lang}")
        page.click("#play-send")
        partial = page.wait_for_function(
            "() => { const m = document.querySelector('#play-chat .msg.assistant .msg-text');"
            " return m && m.textContent.length > 0 && !m.textContent.endsWith('#3') && m.textContent; }"
        ).json_value()
        page.wait_for_function("() => !document.querySelector('#play-send').disabled")
    finally:
        upstream.behaviour = "ok"
    answer = page.inner_text("#play-chat .msg.assistant .msg-text")
    assert ECHO.fullmatch(answer) and ECHO.fullmatch(answer).group(1) == f"hello from {lang}"
    assert answer.startswith(partial) and len(partial) < len(answer), "the answer did not arrive in pieces"
    # Usage came from the usage chunk (stream_options.include_usage); the cost from the gateway's log.
    metrics = page.locator("#play-metrics")
    assert "200" in metrics.inner_text()
    assert re.search(r"\d+ \+ \d+", metrics.inner_text())
    page.wait_for_function("() => /\\$0\\.0000/.test(document.querySelector('#play-metrics').textContent)")
    assert re.search(r"\d+ ms", metrics.inner_text())
    page.click("#play-headers-box summary")
    assert "x-request-id" in page.inner_text("#play-headers")
    page.shot("playground")
    assert page.js_errors == []


def test_the_playground_code_repeats_the_call_without_any_secret_unless_asked(
    site: Gateway, open_page: Any
) -> None:
    key = create_key(site, "play-code")
    page = open_page(site, "en", "desktop")
    choose_in_playground(page, key["key"], "gpt-4o")
    page.fill("#play-prompt", "what is a sluice gate?")
    for lang, marker in [("curl", "$SLUICEGATE_API_KEY"), ("python", 'os.environ["SLUICEGATE_API_KEY"]'),
                         ("js", "process.env.SLUICEGATE_API_KEY")]:  # fmt: skip
        page.click(f'.seg [data-lang="{lang}"]')
        code = page.inner_text("#play-code")
        assert marker in code and f"{site.url}/v1" in code and "what is a sluice gate?" in code, lang
        assert key["key"] not in code and ADMIN_KEY not in code, lang
        assert '"gpt-4o"' in code and "include_usage" in code, lang
    page.check("#play-code-key")
    assert key["key"] in page.inner_text("#play-code")
    assert ADMIN_KEY not in page.inner_text("#play-code")


def test_a_new_key_can_go_straight_to_the_playground(site: Gateway, open_page: Any) -> None:
    page = open_page(site, "en", "desktop")
    go(page, "keys")
    page.click("#keys-new")
    page.fill('#key-form input[name="name"]', "fresh-for-playground")
    page.click("#key-form-submit")
    page.wait_for_selector("#secret-dialog[open]")
    secret = page.input_value("#secret-value")
    assert secret.startswith("sk-sg-")
    page.click("#secret-play")
    page.wait_for_selector("#page-playground:not([hidden])")
    assert page.input_value("#play-key") == secret
    assert page.input_value("#secret-value") == ""  # the dialog let go of it


# -- logs -------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def traffic(site: Gateway) -> dict[str, Any]:
    """One key with a good request and a refused one (a model it may not use), another key idle."""
    key = create_key(site, "logs-user", models=["gpt-4o-mini"], store_bodies=True)
    ok = chat(site, key["key"], text="needle-in-the-log")
    refused = chat(site, key["key"], model="gpt-4o")
    assert ok.status_code == 200 and refused.status_code >= 400
    logged(site, ok.headers["x-request-id"])
    logged(site, refused.headers["x-request-id"])
    return {"key": key, "ok": ok, "refused": refused}


@EVERYWHERE
def test_logs_filter_by_key_and_status_and_open_a_request(
    site: Gateway, traffic: dict[str, Any], open_page: Any, lang: str, width: str
) -> None:
    page = open_page(site, lang, width)
    go(page, "logs")
    page.wait_for_selector("#logs-table table")
    page.select_option('#logs-form select[name="key"]', traffic["key"]["id"])
    page.select_option('#logs-form select[name="status"]', "error")
    page.click('#logs-form button[type="submit"]')
    page.wait_for_function("() => document.querySelectorAll('#logs-table tbody tr').length === 1")
    row = page.inner_text("#logs-table tbody tr")
    assert str(traffic["refused"].status_code) in row and "gpt-4o" in row
    page.shot("logs-errors")
    page.select_option('#logs-form select[name="status"]', "2xx")
    page.click('#logs-form button[type="submit"]')
    page.wait_for_function("() => /200/.test(document.querySelector('#logs-table tbody tr')?.textContent)")
    page.click("#logs-table tbody tr")
    page.wait_for_selector("#log-dialog[open]")
    detail = page.inner_text("#log-detail")
    assert traffic["ok"].headers["x-request-id"] in detail
    assert "needle-in-the-log" in detail  # the stored request body (this key stores bodies)
    page.shot("logs-detail")
    page.click("#log-dialog [data-close]")
    assert page.js_errors == []


def test_logs_search_text_and_export_csv(site: Gateway, traffic: dict[str, Any], open_page: Any) -> None:
    page = open_page(site, "en", "desktop")
    go(page, "logs")
    page.fill('#logs-form input[name="q"]', traffic["ok"].headers["x-request-id"])
    page.click('#logs-form button[type="submit"]')
    page.wait_for_function("() => document.querySelectorAll('#logs-table tbody tr').length === 1")
    with page.expect_download() as download_info:
        page.click("#logs-csv")
    path = download_info.value.path()
    lines = open(path, encoding="utf-8-sig").read().splitlines()
    assert lines[0].startswith("id,time,request_id")
    assert len(lines) == 2 and traffic["ok"].headers["x-request-id"] in lines[1]


# -- keys and usage ---------------------------------------------------------------------------------


@pytest.mark.parametrize("width", WIDTHS)
def test_keys_show_rate_use_and_budget_spent(site: Gateway, open_page: Any, width: str) -> None:
    key = create_key(site, f"metered-{width}", rpm=1000, budget_tokens=5000, budget_period="day")
    for _ in range(2):
        assert chat(site, key["key"]).status_code == 200
    page = open_page(site, "en", width)
    go(page, "keys")
    row = page.locator("#keys-table tbody tr", has_text=f"metered-{width}")
    meters = row.locator(".meters")
    meters.locator("meter").first.wait_for()
    assert meters.locator("meter").count() == 2
    text = meters.inner_text()
    assert "/ 1,000" in text and "16 / 5,000" in text  # 2 requests of 4 + 4 tokens from the stand-in
    page.shot("keys")


def test_usage_is_one_row_per_key_and_model_with_a_readable_cost_axis(site: Gateway, open_page: Any) -> None:
    key = create_key(site, "usage-user", models=["gpt-4o-mini"])
    assert chat(site, key["key"]).status_code == 200
    refused = chat(site, key["key"], model="gpt-4o")  # a refusal, unpriced
    logged(site, refused.headers["x-request-id"])
    assert chat(site, key["key"], model="gpt-4o-mini").status_code == 200
    page = open_page(site, "en", "desktop")
    go(page, "usage")
    page.select_option('#usage-form select[name="key"]', key["id"])
    page.select_option('#usage-form select[name="metric"]', "cost")
    page.click('#usage-form button[type="submit"]')
    # The table may be drawn twice (the page's first load, then the submitted form): wait for the key's
    # priced row, then read every row in one go, so a redraw cannot pull a row away mid-read.
    page.wait_for_function(
        "() => [...document.querySelectorAll('#usage-table tbody tr')].some(r => r.cells.length > 1"
        " && r.cells[1].textContent.trim() === 'gpt-4o-mini' && /USD/.test(r.textContent))"
    )
    by_model = page.eval_on_selector_all(
        "#usage-table tbody tr",
        "rows => Object.fromEntries(rows.filter(r => r.cells.length > 1)"
        ".map(r => [r.cells[1].innerText.trim(), r.innerText]))",
    )
    assert "USD" in by_model["gpt-4o-mini"]
    labels = page.eval_on_selector_all("#usage-chart svg text.axis", "ts => ts.map(t => t.textContent)")
    money = [label for label in labels if "$" in label]
    assert len(set(money)) == 3, f"cost axis labels under $1 should differ: {money}"
    page.shot("usage-cost")


@pytest.mark.parametrize("lang", LANGS)
def test_usage_chart_is_readable_on_a_phone(site: Gateway, open_page: Any, lang: str) -> None:
    page = open_page(site, lang, "phone")
    go(page, "usage")
    page.wait_for_selector("#usage-chart svg")
    size = page.eval_on_selector("#usage-chart svg text.axis", "t => t.getBoundingClientRect().height")
    assert size >= 9, f"axis labels are {size}px tall"
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.shot("usage")


# -- live configuration -------------------------------------------------------------------------

LIVE_PROVIDER_KEY = "sk-live-provider-secret-4411"


@pytest.fixture(scope="module")
def second_upstream() -> Any:
    """The upstream the operator adds through the page; the gateway was not started with it."""
    with Upstream() as stand_in:
        yield stand_in


def channel_row(page: Any, name: str) -> Any:
    return page.locator("#channels-table tbody tr", has=page.locator("strong", has_text=name))


@pytest.mark.parametrize(("lang", "width"), [("en", "desktop"), ("zh", "phone")])
def test_an_upstream_and_route_made_in_the_page_serve_at_once_and_their_channel_is_tested_and_reset(
    site: Gateway, second_upstream: Upstream, open_page: Any, lang: str, width: str
) -> None:
    upstream_name, model_name = f"live-{lang}", f"live-model-{lang}"
    page = open_page(site, lang, width)
    # An upstream, its provider key typed once and never shown again.
    go(page, "upstreams")
    page.click("#upstreams-new")
    form = page.locator("#upstream-form")
    form.locator('input[name="name"]').fill(upstream_name)
    form.locator('input[name="base_url"]').fill(second_upstream.url)
    form.locator('input[name="api_key"]').fill(LIVE_PROVIDER_KEY)
    page.click("#upstream-form-submit")
    page.wait_for_selector(f'#upstreams-table strong:text-is("{upstream_name}")')
    assert LIVE_PROVIDER_KEY not in page.content()
    page.shot("upstreams")
    # A model route on it.
    go(page, "models")
    page.click("#models-new")
    page.fill('#model-form input[name="name"]', model_name)
    page.fill('#model-channels input[name="upstream"]', upstream_name)
    page.fill('#model-channels input[name="model"]', "gpt-4o-mini")
    page.click("#model-form-submit")
    page.wait_for_selector(f'#models-table strong:text-is("{model_name}")')
    page.shot("models")
    # Served without a restart (every worker rebuilds its routes within a poll).
    key = create_key(site, f"live-user-{lang}")
    before = len(second_upstream.requests)
    deadline = time.monotonic() + 10
    while (response := chat(site, key["key"], model=model_name)).status_code != 200:
        assert time.monotonic() < deadline, response.text
        time.sleep(0.2)
    assert len(second_upstream.requests) == before + 1
    assert second_upstream.requests[-1].headers["authorization"] == f"Bearer {LIVE_PROVIDER_KEY}"
    # Its channel: tested now, then reset, from the channels page.
    channel = f"{upstream_name}/gpt-4o-mini"
    go(page, "channels")
    row = channel_row(page, channel)
    row.locator('[data-action="test"]').click()
    page.wait_for_function(
        "name => document.querySelector('#notice').textContent.includes(name)"
        " && /ms/.test(document.querySelector('#notice').textContent)"
        " && !document.querySelector('#notice').textContent.includes('…')",
        arg=channel,
    )
    assert "Echo" in page.inner_text("#notice")  # the probe's answer, from the new upstream
    assert "error" not in page.get_attribute("#notice", "class")
    page.shot("channel-tested")
    channel_row(page, channel).locator('[data-action="reset"]').click()
    page.wait_for_function(
        "name => document.querySelector('#notice.ok')?.textContent.includes(name)", arg=channel
    )
    channel_row(page, channel).locator('[data-action="disable"]').click()
    channel_row(page, channel).locator('[data-action="enable"]').wait_for()
    channel_row(page, channel).locator('[data-action="enable"]').click()
    channel_row(page, channel).locator('[data-action="disable"]').wait_for()
    assert page.js_errors == []


def test_a_live_route_is_offered_in_the_playground_and_streams(
    site: Gateway, second_upstream: Upstream, open_page: Any
) -> None:
    if admin(site, "GET", "/admin/models/live-model-en").status_code != 200:
        pytest.skip("needs the route made by the test before")
    key = create_key(site, "live-play")
    page = open_page(site, "en", "desktop")
    choose_in_playground(page, key["key"], "live-model-en")
    page.fill("#play-prompt", "through the live route")
    page.click("#play-send")
    page.wait_for_function(
        "() => /#3$/.test(document.querySelector('#play-chat .msg.assistant')?.textContent)"
    )
    assert second_upstream.requests[-1].json["stream"] is True


@pytest.mark.parametrize(("lang", "width"), [("en", "desktop"), ("zh", "phone")])
def test_the_audit_log_shows_who_changed_what_and_exports_it(
    site: Gateway, second_upstream: Upstream, open_page: Any, lang: str, width: str
) -> None:
    name = f"audited-{lang}"
    body = {"name": name, "base_url": second_upstream.url, "api_key": LIVE_PROVIDER_KEY}
    assert admin(site, "POST", "/admin/upstreams", json=body).status_code == 201
    assert admin(site, "PATCH", f"/admin/upstreams/{name}", json={"rpm": 30}).status_code == 200
    page = open_page(site, lang, width)
    go(page, "audit")
    page.select_option('#audit-form select[name="kind"]', "upstream")
    page.fill('#audit-form input[name="target"]', name)
    page.click('#audit-form button[type="submit"]')
    page.wait_for_function("() => document.querySelectorAll('#audit-table tbody tr').length === 2")
    rows = page.locator("#audit-table tbody tr")
    newest = rows.nth(0).inner_text()
    assert "rpm: null → 30" in newest or "rpm: ∅ → 30" in newest, newest
    assert re.search(r"admin:[0-9a-f]{12}", newest)
    assert LIVE_PROVIDER_KEY not in page.content()
    page.shot("audit")
    if width == "desktop":
        with page.expect_download() as download_info:
            page.click("#audit-csv")
        text = open(download_info.value.path(), encoding="utf-8-sig").read()
        assert name in text and LIVE_PROVIDER_KEY not in text


def test_a_file_defined_upstream_is_read_only_in_the_page(site: Gateway, open_page: Any) -> None:
    page = open_page(site, "en", "desktop")
    go(page, "upstreams")
    row = page.locator("#upstreams-table tbody tr", has=page.locator('strong:text-is("up")'))
    assert "YAML" in row.inner_text()
    assert row.locator("button").count() == 0
    assert PROVIDER_KEY not in page.content()


def test_provider_key_never_reaches_the_page(site: Gateway, open_page: Any) -> None:
    page = open_page(site, "en", "desktop")
    for tab in ["channels", "upstreams", "models", "overview"]:
        go(page, tab)
        page.wait_for_timeout(300)
        assert PROVIDER_KEY not in page.content() and LIVE_PROVIDER_KEY not in page.content()
