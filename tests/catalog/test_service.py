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


async def test_bedrock_aws_credentials_are_sealed_and_shown_masked(tmp_path: Path) -> None:
    secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
    async with await Store.open(f"sqlite:///{tmp_path / 'c.db'}") as store:
        service = CatalogService(store, Settings(), SecretBox(NEW), "test")
        shown = await service.create_upstream(
            {"name": "aws", "base_url": "http://127.0.0.1:1", "aws_access_key_id": "AKIAEXAMPLE123456",
             "aws_secret_access_key": secret, "region": "us-east-1"}
        )  # fmt: skip
        row = (await store.catalog.load()).upstreams["aws"]
        assert secret not in str(shown) and secret not in str(row.data) and secret not in str(row.hint)
        assert shown["aws_secret_access_key"] == f"wJal…({len(secret)})" and shown["region"] == "us-east-1"
        served = merge(Settings(), await store.catalog.load(), SecretBox(NEW)).settings
        assert served.upstreams["aws"].aws_secret_access_key == secret
