"""Catalog operations on a real store: re-entering provider keys after the master key changed."""

from __future__ import annotations

from pathlib import Path

import pytest

from sluicegate.catalog.effective import merge
from sluicegate.catalog.service import CatalogService
from sluicegate.config.model import Settings
from sluicegate.store import Store
from sluicegate.store.crypto import SecretBox, SecretsUnreadable

OLD, NEW = "old-master-key-0123456789abcdef", "new-master-key-0123456789abcdef"


async def test_a_new_api_key_replaces_secrets_sealed_under_a_lost_master_key(tmp_path: Path) -> None:
    async with await Store.open(f"sqlite:///{tmp_path / 'c.db'}") as store:
        settings = Settings()
        await CatalogService(store, settings, SecretBox(OLD), "test").create_upstream(
            {"name": "acct", "base_url": "http://127.0.0.1:1", "api_key": "sk-old-secret-1234"}
        )
        rotated = CatalogService(store, settings, SecretBox(NEW), "test")
        with pytest.raises(SecretsUnreadable):
            await rotated.update_upstream("acct", {"headers": {"x-a": "b"}})
        shown = await rotated.update_upstream("acct", {"api_key": "sk-new-secret-5678"})
        assert shown["api_key"].startswith("sk-n")
        served = merge(settings, await store.catalog.load(), SecretBox(NEW))
        assert served.settings.upstreams["acct"].api_key == "sk-new-secret-5678" and not served.problems
