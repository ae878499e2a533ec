"""The portal is off by default: nothing under /portal answers but a 404 that says how to turn it on."""

from __future__ import annotations

import httpx
from support.gateway import Gateway


def test_the_portal_is_off_by_default(gateway_factory: object, tmp_path: object) -> None:
    gateway: Gateway = gateway_factory({"database": f"sqlite:///{tmp_path}/sg.db"})  # type: ignore[operator]
    for method, path in (("GET", "/portal/"), ("POST", "/portal/api/login"), ("GET", "/portal/api/me")):
        response = httpx.request(method, f"{gateway.url}{path}", json={}, timeout=10)
        assert response.status_code == 404
        error = response.json()["error"]
        assert error["code"] == "portal_disabled" and "portal.enabled" in error["message"]
