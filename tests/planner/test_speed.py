"""Behaviour of the speed model: rooflines, batching, tensor parallelism, MoE, prefill."""

from __future__ import annotations

import pytest

from sluicegate.planner.precision import Precision
from sluicegate.planner.speed import (
    Efficiency,
    allreduce_time,
    decode_step,
    experts_touched,
    prefill,
    served_output_tokens_per_s,
    weights_read_bytes,
)


def test_batching_raises_aggregate_and_lowers_per_stream_speed(catalog, arch):
    a, gpu = arch("llama-3-8b"), catalog.gpu("h100-80g")
    small, big = (decode_step(a, Precision.BF16, gpu, 1, b, 1024) for b in (1, 64))
    assert big.aggregate_tokens_per_s > 20 * small.aggregate_tokens_per_s
    assert big.tokens_per_s_per_stream < small.tokens_per_s_per_stream


def test_single_stream_decode_is_memory_bound(catalog, arch):
    assert (
        decode_step(arch("llama-3-8b"), Precision.BF16, catalog.gpu("a100-80g"), 1, 1, 1024).bound == "memory"
    )


def test_large_batch_short_context_on_h20_is_compute_bound(catalog, arch):
    # H20: 4 TB/s but 148 TFLOPS, so its ridge point is a small batch
    assert decode_step(arch("llama-3-8b"), Precision.BF16, catalog.gpu("h20"), 1, 256, 128).bound == "compute"


def test_long_contexts_slow_decode_through_kv_reads(catalog, arch):
    a, gpu = arch("llama-3-8b"), catalog.gpu("a100-80g")
    assert (
        decode_step(a, Precision.BF16, gpu, 1, 16, 32768).seconds
        > 2 * decode_step(a, Precision.BF16, gpu, 1, 16, 1024).seconds
    )


def test_realistic_efficiency_is_slower_than_the_ideal_roofline(catalog, arch):
    a, gpu = arch("llama-3-8b"), catalog.gpu("a100-80g")
    ideal = Efficiency(mbu=1.0, step_overhead_s=0, layer_overhead_s=0)
    real = decode_step(a, Precision.BF16, gpu, 1, 1, 1024).tokens_per_s_per_stream
    naive = decode_step(a, Precision.BF16, gpu, 1, 1, 1024, eff=ideal).tokens_per_s_per_stream
    assert naive / real > 1.3


def test_input_embedding_is_a_lookup_and_not_read_each_step(arch):
    a = arch("llama-3-8b")
    assert weights_read_bytes(a, Precision.FP16, 1) == pytest.approx(2 * (8_030_261_248 - 128256 * 4096))


def test_moe_batch_of_one_reads_only_the_active_experts(arch):
    a = arch("mixtral-8x7b")
    assert weights_read_bytes(a, Precision.FP16, 1) < 0.3 * weights_read_bytes(a, Precision.FP16, 1024)


def test_experts_touched_grow_towards_all_experts_with_batch():
    assert experts_touched(8, 2, 1) == pytest.approx(2)
    assert experts_touched(256, 8, 4096) == pytest.approx(256, rel=0.001)


def test_no_allreduce_without_tensor_parallelism(catalog, arch):
    assert allreduce_time(arch("llama-3-8b"), catalog.gpu("a100-80g"), 1, 8) == 0.0


def test_allreduce_over_pcie_is_slower_than_over_nvlink(catalog, arch):
    a = arch("llama-3-70b")
    assert allreduce_time(a, catalog.gpu("l40s"), 4, 2048) > 5 * allreduce_time(
        a, catalog.gpu("h100-80g"), 4, 2048
    )


def test_a6000_nvlink_bridge_only_helps_pairs(catalog, arch):
    a, gpu = arch("llama-3-70b"), catalog.gpu("a6000")
    assert allreduce_time(a, gpu, 4, 2048) / 2 > allreduce_time(a, gpu, 2, 2048)


def test_ttft_has_a_floor_for_short_prompts(catalog, arch):
    pre = prefill(arch("llama-3-70b"), Precision.FP16, catalog.gpu("a100-80g"), 2, 1)
    assert pre.memory_s > pre.compute_s
    assert pre.ttft_s >= pre.memory_s


def test_ttft_grows_superlinearly_with_very_long_prompts(catalog, arch):
    a, gpu = arch("llama-3-8b"), catalog.gpu("h100-80g")
    assert (
        prefill(a, Precision.BF16, gpu, 1, 65536).compute_s
        > 8.5 * prefill(a, Precision.BF16, gpu, 1, 8192).compute_s
    )


def test_int4_prefill_runs_at_16_bit_rate(catalog, arch):
    a, gpu = arch("llama-3-8b"), catalog.gpu("h100-80g")
    assert (
        prefill(a, Precision.INT4, gpu, 1, 4096).compute_s
        == prefill(a, Precision.FP16, gpu, 1, 4096).compute_s
    )


def test_fp8_prefill_uses_fp8_tensor_cores_where_they_exist(catalog, arch):
    a = arch("llama-3-8b")
    h100 = catalog.gpu("h100-80g")
    assert (
        prefill(a, Precision.FP8, h100, 1, 4096).compute_s
        < 0.6 * prefill(a, Precision.FP16, h100, 1, 4096).compute_s
    )
    a100 = catalog.gpu("a100-80g")
    assert (
        prefill(a, Precision.FP8, a100, 1, 4096).compute_s
        == prefill(a, Precision.FP16, a100, 1, 4096).compute_s
    )


def test_served_throughput_is_below_pure_decode_because_prompts_cost_time(catalog, arch):
    a, gpu = arch("llama-3-8b"), catalog.gpu("a100-80g")
    step = decode_step(a, Precision.BF16, gpu, 1, 32, 2048)
    served = served_output_tokens_per_s(step, prefill(a, Precision.BF16, gpu, 1, 4096), 128)
    assert served < step.aggregate_tokens_per_s
