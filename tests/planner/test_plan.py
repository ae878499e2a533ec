"""Composition: ranking GPUs, evaluating a setup, sizing a daily workload, the JSON shape."""

from __future__ import annotations

import json

import pytest

from sluicegate.planner.catalog import load_price_file
from sluicegate.planner.cost import flat_api_price
from sluicegate.planner.layout import Layout
from sluicegate.planner.plan import Workload, evaluate, rank, resolve_model
from sluicegate.planner.precision import Precision
from sluicegate.planner.report import option_dict
from sluicegate.planner.speed import decode


def test_ranking_puts_the_cheapest_per_million_output_tokens_first(catalog):
    options, _ = rank(resolve_model("llama-3-8b", catalog), Precision.BF16, Workload(), catalog)
    priced = [o.best_quote.per_million_output_tokens for o in options if o.best_quote]
    assert priced == sorted(priced) and len(priced) >= 3
    assert options[0].best_quote is not None


def test_ranking_uses_each_gpus_smallest_fitting_count(catalog):
    options, _ = rank(resolve_model("llama-3-70b", catalog), Precision.FP16, Workload(concurrency=1), catalog)
    counts = {o.gpu.id: o.count for o in options}
    assert counts["a100-80g"] == 2 and counts["h200"] == 2 and counts["a100-40g"] == 4


def test_ranking_lists_the_gpus_that_cannot_fit_at_all(catalog):
    options, unfit = rank(
        resolve_model("deepseek-v3", catalog), Precision.FP16, Workload(concurrency=1), catalog
    )
    # 1.34 TB of FP16 weights: more than 64 cards of 16 GB (T4) hold
    assert "t4" in {g.id for g in unfit}
    assert {o.gpu.id: o.count for o in options}["h200"] == 16


def test_deepseek_on_h20_and_h100_uses_16_cards_over_two_nodes(catalog):
    options, _ = rank(resolve_model("deepseek-v3", catalog), Precision.FP8, Workload(concurrency=1), catalog)
    by_gpu = {o.gpu.id: o for o in options}
    assert by_gpu["h20"].count == 8 and by_gpu["h100-80g"].count == 16
    assert by_gpu["h100-80g"].layout.nodes == 2


def test_api_only_groq_is_never_ranked_as_self_hostable(catalog):
    options, unfit = rank(resolve_model("llama-3-8b", catalog), Precision.FP16, Workload(), catalog)
    assert "groq-lpu" not in {o.gpu.id for o in options} | {g.id for g in unfit}


def test_an_explicit_setup_that_does_not_fit_says_why(catalog):
    o = evaluate(
        resolve_model("llama-3-70b", catalog), Precision.FP16, catalog.gpu("a100-80g"), 1, Workload(), catalog
    )
    assert not o.fits
    assert "weights do not fit" in o.notes


def test_pcie_tensor_parallelism_is_flagged(catalog):
    o = evaluate(
        resolve_model("llama-3-70b", catalog),
        Precision.FP8,
        catalog.gpu("l40s"),
        2,
        Workload(),
        catalog,
        layout=Layout(tp=2),
    )
    assert any("PCIe" in n for n in o.notes)


def test_missing_native_precision_is_flagged(catalog):
    o = evaluate(
        resolve_model("llama-3-8b", catalog), Precision.FP8, catalog.gpu("a100-80g"), 1, Workload(), catalog
    )
    assert any("no FP8" in n for n in o.notes)


def test_a_daily_workload_is_served_by_enough_replicas(catalog):
    w = Workload(tokens_per_day=200e6, min_stream_tokens_per_s=20)
    o = evaluate(resolve_model("llama-3-8b", catalog), Precision.BF16, catalog.gpu("a100-40g"), 1, w, catalog)
    assert o.workload is not None
    assert o.workload.replicas * o.served_tokens_per_s >= 200e6 / 86400
    assert (o.workload.replicas - 1) * o.served_tokens_per_s < 200e6 / 86400


def test_the_workload_batch_keeps_every_stream_above_the_minimum_speed(catalog):
    spec = resolve_model("llama-3-8b", catalog)
    w = Workload(tokens_per_day=1e8, min_stream_tokens_per_s=40)
    o = evaluate(spec, Precision.BF16, catalog.gpu("a100-80g"), 1, w, catalog)
    assert o.workload_batch is not None and o.workload_batch > 8
    step = decode(
        spec.arch,
        Precision.BF16,
        catalog.gpu("a100-80g"),
        o.layout,
        o.engine,
        o.workload_batch,
        w.decode_context,
        2.0,
        w.prompt_tokens,
        w.output_tokens,
    )
    assert step.tokens_per_s_per_stream >= 40


def test_a_request_rate_is_sized_with_queueing_and_a_ttft_target(catalog):
    spec = resolve_model("llama-3-8b", catalog)
    w = Workload(requests_per_s=20, target_ttft_ms=2000, min_stream_tokens_per_s=20)
    o = evaluate(spec, Precision.BF16, catalog.gpu("a100-80g"), 1, w, catalog)
    assert o.meets_targets and o.replicas_at_load is not None and o.load is not None
    assert o.load.utilization < 1 and o.prefill.ttft_s + o.load.mean_wait_s <= 2.0
    # one replica fewer would be overloaded or too slow to the first token
    assert o.replicas_at_load >= 2


def test_an_unreachable_ttft_target_is_reported_as_missed(catalog):
    w = Workload(target_ttft_ms=5, prompt_tokens=4096, context=8192)
    o = evaluate(resolve_model("llama-3-70b", catalog), Precision.FP8, catalog.gpu("h100-80g"), 2, w, catalog)
    assert not o.meets_targets


def test_a_user_price_row_overrides_the_bundled_one(catalog, tmp_path):
    path = tmp_path / "prices.yaml"
    path.write_text(
        "rows:\n  - {provider: tencent, region: 'cn (not stated)', instance: 'A100 x1, 16 cores, 96 GiB',"
        " gpu: a100-40g, gpus: 1, price_per_hour: 10, currency: CNY, source: quote, date: 2026-11}\n"
    )
    merged = catalog.with_price_rows(load_price_file(path, catalog))
    tencent = [r for r in merged.prices if r.provider == "tencent" and "A100" in r.instance]
    assert [r.price_per_hour for r in tencent] == [10]
    assert len(merged.prices) == len(catalog.prices)


def test_a_user_price_row_for_an_uncatalogued_instance_is_added(catalog, tmp_path):
    path = tmp_path / "prices.json"
    path.write_text(
        json.dumps(
            [
                {
                    "provider": "autodl",
                    "region": "cn",
                    "instance": "4090",
                    "gpu": "rtx-4090",
                    "gpus": 1,
                    "price_per_hour": 2.0,
                    "currency": "CNY",
                    "source": "quote",
                    "date": "2026-11",
                }
            ]
        )
    )
    merged = catalog.with_price_rows(load_price_file(path, catalog))
    o = evaluate(
        resolve_model("llama-3-8b", catalog),
        Precision.BF16,
        merged.gpu("rtx-4090"),
        1,
        Workload(),
        merged,
        currency="CNY",
    )
    assert o.best_quote.per_hour == pytest.approx(2.0)


def test_break_even_is_reported_per_price_row_when_an_api_price_is_given(catalog):
    o = evaluate(
        resolve_model("llama-3-8b", catalog),
        Precision.BF16,
        catalog.gpu("t4"),
        2,
        Workload(),
        catalog,
        api=flat_api_price(0.6, "USD"),
    )
    assert set(o.break_even) == {f"{q.provider}/{q.instance}" for q in o.quotes}
    q = o.quotes[0]
    assert o.break_even[f"{q.provider}/{q.instance}"] == pytest.approx(q.per_hour * 24 / 0.6 * 1e6)


def test_option_json_has_the_documented_keys(catalog):
    o = evaluate(
        resolve_model("llama-3-8b", catalog), Precision.BF16, catalog.gpu("a100-40g"), 1, Workload(), catalog
    )
    d = option_dict(o)
    assert {
        "gpu",
        "count",
        "fits",
        "memory_gb",
        "decode_tokens_per_s",
        "aggregate_tokens_per_s",
        "ttft_ms",
        "max_concurrency",
        "export_control",
        "prices",
    } <= set(d)
    assert {"tpp", "performance_density", "oct2022_controlled", "oct2023_controlled"} <= set(
        d["export_control"]
    )
    assert {"provider", "region", "currency", "per_hour", "per_million_output_tokens"} <= set(d["prices"][0])


def test_a_gguf_type_on_an_engine_other_than_llamacpp_is_flagged(catalog):
    o = evaluate(
        resolve_model("llama-3-8b", catalog),
        Precision.Q4_K_M,
        catalog.gpu("rtx-4090"),
        1,
        Workload(),
        catalog,
    )
    assert any("GGUF" in n and "llama.cpp" in n for n in o.notes)


def test_the_json_carries_a_low_high_range_around_each_speed_and_ttft(catalog):
    o = evaluate(
        resolve_model("llama-3-8b", catalog), Precision.BF16, catalog.gpu("a100-80g"), 1, Workload(), catalog
    )
    d = option_dict(o)
    for name in ("decode_tokens_per_s", "served_output_tokens_per_s", "ttft_ms"):
        band = d["range"][name]
        assert band["low"] < d[name] < band["high"]
    assert d["layout"] == {"tp": 1, "pp": 1, "dp": 1, "ep": 1, "nodes": 1} and d["engine"] == "vllm"
