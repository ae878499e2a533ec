"""Everything the portal's page loads is served under /portal/: its own files and the dashboard's it
shares (stylesheet, icon, the playground's chatcall.js and chatpage.js), so the portal works where a
reverse proxy keeps /admin/ off the internet. Followed from index.html through every script's imports."""

from __future__ import annotations

import re
from collections.abc import Iterator
from urllib.parse import urljoin

import httpx
import pytest
from support.portal_kit import Site, portal_site
from support.upstream import Upstream

from sluicegate.portal.ui import SHARED


@pytest.fixture(scope="module")
def site() -> Iterator[Site]:
    with Upstream() as upstream, portal_site("sqlite", upstream) as s:
        yield s


def test_every_file_the_page_loads_is_under_portal(site: Site) -> None:
    start = f"{site.url}/portal/"
    page = httpx.get(start, timeout=10).text
    # What the page loads: <link href> and src= (an <a href> is a place to go, such as the SSO button or
    # the operator's link to the dashboard, not a file the page needs).
    refs = re.findall(r'<link [^>]*href="([^"#]+)"', page) + re.findall(r'src="([^"#]+)"', page)
    pending = [urljoin(start, ref) for ref in refs]
    loaded: dict[str, httpx.Response] = {}
    while pending:
        url = pending.pop()
        if url in loaded:
            continue
        loaded[url] = answer = httpx.get(url, timeout=10)
        assert answer.status_code == 200, url
        if url.endswith(".js"):
            pending += [
                urljoin(url, ref) for ref in re.findall(r"^import .* from '([^']+)';", answer.text, re.M)
            ]
    paths = {url.removeprefix(site.url) for url in loaded}
    assert all(path.startswith("/portal/") for path in paths), paths
    assert {f"/portal/{name}" for name in SHARED} <= paths  # each shared file is really used
    assert {"/portal/portal.js", "/portal/playground.js", "/portal/portal.css"} <= paths


def test_a_shared_file_is_the_dashboards_own_bytes(site: Site) -> None:
    for name in sorted(SHARED):
        here = httpx.get(f"{site.url}/portal/{name}", timeout=10)
        there = httpx.get(f"{site.url}/admin/ui/{name}", timeout=10)
        assert here.status_code == there.status_code == 200, name
        assert here.content == there.content and here.headers["content-type"] == there.headers["content-type"]
        assert "default-src 'self'" in here.headers["content-security-policy"]
