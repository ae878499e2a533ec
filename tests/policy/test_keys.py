"""Key policy: models (exact and glob), endpoints (short names and paths), networks, expiry."""

from __future__ import annotations

import pytest

from sluicegate.config.model import KeyConfig
from sluicegate.policy.keys import KeyCache, KeyEntry, hash_secret
from sluicegate.protocol.errors import Forbidden, Unauthorized
from sluicegate.store.records import KeyRecord


def entry(**fields: object) -> KeyEntry:
    return KeyEntry(KeyRecord(id="k1", name="k", key_hash="h", prefix="sk-", **fields))  # type: ignore[arg-type]


def test_empty_model_list_allows_every_model() -> None:
    assert entry().allows_model("anything")


def test_exact_and_glob_models() -> None:
    e = entry(models=("gpt-4o*", "qwen-max", "deepseek-?hat"))
    assert e.allows_model("gpt-4o-mini") and e.allows_model("gpt-4o")
    assert e.allows_model("qwen-max") and e.allows_model("deepseek-chat")
    assert not e.allows_model("qwen-max-latest")
    assert not e.allows_model("gpt-4.1")


def test_endpoint_short_names_and_paths() -> None:
    e = entry(endpoints=("chat", "/v1/audio/transcriptions"))
    assert e.allows_endpoint("/v1/chat/completions")
    assert e.allows_endpoint("/v1/audio/transcriptions")
    assert not e.allows_endpoint("/v1/audio/speech")
    assert not e.allows_endpoint("/v1/embeddings")
    assert not e.allows_endpoint("/v1/chat/completionsX")


def test_networks() -> None:
    e = entry(networks=("10.0.0.0/8", "2001:db8::/32"))
    assert e.allows_network("10.1.2.3") and e.allows_network("2001:db8::1")
    assert not e.allows_network("192.168.1.1")
    assert not e.allows_network(None)


def test_refusal_names_the_refused_model_only() -> None:
    e = entry(models=("secret-model-a", "secret-model-b"))
    with pytest.raises(Forbidden) as info:
        e.check_request("gpt-4o", "/v1/chat/completions", None)
    assert info.value.code == "model_not_allowed" and "gpt-4o" in info.value.message
    assert "secret-model" not in info.value.message


def test_expired_revoked_and_disabled_keys_are_401() -> None:
    for fields, code in (
        ({"expires_at": 100.0}, "key_expired"),
        ({"revoked_at": 1.0}, "key_revoked"),
        ({"enabled": False}, "key_disabled"),
    ):
        with pytest.raises(Unauthorized) as info:
            entry(**fields).check_active(now=200.0)
        assert info.value.code == code


def test_cache_authenticates_static_keys_by_hash() -> None:
    cache = KeyCache.from_config([KeyConfig(key="sk-team-a-secret", name="team-a", models=["gpt-4o*"])])
    got = cache.authenticate("sk-team-a-secret")
    assert got.record.name == "team-a" and got.record.key_hash == hash_secret("sk-team-a-secret")
    with pytest.raises(Unauthorized):
        cache.authenticate("sk-wrong")
    with pytest.raises(Unauthorized) as info:
        cache.authenticate(None)
    assert info.value.code == "missing_api_key"


def test_managed_keys_are_swapped_whole() -> None:
    cache = KeyCache.from_config([])
    assert cache.empty
    rec = KeyRecord(id="m1", name="m", key_hash=hash_secret("sk-sg-abc"), prefix="sk-sg-a")
    cache.replace_managed([rec], revision=3)
    assert cache.authenticate("sk-sg-abc").record.id == "m1" and cache.revision == 3
    cache.replace_managed([], revision=4)
    with pytest.raises(Unauthorized):
        cache.authenticate("sk-sg-abc")
