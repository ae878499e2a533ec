"""A real browser (Debian's Chromium, driven by Playwright) calls the gateway from a chat UI's page.

Custom headers make Chromium send a CORS preflight first; the request then goes through only if the
preflight allowed every header. The headers are those the official SDKs send from a browser: the
Anthropic SDK (with `dangerouslyAllowBrowser`) and the OpenAI SDK (with organization and project).
With the defaults before this change, the Anthropic ones failed ("Failed to fetch").
"""

from __future__ import annotations

import http.server
import shutil
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from support.gateway import Gateway, start_gateway
from support.scripted_upstream import ScriptedUpstream

KEY = "sk-browser-client-key-1"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# Without the background-networking flags Chromium tries the network and fails (shared/clients.md).
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
STAINLESS = {
    "x-stainless-arch": "x64",
    "x-stainless-lang": "js",
    "x-stainless-os": "Linux",
    "x-stainless-package-version": "0.94.0",
    "x-stainless-retry-count": "0",
    "x-stainless-runtime": "browser:chrome",
    "x-stainless-runtime-version": "140.0.0",
    "x-stainless-timeout": "600",
}
ANTHROPIC_SDK = {
    "content-type": "application/json",
    "x-api-key": KEY,
    "anthropic-version": "2023-06-01",
    "anthropic-beta": "interleaved-thinking-2025-05-14",
    "anthropic-dangerous-direct-browser-access": "true",
    **STAINLESS,
}
OPENAI_SDK = {
    "content-type": "application/json",
    "authorization": f"Bearer {KEY}",
    "openai-organization": "org-page",
    "openai-project": "proj-page",
    **STAINLESS,
}

FETCH = """async ([url, headers, body]) => {
  const r = await fetch(url, {method: 'POST', headers, body: JSON.stringify(body)});
  return {status: r.status, requestId: r.headers.get('request-id') || r.headers.get('x-request-id'),
          body: await r.json()};
}"""


class _Page(http.server.BaseHTTPRequestHandler):
    """The chat UI's page: an origin other than the gateway's, on loopback (a public origin calling
    loopback would meet Chromium's local-network protections, which are not what this tests)."""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("content-type", "text/html")
        self.end_headers()
        self.wfile.write(b"<!doctype html><title>chat ui</title>")

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def browser_env() -> Iterator[tuple[Any, str, Gateway, ScriptedUpstream]]:
    sync_api = pytest.importorskip("playwright.sync_api")
    if not shutil.which(CHROMIUM):
        pytest.skip("chromium is not installed (apt-get install chromium; scripts/test.sh does it)")
    site = http.server.HTTPServer(("127.0.0.1", 0), _Page)
    threading.Thread(target=site.serve_forever, daemon=True).start()
    origin = f"http://127.0.0.1:{site.server_port}"
    up = ScriptedUpstream()
    gateway = start_gateway(
        {
            "keys": [{"key": KEY, "name": "page"}],
            "upstreams": {"up": {"base_url": up.url, "api_key": "sk-provider"}},
            "models": {"page-model": "up"},
            "server": {"cors": {"allow_origins": [origin]}},
        }
    )
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page()
        page.goto(origin + "/")
        try:
            yield page, origin, gateway, up
        finally:
            browser.close()
            gateway.stop()
            up.close()
            site.shutdown()


def test_the_anthropic_sdks_headers_pass_a_real_browser_preflight(browser_env) -> None:
    page, _, gateway, up = browser_env
    body = {"model": "page-model", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]}
    result = page.evaluate(FETCH, [f"{gateway.url}/v1/messages", ANTHROPIC_SDK, body])
    assert result["status"] == 200, result
    assert result["body"]["type"] == "message" and result["body"]["content"][0]["text"] == "hello"
    assert result["requestId"], "the page can read the request id (exposed)"
    assert up.received[-1].path == "/v1/chat/completions"


def test_the_openai_sdks_headers_pass_a_real_browser_preflight(browser_env) -> None:
    page, _, gateway, _ = browser_env
    body = {"model": "page-model", "messages": [{"role": "user", "content": "hi"}]}
    result = page.evaluate(FETCH, [f"{gateway.url}/v1/chat/completions", OPENAI_SDK, body])
    assert result["status"] == 200, result
    assert result["body"]["choices"][0]["message"]["content"] == "hello"
    assert result["requestId"]


def test_a_header_outside_the_list_is_refused_by_the_browser(browser_env) -> None:
    page, _, gateway, _ = browser_env
    body = {"model": "page-model", "messages": [{"role": "user", "content": "hi"}]}
    with pytest.raises(Exception, match="Failed to fetch"):
        page.evaluate(
            FETCH, [f"{gateway.url}/v1/chat/completions", {**OPENAI_SDK, "x-not-allowed": "1"}, body]
        )
