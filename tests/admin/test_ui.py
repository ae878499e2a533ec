"""The web dashboard: served by the real gateway under /admin/ui/ without the admin key and with strict
headers; self-contained (no external asset, nothing inline); every string in both languages."""

from __future__ import annotations

import http.client
import json
import re
from collections.abc import Iterator
from importlib import resources
from typing import Any

import httpx
import pytest
from support.gateway import Gateway, start_gateway

from sluicegate.routing.health import CLOSED, DISABLED, HALF_OPEN, OPEN
from sluicegate.store.keyfields import LIMIT_FIELDS

ADMIN_KEY = "adm-ui-test-0123456789abcdef"
STATIC = resources.files("sluicegate.admin").joinpath("static")
LANGUAGES = ("en", "zh-CN")


def static_text(name: str) -> str:
    return STATIC.joinpath(name).read_text(encoding="utf-8")


def scripts() -> dict[str, str]:
    """Every JavaScript module of the page, by file name."""
    return {f.name: f.read_text(encoding="utf-8") for f in STATIC.iterdir() if f.name.endswith(".js")}


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    database = tmp_path_factory.mktemp("ui") / "sluicegate.db"
    with start_gateway({"admin_key": ADMIN_KEY, "database": f"sqlite:///{database}"}) as gw:
        yield gw


def get(gateway: Gateway, path: str, **kwargs: Any) -> httpx.Response:
    return httpx.get(f"{gateway.url}{path}", timeout=15, **kwargs)


# -- serving ------------------------------------------------------------------------------------


def test_the_page_is_served_without_the_admin_key_and_with_security_headers(gateway: Gateway) -> None:
    response = get(gateway, "/admin/ui/")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert response.text.startswith("<!doctype html>")
    csp = response.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "connect-src 'self'" in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["cache-control"] == "no-cache"


def test_the_page_contains_no_data_and_no_secret(gateway: Gateway) -> None:
    body = get(gateway, "/admin/ui/").text + get(gateway, "/admin/ui/app.js").text
    assert ADMIN_KEY not in body


def test_without_the_trailing_slash_the_page_redirects_to_it(gateway: Gateway) -> None:
    response = get(gateway, "/admin/ui")
    assert response.status_code == 308
    assert response.headers["location"] == "/admin/ui/"


@pytest.mark.parametrize(
    ("name", "content_type"),
    [
        ("app.js", "text/javascript; charset=utf-8"),
        ("core.js", "text/javascript; charset=utf-8"),
        ("app.css", "text/css; charset=utf-8"),
        ("i18n.json", "application/json"),
        ("favicon.svg", "image/svg+xml"),
    ],
)
def test_assets_are_served_with_their_content_type(gateway: Gateway, name: str, content_type: str) -> None:
    response = get(gateway, f"/admin/ui/{name}")
    assert response.status_code == 200
    assert response.headers["content-type"] == content_type
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.content == STATIC.joinpath(name).read_bytes()


@pytest.mark.parametrize(
    "path", ["/admin/ui/x", "/admin/ui/app.py", "/admin/ui/index.htm", "/admin/ui/static/app.js"]
)
def test_an_unknown_dashboard_file_is_404(gateway: Gateway, path: str) -> None:
    response = get(gateway, path)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


@pytest.mark.parametrize(
    "raw_path", ["/admin/ui/..%2fapi.py", "/admin/ui/../api.py", "/admin/ui/%2e%2e/ui.py"]
)
def test_no_path_leaves_the_static_folder(gateway: Gateway, raw_path: str) -> None:
    conn = http.client.HTTPConnection(gateway.host, gateway.port, timeout=15)
    try:
        conn.request("GET", raw_path)  # sent as written: no client-side normalisation
        response = conn.getresponse()
        body = response.read()
    finally:
        conn.close()
    # Refused before anything reads the path (docs/security.md): a dot-segment is 400 invalid_path.
    assert response.status == 400
    assert b"invalid_path" in body
    assert b"import" not in body


def test_other_methods_are_refused(gateway: Gateway) -> None:
    response = httpx.post(f"{gateway.url}/admin/ui/", timeout=15)
    assert response.status_code == 405


def test_the_admin_api_beside_it_still_needs_the_admin_key(gateway: Gateway) -> None:
    assert get(gateway, "/admin/keys").status_code == 401
    assert get(gateway, "/admin/uinfo").status_code == 401  # a prefix match is not the dashboard
    response = get(gateway, "/admin/keys", headers={"Authorization": f"Bearer {ADMIN_KEY}"})
    assert response.status_code == 200


# -- self-contained -----------------------------------------------------------------------------


def test_the_page_loads_nothing_from_elsewhere_and_has_nothing_inline() -> None:
    html = static_text("index.html")
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html), "external asset in index.html"
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), "inline script (the CSP would block it)"
    assert not re.search(r"\sstyle\s*=", html), "inline style attribute (the CSP would block it)"
    assert not re.search(r"\son[a-z]+\s*=", html), "inline event handler (the CSP would block it)"
    for name, text in {**scripts(), "app.css": static_text("app.css")}.items():
        assert not re.search(r"https?://(?!www\.w3\.org/2000/svg)", text), f"URL in {name}"


def test_every_module_the_page_imports_is_in_the_static_folder() -> None:
    modules = scripts()
    assert "app.js" in modules and 'src="app.js"' in static_text("index.html")
    for name, text in modules.items():
        for imported in re.findall(r"""^import .* from '\./([\w.-]+)';$""", text, re.MULTILINE):
            assert imported in modules, f"{name} imports {imported}, which is not shipped"


def test_the_admin_key_is_kept_per_tab_and_never_put_in_a_url() -> None:
    js = "\n".join(scripts().values())
    assert "sessionStorage.setItem(KEY_STORE" in js
    assert "localStorage.setItem(KEY_STORE" not in js
    assert not re.search(r"(location|history)\.[a-zA-Z.]*\s*=.*KEY_STORE", js)
    assert not re.search(r"\.(innerHTML|outerHTML)\s*=|insertAdjacentHTML|document\.write", js)  # text only


# -- languages ----------------------------------------------------------------------------------


def dictionaries() -> dict[str, dict[str, str]]:
    return json.loads(static_text("i18n.json"))


def test_both_languages_have_the_same_keys() -> None:
    d = dictionaries()
    assert set(d) == set(LANGUAGES)
    assert set(d["en"]) - set(d["zh-CN"]) == set(), "missing in Chinese"
    assert set(d["zh-CN"]) - set(d["en"]) == set(), "missing in English"


def test_every_string_is_translated_with_the_same_placeholders() -> None:
    d = dictionaries()
    for key, english in d["en"].items():
        chinese = d["zh-CN"][key]
        assert english.strip() and chinese.strip(), key
        assert set(re.findall(r"\{\w+\}", english)) == set(re.findall(r"\{\w+\}", chinese)), key


def test_every_key_the_page_uses_exists_in_both_languages() -> None:
    html = static_text("index.html")
    used = set(re.findall(r'data-i18n(?:-[a-z]+)?="([^"]+)"', html))
    assert used, "index.html uses no data-i18n keys?"
    d = dictionaries()
    for lang in LANGUAGES:
        assert used - set(d[lang]) == set(), f"index.html keys missing in {lang}"


def test_every_key_the_script_names_exists_in_both_languages() -> None:
    d = dictionaries()
    namespaces = {key.split(".", 1)[0] for key in d["en"]}
    js = "\n".join(scripts().values())
    named = {k for k in re.findall(r"'([a-z]+\.[a-z_]+)'", js) if k.split(".", 1)[0] in namespaces}
    assert len(named) > 50
    # Keys built at run time from data the gateway sends: every value it can send.
    metrics = re.findall(r'<option value="(\w+)" data-i18n="usage\.metric_', static_text("index.html"))
    built = (
        {f"state.{s}" for s in (CLOSED, OPEN, HALF_OPEN, DISABLED)}
        | {f"status.{s}" for s in ("active", "disabled", "expired", "revoked")}
        | {f"limit.{name}" for name in LIMIT_FIELDS}
        | {f"usage.caption_{m}" for m in metrics}
        | {f"play.role_{role}" for role in ("user", "assistant")}
        | {f"audit.action_{a}" for a in ("create", "update", "delete", "enable", "disable")}
        | {f"audit.kind_{k}" for k in ("upstream", "model", "channel", "price")}
    )
    for lang in LANGUAGES:
        assert (named | built) - set(d[lang]) == set(), f"app.js keys missing in {lang}"


def test_the_script_knows_every_limit_a_key_can_have() -> None:
    """The edit form sends every limit by name; a new limit in the store must reach the page."""
    js = static_text("core.js")
    listed = re.search(r"const LIMITS = \[([^\]]*)\]", js)
    assert listed is not None
    assert re.findall(r"'(\w+)'", listed.group(1)) == list(LIMIT_FIELDS)
    html = static_text("index.html")
    for name in LIMIT_FIELDS:
        assert f'name="{name}"' in html, f"no input for {name} in the key form"


def test_the_upstream_form_offers_every_preset_the_gateway_knows() -> None:
    """The preset list is spelled in catalog.js (no build step); a preset added in Python must reach it."""
    from sluicegate.providers.presets import PRESETS

    listed = re.search(r"const PRESETS = \[([^\]]*)\]", static_text("catalog.js"))
    assert listed is not None
    assert [p for p in re.findall(r"'([\w-]*)'", listed.group(1)) if p] == list(PRESETS)


def test_with_the_admin_api_disabled_the_page_still_loads_and_can_say_so(core: Any) -> None:
    """No admin_key: the page is served (it holds no data) and its first call learns why it cannot sign in."""
    assert httpx.get(f"{core.gateway.url}/admin/ui/", timeout=15).status_code == 200
    response = httpx.get(f"{core.gateway.url}/admin/keys", timeout=15)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "admin_disabled"  # app.js shows auth.disabled for this code
    assert "'admin_disabled'" in static_text("app.js")
