"""Prices: packaged defaults, config overrides, globs, currencies, and the arithmetic to the cent."""

from __future__ import annotations

import pytest

from sluicegate.metering.prices import Cost, Price, PriceError, PriceTable, load_default_prices
from sluicegate.metering.usage import Usage


@pytest.fixture(scope="module")
def table() -> PriceTable:
    return PriceTable()


def test_every_packaged_price_has_a_source_and_a_date() -> None:
    defaults = load_default_prices()
    assert len(defaults) >= 40
    for key, prices in defaults.items():
        for price in prices:
            assert price.source and price.date, key
            assert price.currency in ("USD", "CNY"), key


def test_cost_is_prompt_and_completion_at_their_prices(table: PriceTable) -> None:
    # gpt-4o: $2.50 in, $10 out per million -> 1M in + 100k out = $2.50 + $1.00
    cost = table.cost("gpt-4o", Usage(prompt_tokens=1_000_000, completion_tokens=100_000))
    assert cost is not None
    assert cost.currency == "USD"
    assert round(cost.amount, 2) == 3.50


def test_cached_tokens_are_billed_at_the_cached_price(table: PriceTable) -> None:
    # gpt-4o-mini: $0.15 in, $0.075 cached, $0.60 out; 10k prompt of which 8k cached, 2k out
    cost = table.cost("gpt-4o-mini", Usage(10_000, 2_000, cached_tokens=8_000))
    assert cost is not None
    assert cost.amount == pytest.approx((2_000 * 0.15 + 8_000 * 0.075 + 2_000 * 0.60) / 1e6)


def test_reasoning_tokens_are_not_billed_twice(table: PriceTable) -> None:
    plain = table.cost("o4-mini", Usage(1000, 500))
    reasoning = table.cost("o4-mini", Usage(1000, 500, reasoning_tokens=400))
    assert plain == reasoning


def test_a_more_specific_glob_wins(table: PriceTable) -> None:
    mini = table.lookup("gpt-4o-mini-2024-07-18")
    full = table.lookup("gpt-4o-2024-11-20")
    assert mini is not None and mini.input == 0.15
    assert full is not None and full.input == 2.50


def test_dated_snapshots_find_their_family(table: PriceTable) -> None:
    sonnet = table.lookup("claude-sonnet-4-5-20250929")
    assert sonnet is not None and sonnet.output == 15.0
    haiku = table.lookup("claude-haiku-4-5-20251001")
    assert haiku is not None and haiku.input == 1.0


def test_names_are_case_insensitive_and_vendor_prefixes_ignored(table: PriceTable) -> None:
    assert table.lookup("GPT-4o") == table.lookup("gpt-4o")
    assert table.lookup("openai/gpt-4o") == table.lookup("gpt-4o")


def test_served_name_is_priced_before_the_public_alias(table: PriceTable) -> None:
    price = table.lookup("llama-3.1-8b-instant", public_model="gpt-4o")
    assert price is not None and price.input == 0.05


def test_public_name_is_the_fallback_when_the_served_name_is_unknown(table: PriceTable) -> None:
    price = table.lookup("my-finetune-v3", public_model="gpt-4o-mini")
    assert price is not None and price.input == 0.15


def test_unknown_model_has_no_cost(table: PriceTable) -> None:
    assert table.cost("some-local-model", Usage(100, 100)) is None
    assert "some-local-model" not in table


def test_cny_models_cost_in_cny(table: PriceTable) -> None:
    # qwen-plus: 0.8 CNY in, 2 CNY out per million
    assert table.cost("qwen-plus", Usage(1_000_000, 1_000_000)) == Cost(pytest.approx(2.8), "CNY")


def test_an_entry_with_two_currencies_answers_in_the_one_asked_for(table: PriceTable) -> None:
    usage = Usage(prompt_tokens=1_000_000, completion_tokens=1_000_000, cached_tokens=500_000)
    usd = table.cost("deepseek-chat", usage)
    cny = table.cost("deepseek-chat", usage, currency="CNY")
    assert usd is not None and usd.currency == "USD" and round(usd.amount, 3) == round(0.14 + 0.014 + 0.42, 3)
    assert cny is not None and cny.currency == "CNY" and round(cny.amount, 2) == 1.0 + 0.1 + 3.0


def test_overrides_replace_defaults() -> None:
    table = PriceTable({"gpt-4o": {"input": 1.0, "output": 2.0}})
    price = table.lookup("gpt-4o")
    assert price is not None and (price.input, price.output, price.cached_input) == (1.0, 2.0, None)


def test_an_override_glob_beats_a_default_exact_name() -> None:
    table = PriceTable({"deepseek-*": {"input": 2, "output": 3, "cached_input": 0.2, "currency": "CNY"}})
    price = table.lookup("deepseek-chat")
    assert price is not None and price.currency == "CNY"


def test_upstream_scoped_override_applies_only_through_that_upstream() -> None:
    table = PriceTable({"deepseek-cn/deepseek-chat": {"input": 2, "output": 3, "currency": "CNY"}})
    via_cn = table.lookup("deepseek-chat", upstream="deepseek-cn")
    via_intl = table.lookup("deepseek-chat", upstream="deepseek")
    assert via_cn is not None and via_cn.currency == "CNY"
    assert via_intl is not None and via_intl.currency == "USD"


def test_overrides_accept_config_objects_with_attributes() -> None:
    class PriceConfig:  # the shape of sluicegate.config's PriceConfig
        input = 3.0
        output = 6.0
        cached_input = 0.3
        currency = "USD"

    price = PriceTable({"house-model": PriceConfig()}, defaults={}).lookup("house-model")
    assert price == Price(3.0, 6.0, 0.3, "USD")


def test_cache_hits_without_a_cached_price_cost_the_input_price() -> None:
    table = PriceTable.from_mapping({"m": {"input": 1.0, "output": 0.0}})
    assert table.cost("m", Usage(1_000_000, 0, cached_tokens=1_000_000)) == Cost(1.0, "USD")


@pytest.mark.parametrize(
    "bad",
    [
        {"input": -1, "output": 1},
        {"input": 1},
        {"input": 1, "output": 1, "currency": "EUR"},
        {"input": "cheap", "output": 1},
    ],
)
def test_malformed_prices_are_refused_at_startup(bad: dict) -> None:
    with pytest.raises(PriceError):
        PriceTable.from_mapping({"m": bad})


def test_small_requests_cost_fractions_of_a_cent_not_zero(table: PriceTable) -> None:
    cost = table.cost("gpt-4o-mini", Usage(19, 9))
    assert cost is not None and cost.amount == pytest.approx((19 * 0.15 + 9 * 0.60) / 1e6)


def test_cny_costs_convert_to_usd_for_money_budgets(table: PriceTable) -> None:
    assert table.to_usd(Cost(7.1918, "CNY")) == pytest.approx(1.0)
    assert table.to_usd(Cost(2.5, "USD")) == 2.5


def test_the_exchange_rate_can_be_overridden() -> None:
    table = PriceTable.from_mapping({}, with_defaults=False)
    assert PriceTable({}, {}, exchange_rates={"CNY": 8.0}).to_usd(Cost(8.0, "CNY")) == 1.0
    assert table.to_usd(Cost(1.0, "USD")) == 1.0
