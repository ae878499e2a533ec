"""Price arithmetic: per hour, per million tokens, currencies, API break-even, workloads."""

from __future__ import annotations

import math

import pytest

from sluicegate.planner.catalog import ApiPrice, PriceRow
from sluicegate.planner.cost import (
    api_per_million_output,
    break_even_tokens_per_day,
    convert,
    flat_api_price,
    per_million,
    quote,
    workload_cost,
)


def row(**kw) -> PriceRow:
    base = {
        "provider": "x",
        "region": "r",
        "instance": "i",
        "gpu": "a100-40g",
        "gpus": 1,
        "price_per_hour": 3.6,
        "currency": "USD",
        "source": "test",
        "date": "2026-01",
    }
    return PriceRow.model_validate({**base, **kw})


def test_per_million_tokens_is_hourly_price_over_tokens_per_hour():
    assert per_million(3.6, 1000) == pytest.approx(1.0)  # 3.6e6 tokens an hour for $3.6


def test_per_million_is_none_when_nothing_is_served():
    assert per_million(3.6, 0) is None


def test_usd_to_cny_and_back_uses_the_rate():
    assert convert(1.0, "USD", "CNY", 7.1) == pytest.approx(7.1)
    assert convert(71.0, "CNY", "USD", 7.1) == pytest.approx(10.0)
    assert convert(5.0, "CNY", "CNY", 7.1) == 5.0


def test_a_setup_pays_its_share_of_a_multi_gpu_instance():
    q = quote(row(gpus=8, price_per_hour=14.75), 2, 1000, "USD", 7.1)
    assert q.per_hour == pytest.approx(14.75 / 8 * 2)
    assert q.instances == 1


def test_quote_converts_cny_rows_to_the_requested_currency():
    q = quote(row(price_per_hour=28.64, currency="CNY"), 1, 500, "USD", 7.1)
    assert q.per_hour == pytest.approx(28.64 / 7.1)
    assert q.per_million_output_tokens == pytest.approx(28.64 / 7.1 / (3600 * 500) * 1e6)


def test_nine_gpus_need_two_eight_gpu_instances():
    assert quote(row(gpus=8), 9, 100, "USD", 7.1).instances == 2


def test_api_price_per_million_output_counts_the_prompts():
    api = ApiPrice(
        name="a",
        provider="p",
        currency="USD",
        input_per_m=0.15,
        output_per_m=0.60,
        source="s",
        date="2024-07",
    )
    c = api_per_million_output(api, prompt_tokens=1024, output_tokens=256, currency="USD", cny_per_usd=7.1)
    assert c.per_million_output_tokens == pytest.approx(0.60 + 0.15 * 4)


def test_flat_api_price_is_taken_as_given():
    assert flat_api_price(2.0, "cny").per_million_output_tokens == 2.0


def test_break_even_is_a_days_rent_over_the_api_price():
    assert break_even_tokens_per_day(per_hour=1.0, api_per_million=0.5) == pytest.approx(48e6)
    assert math.isinf(break_even_tokens_per_day(1.0, 0.0))


def test_workload_replicas_round_up_and_scale_with_the_peak_factor():
    w = workload_cost(
        tokens_per_day=86_400_000, served_tokens_per_s=300, count=2, per_hour=2.0, currency="USD"
    )
    assert (w.required_tokens_per_s, w.replicas, w.gpus) == (1000, 4, 8)
    assert w.per_day == pytest.approx(2.0 * 24 * 4)
    peak = workload_cost(86_400_000, 300, 2, 2.0, "USD", peak_factor=2.0)
    assert peak.replicas == 7


def test_workload_compares_with_the_api_for_the_same_volume():
    api = flat_api_price(0.5, "USD")
    w = workload_cost(10_000_000, 1000, 1, 1.0, "USD", api)
    assert w.api_per_day == pytest.approx(5.0)


def test_a_quote_knows_its_age_and_a_year_old_price_is_stale():
    from datetime import date

    fresh = quote(row(date="2026-06-17"), 1, 100, "USD", 7.1, today=date(2026, 11, 25))
    old = quote(row(date="2024-05"), 1, 100, "USD", 7.1, today=date(2026, 11, 25))
    assert fresh.age_days == 161 and not fresh.stale
    assert old.age_days == 938 and old.stale


def test_a_quote_without_a_clock_has_no_age():
    assert quote(row(), 1, 100, "USD", 7.1).age_days is None
