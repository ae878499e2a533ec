"""Key fields are checked once, in the store, whoever writes them (CLI or admin API)."""

from __future__ import annotations

import pytest

from sluicegate.store.keyfields import InvalidKeyField, normalise_key_fields
from sluicegate.store.records import KeyLimits


def test_networks_are_stored_in_canonical_cidr_form() -> None:
    fields = normalise_key_fields({"networks": ["10.1.2.3/8", "192.168.0.1", "2001:db8::1/32"]})
    assert fields["networks"] == ("10.0.0.0/8", "192.168.0.1/32", "2001:db8::/32")


@pytest.mark.parametrize("network", ["300.0.0.0/8", "10.0.0.0/33", "example.com", ""])
def test_a_bad_network_is_refused_by_name(network: str) -> None:
    with pytest.raises(InvalidKeyField, match="network|non-empty"):
        normalise_key_fields({"networks": [network]})


def test_endpoints_take_short_names_and_v1_prefixes() -> None:
    fields = normalise_key_fields({"endpoints": ["chat", "embeddings", "/v1/responses"]})
    assert fields["endpoints"] == ("chat", "embeddings", "/v1/responses")


def test_an_unknown_endpoint_name_is_refused_with_the_known_ones() -> None:
    with pytest.raises(InvalidKeyField, match="unknown endpoint 'chats'.*chat, completions"):
        normalise_key_fields({"endpoints": ["chats"]})


def test_limits_must_be_positive() -> None:
    with pytest.raises(InvalidKeyField, match="rpm must be greater than zero"):
        normalise_key_fields({"rpm": 0})


def test_token_limits_must_be_whole_numbers() -> None:
    with pytest.raises(InvalidKeyField, match="tpm must be a whole number"):
        normalise_key_fields({"tpm": 1.5})


def test_none_clears_a_limit() -> None:
    assert normalise_key_fields({"rpm": None}) == {"rpm": None}


def test_a_whole_limits_record_sets_every_limit_and_named_limits_override_it() -> None:
    fields = normalise_key_fields({"limits": KeyLimits(rpm=10, budget_usd_month=5), "rpm": 20})
    assert fields["rpm"] == 20
    assert fields["budget_usd_month"] == 5.0
    assert fields["tpm"] is None


def test_an_empty_name_is_refused() -> None:
    with pytest.raises(InvalidKeyField, match="name must not be empty"):
        normalise_key_fields({"name": "  "})


def test_unknown_fields_are_refused() -> None:
    with pytest.raises(InvalidKeyField, match="unknown key field.*key_hash"):
        normalise_key_fields({"key_hash": "0" * 64})


def test_a_single_string_is_not_taken_for_a_list_of_models() -> None:
    with pytest.raises(InvalidKeyField, match="models must be a list"):
        normalise_key_fields({"models": "gpt-4o"})
