"""Shared by the portal's API tests: one stand-in upstream per module, and a portal site on each store
(a module that needs another site defines its own `site`, which takes precedence)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from support.portal_kit import Site, portal_site
from support.upstream import Upstream


@pytest.fixture(scope="module")
def upstream() -> Iterator[Upstream]:
    with Upstream() as stand_in:
        yield stand_in


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def site(request: pytest.FixtureRequest, upstream: Upstream) -> Iterator[Site]:
    with portal_site(request.param, upstream) as s:
        yield s
