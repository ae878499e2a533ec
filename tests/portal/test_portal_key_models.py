"""`portal.key_models`: the operator narrows what portal keys may use, with globs; the keys made in the
portal carry that limit, and the gateway holds them to it on /v1."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from support.portal_kit import Site, chat, portal_site
from support.upstream import Upstream


@pytest.fixture(scope="module")
def site() -> Iterator[Site]:
    with Upstream() as upstream, portal_site("sqlite", upstream, key_models=["gpt-4o-*"]) as s:
        yield s


def test_portal_keys_are_held_to_the_operators_model_globs(site: Site) -> None:
    user_id = site.user("globbed")
    site.topup(user_id, "5")
    client = site.client().signed_in("globbed")
    me = client.get("me").json()
    assert me["models"] == ["gpt-4o-mini"] and me["models_restricted"] is True
    refused = client.post("keys", {"name": "wide", "models": ["gpt-4o"]})
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "model_not_allowed"
    created = client.post("keys", {"name": "default"})
    assert created.status_code == 201, created.text
    assert created.json()["models"] == ["gpt-4o-*"]
    secret = created.json()["key"]
    assert chat(site, secret, model="gpt-4o-mini").status_code == 200
    outside = chat(site, secret, model="gpt-4o")
    assert outside.status_code in (403, 404) and outside.json()["error"]["code"]
    picked = client.post("keys", {"name": "picked", "models": ["gpt-4o-mini"]})
    assert picked.status_code == 201 and picked.json()["models"] == ["gpt-4o-mini"]
