"""Which wins: the file's names are the file's; the store adds the rest; secrets open only with the key."""

from __future__ import annotations

import pytest

from sluicegate.catalog.effective import merge
from sluicegate.config.model import Settings
from sluicegate.store.catalog import CatalogRows, StoredModel, StoredPrice, StoredUpstream
from sluicegate.store.crypto import MasterKeyMissing, SecretBox

MASTER = "a-master-key-for-tests-0123456789"
FILE = Settings.model_validate(
    {
        "upstreams": {"file-up": {"base_url": "http://127.0.0.1:1", "api_key": "sk-file"}},
        "models": {"file-model": "file-up"},
        "prices": {"file-model": {"input": 1, "output": 2}},
    }
)


def upstream_row(
    name: str, box: SecretBox, *, enabled: bool = True, key: str = "sk-stored"
) -> StoredUpstream:
    return StoredUpstream(
        name, {"base_url": "http://127.0.0.1:2"}, box.seal({"api_key": key}), {}, enabled, 0, 0
    )


def test_a_stored_upstream_and_route_are_added_with_their_key() -> None:
    box = SecretBox(MASTER)
    rows = CatalogRows(
        upstreams={"new": upstream_row("new", box)},
        models={"new-model": StoredModel("new-model", [{"upstream": "new", "model": "x"}], True, 0, 0)},
    )
    effective = merge(FILE, rows, box).settings
    assert effective.upstreams["new"].api_key == "sk-stored"
    assert [c.model for c in effective.models["new-model"]] == ["x"]
    assert "file-model" in effective.models


def test_the_file_wins_over_a_stored_row_of_the_same_name() -> None:
    box = SecretBox(MASTER)
    rows = CatalogRows(
        upstreams={"file-up": upstream_row("file-up", box)},
        prices={"file-model": StoredPrice("file-model", {"input": 9, "output": 9}, 0, 0)},
    )
    effective = merge(FILE, rows, box).settings
    assert effective.upstreams["file-up"].api_key == "sk-file"
    assert effective.prices["file-model"].input == 1


def test_a_disabled_upstream_takes_its_routes_with_it() -> None:
    box = SecretBox(MASTER)
    rows = CatalogRows(
        upstreams={"off": upstream_row("off", box, enabled=False)},
        models={"m": StoredModel("m", [{"upstream": "off"}], True, 0, 0)},
    )
    effective = merge(FILE, rows, box).settings
    assert "off" not in effective.upstreams and "m" not in effective.models


def test_without_the_master_key_a_stored_upstream_has_no_key_and_says_why() -> None:
    rows = CatalogRows(upstreams={"new": upstream_row("new", SecretBox(MASTER))})
    result = merge(FILE, rows, SecretBox(None))
    assert result.settings.upstreams["new"].api_key is None
    assert any("SLUICEGATE_MASTER_KEY" in p for p in result.problems)


def test_another_master_key_cannot_open_the_secrets() -> None:
    rows = CatalogRows(upstreams={"new": upstream_row("new", SecretBox(MASTER))})
    result = merge(FILE, rows, SecretBox("another-master-key-0123456789"))
    assert result.settings.upstreams["new"].api_key is None
    assert any("cannot be decrypted" in p for p in result.problems)


def test_nothing_is_sealed_without_a_master_key() -> None:
    with pytest.raises(MasterKeyMissing, match="SLUICEGATE_MASTER_KEY"):
        SecretBox(None).seal({"api_key": "sk-x"})


def test_a_sealed_secret_does_not_contain_the_plain_text() -> None:
    token = SecretBox(MASTER).seal({"api_key": "sk-plain-secret-value"})
    assert "sk-plain-secret-value" not in token
    assert SecretBox(MASTER).open(token) == {"api_key": "sk-plain-secret-value"}
