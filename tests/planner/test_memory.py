"""Memory fit: weights by precision, KV cache by context and concurrency, and the edges."""

from __future__ import annotations

import pytest

from sluicegate.planner.memory import (
    ENGINE_RESERVE_BYTES,
    GIB,
    GPU_MEMORY_UTILIZATION,
    NCCL_RESERVE_BYTES,
    fit,
    smallest_fit,
    weight_bytes,
)
from sluicegate.planner.models import count_params
from sluicegate.planner.precision import Precision


def test_fp16_weights_are_two_bytes_per_parameter(arch):
    a = arch("llama-3-8b")
    assert weight_bytes(a, Precision.FP16) == 2 * count_params(a).total


def test_int4_weights_keep_embeddings_and_lm_head_at_16_bits(arch):
    a = arch("llama-3-8b")
    p = count_params(a)
    expected = (p.total - p.embedding) * 0.55 + p.embedding * 2
    assert weight_bytes(a, Precision.INT4) == pytest.approx(expected)
    # about 5.9 GB, not the naive 8.03e9 x 0.5 = 4.0 GB: Llama-3's 128k vocabulary stays 16-bit
    assert weight_bytes(a, Precision.INT4) / 1e9 == pytest.approx(5.94, abs=0.01)


def test_fp8_weights_are_about_half_of_fp16(arch):
    a = arch("llama-3-70b")
    ratio = weight_bytes(a, Precision.FP8) / weight_bytes(a, Precision.FP16)
    assert 0.5 < ratio < 0.53


def test_budget_is_the_utilisation_share_of_capacity(catalog, arch):
    f = fit(arch("llama-3-8b"), Precision.FP16, catalog.gpu("a100-80g"), 1, 4096, 1)
    assert f.budget_bytes == pytest.approx(80 * GIB * GPU_MEMORY_UTILIZATION)


def test_tensor_parallel_adds_the_nccl_reserve(catalog, arch):
    one = fit(arch("llama-3-8b"), Precision.FP16, catalog.gpu("a100-80g"), 1, 4096, 1)
    two = fit(arch("llama-3-8b"), Precision.FP16, catalog.gpu("a100-80g"), 2, 4096, 1)
    assert one.reserve_bytes == ENGINE_RESERVE_BYTES
    assert two.reserve_bytes == ENGINE_RESERVE_BYTES + NCCL_RESERVE_BYTES


def test_llama_3_8b_fp16_does_not_fit_one_t4(catalog, arch):
    f = fit(arch("llama-3-8b"), Precision.FP16, catalog.gpu("t4"), 1, 4096, 1)
    assert not f.fits
    assert f.kv_budget_bytes < 0


def test_llama_3_8b_fp16_needs_two_t4s(catalog, arch):
    f = smallest_fit(arch("llama-3-8b"), Precision.FP16, catalog.gpu("t4"), 4096, 1)
    assert f is not None and f.tp == 2


def test_the_workload_fits_at_max_concurrency_and_not_one_stream_more(catalog, arch):
    a, gpu = arch("llama-3-8b"), catalog.gpu("rtx-4090")
    edge = fit(a, Precision.FP16, gpu, 1, 8192, 1).max_concurrency
    assert edge >= 1
    assert fit(a, Precision.FP16, gpu, 1, 8192, edge).fits
    assert not fit(a, Precision.FP16, gpu, 1, 8192, edge + 1).fits


def test_max_concurrency_is_kv_budget_over_context_times_kv_per_token(catalog, arch):
    f = fit(arch("llama-3-8b"), Precision.FP16, catalog.gpu("a100-80g"), 1, 4096, 1)
    by_hand = (80 * GIB * 0.9 - 2 * 8_030_261_248 - 1.5 * GIB) / (128 * 1024) // 4096
    assert f.max_concurrency == by_hand


def test_longer_context_lowers_max_concurrency_proportionally(catalog, arch):
    a, gpu = arch("llama-3-70b"), catalog.gpu("h100-80g")
    short = fit(a, Precision.FP8, gpu, 2, 2048, 1).max_concurrency
    long = fit(a, Precision.FP8, gpu, 2, 8192, 1).max_concurrency
    assert long == pytest.approx(short / 4, abs=1)


def test_llama_3_70b_fp16_fits_two_80g_cards_for_one_stream_but_needs_four_for_eight(catalog, arch):
    a, gpu = arch("llama-3-70b"), catalog.gpu("a100-80g")
    assert smallest_fit(a, Precision.FP16, gpu, 4096, 1).tp == 2
    assert smallest_fit(a, Precision.FP16, gpu, 4096, 8).tp == 4


def test_deepseek_v3_cannot_fit_eight_80g_cards_even_at_fp8(catalog, arch):
    assert smallest_fit(arch("deepseek-v3"), Precision.FP8, catalog.gpu("h100-80g"), 4096, 1) is None


def test_deepseek_v3_fp8_fits_eight_h200(catalog, arch):
    f = smallest_fit(arch("deepseek-v3"), Precision.FP8, catalog.gpu("h200"), 4096, 1)
    assert f is not None and f.tp == 8


def test_tensor_parallel_sizes_must_divide_the_attention_heads(catalog, arch):
    # Qwen2.5-7B has 28 heads: TP 8 is not allowed, so a card that needs 8 cannot be used
    f = smallest_fit(arch("qwen2.5-7b"), Precision.FP16, catalog.gpu("t4"), 4096, 1, sizes=(8,))
    assert f is None


@pytest.mark.parametrize(
    ("gpu_id", "mib"),
    [
        ("t4", 15360),
        ("l40s", 46068),
        ("a10", 23028),
        ("a100-80g", 81920),
        ("h100-80g", 81559),
        ("h200", 143771),
    ],
)
def test_capacity_is_what_the_driver_reports_not_vendor_gb_read_as_gib(catalog, gpu_id, mib):
    assert catalog.gpu(gpu_id).memory_bytes == mib * 2**20


def test_a_t4_and_an_l40s_hold_6_7_percent_less_than_their_gb_read_as_gib(catalog):
    for gpu_id in ("t4", "l40s"):
        g = catalog.gpu(gpu_id)
        assert g.memory_bytes / (g.memory_gb.value * 2**30) == pytest.approx(1 / 1.0667, rel=0.005)


def test_expert_parallel_spreads_the_experts_but_replicates_the_dense_part(catalog, arch):
    from sluicegate.planner.layout import Layout

    a, gpu = arch("deepseek-v3"), catalog.gpu("h20")
    tp8 = fit(a, Precision.FP8, gpu, Layout(tp=8), 4096, 1)
    ep16 = fit(a, Precision.FP8, gpu, Layout(tp=1, dp=16), 4096, 1)
    assert ep16.weights_bytes < tp8.weights_bytes  # experts over 16 cards outweigh the copied dense part
    assert ep16.weights_bytes > tp8.weights_bytes / 2  # but the dense part is whole on every card
