"""Behaviour of the speed model: rooflines, batching, parallel layouts, MoE, engines, prefill."""

from __future__ import annotations

import pytest

from sluicegate.planner.engines import ENGINES, get_engine
from sluicegate.planner.layout import Layout, candidates
from sluicegate.planner.precision import Precision
from sluicegate.planner.speed import decode, experts_touched, prefill

VLLM = get_engine("vllm")
ONE = Layout()


def test_batching_raises_aggregate_and_lowers_per_stream_speed(catalog, arch):
    a, gpu = arch("llama-3-8b"), catalog.gpu("h100-80g")
    small, big = (decode(a, Precision.BF16, gpu, ONE, VLLM, b, 1024) for b in (1, 64))
    assert big.aggregate_tokens_per_s > 20 * small.aggregate_tokens_per_s
    assert big.tokens_per_s_per_stream < small.tokens_per_s_per_stream


def test_single_stream_decode_is_memory_bound(catalog, arch):
    d = decode(arch("llama-3-8b"), Precision.BF16, catalog.gpu("a100-80g"), ONE, VLLM, 1, 1024)
    assert d.bound == "memory"


def test_large_batch_short_context_on_h20_is_compute_bound(catalog, arch):
    # H20: 4 TB/s but 148 TFLOPS, so its ridge point is a small batch
    d = decode(arch("llama-3-8b"), Precision.BF16, catalog.gpu("h20"), ONE, VLLM, 256, 128)
    assert d.bound == "compute"


def test_long_contexts_slow_decode_through_kv_reads(catalog, arch):
    a, gpu = arch("llama-3-8b"), catalog.gpu("a100-80g")
    long = decode(a, Precision.BF16, gpu, ONE, VLLM, 16, 32768).seconds
    assert long > 2 * decode(a, Precision.BF16, gpu, ONE, VLLM, 16, 1024).seconds


def test_hundreds_of_streams_pay_per_sequence_cpu_time(catalog, arch):
    a, gpu = arch("llama-3-8b"), catalog.gpu("h100-80g")
    lean = VLLM.with_(per_seq_s=0.0)
    real = decode(a, Precision.FP8, gpu, ONE, VLLM, 256, 512).aggregate_tokens_per_s
    ideal = decode(a, Precision.FP8, gpu, ONE, lean, 256, 512).aggregate_tokens_per_s
    assert ideal / real > 1.2


def test_mixed_phase_makes_per_stream_and_aggregate_agree(catalog, arch):
    a, gpu = arch("llama-3-8b"), catalog.gpu("a100-80g")
    d = decode(a, Precision.BF16, gpu, ONE, VLLM, 32, 2048, 2.0, 4096, 128)
    pure = decode(a, Precision.BF16, gpu, ONE, VLLM, 32, 2048)
    assert d.aggregate_tokens_per_s == pytest.approx(32 * d.tokens_per_s_per_stream)
    assert d.tokens_per_s_per_stream < 0.8 * pure.tokens_per_s_per_stream


def test_moe_batch_of_one_reads_only_the_active_experts(catalog, arch):
    a, gpu = arch("mixtral-8x7b"), catalog.gpu("h100-80g")
    one = decode(a, Precision.FP16, gpu, Layout(tp=2), VLLM, 1, 512).step.weights_s
    many = decode(a, Precision.FP16, gpu, Layout(tp=2), VLLM, 64, 512).step.weights_s
    assert one < 0.5 * many


def test_experts_touched_grow_towards_all_experts_with_batch():
    assert experts_touched(8, 2, 1) == pytest.approx(2)
    assert experts_touched(256, 8, 4096) == pytest.approx(256, rel=0.001)


def test_no_allreduce_without_tensor_parallelism(catalog, arch):
    d = decode(arch("llama-3-8b"), Precision.BF16, catalog.gpu("a100-80g"), ONE, VLLM, 8, 1024)
    assert d.step.comm_s == 0.0


def test_allreduce_over_pcie_is_slower_than_over_nvlink(catalog, arch):
    a = arch("llama-3-70b")
    pcie = decode(a, Precision.FP8, catalog.gpu("l40s"), Layout(tp=4), VLLM, 64, 1024).step.comm_s
    nvlink = decode(a, Precision.FP8, catalog.gpu("h100-80g"), Layout(tp=4), VLLM, 64, 1024).step.comm_s
    assert pcie > 3 * nvlink


def test_pipeline_stages_add_latency_but_keep_aggregate(catalog, arch):
    a, gpu = arch("llama-3-70b"), catalog.gpu("l40s")
    tp4 = decode(a, Precision.FP8, gpu, Layout(tp=4), VLLM, 64, 1024)
    pp4 = decode(a, Precision.FP8, gpu, Layout(pp=4), VLLM, 64, 1024)
    assert pp4.tokens_per_s_per_stream < tp4.tokens_per_s_per_stream * 1.5
    assert pp4.aggregate_tokens_per_s > 0.5 * tp4.aggregate_tokens_per_s


def test_expert_parallel_across_nodes_pays_the_network(catalog, arch):
    a, gpu = arch("deepseek-v3"), catalog.gpu("h100-80g")
    fast = Layout(tp=1, dp=16, network_gbps=400)
    slow = Layout(tp=1, dp=16, network_gbps=25)
    sg = get_engine("sglang")
    assert (
        decode(a, Precision.FP8, gpu, slow, sg, 512, 1024).step.comm_s
        > 4 * decode(a, Precision.FP8, gpu, fast, sg, 512, 1024).step.comm_s
    )


def test_layouts_cover_any_card_count_up_to_64(catalog, arch):
    gpu = catalog.gpu("h20")
    for n in (3, 6, 12, 16, 24, 48, 64):
        lays = list(candidates(arch("deepseek-v3"), gpu, n))
        assert lays and all(lay.count == n for lay in lays)
    assert all(lay.tp <= 8 for lay in candidates(arch("llama-3-70b"), gpu, 64))


def test_engines_rank_trtllm_fastest_and_llamacpp_slowest_at_their_batch_caps(catalog, arch):
    a, gpu = arch("llama-3-8b"), catalog.gpu("a100-80g")
    speed = {
        name: decode(a, Precision.FP16, gpu, ONE, e, min(128, e.max_batch), 1024).aggregate_tokens_per_s
        for name, e in ENGINES.items()
    }
    assert speed["trtllm"] > speed["vllm"] > speed["llamacpp"]


def test_llamacpp_fp16_gemms_run_at_the_geforce_fp16_accumulate_rate(catalog, arch):
    a = arch("llama-2-7b")
    llama = get_engine("llamacpp")
    same_mfu = get_engine("vllm").with_(mfu=llama.mfu, gemm_half_m=llama.gemm_half_m)
    for gpu_id, ratio in (("rtx-4090", 0.5), ("a100-80g", 1.0)):
        gpu = catalog.gpu(gpu_id)
        fast = prefill(a, Precision.FP16, gpu, ONE, llama, 512).step.compute_s
        assert fast == pytest.approx(
            ratio * prefill(a, Precision.FP16, gpu, ONE, same_mfu, 512).step.compute_s
        )


def test_short_prompt_ttft_has_a_weight_read_floor(catalog, arch):
    pre = prefill(arch("llama-3-70b"), Precision.FP16, catalog.gpu("a100-80g"), Layout(tp=2), VLLM, 1)
    assert pre.step.weights_s >= pre.step.compute_s
    assert pre.ttft_s > VLLM.request_s


def test_ttft_grows_superlinearly_with_very_long_prompts(catalog, arch):
    a, gpu = arch("llama-3-8b"), catalog.gpu("h100-80g")
    long = prefill(a, Precision.BF16, gpu, ONE, VLLM, 65536).step.stage_s
    assert long > 8.5 * prefill(a, Precision.BF16, gpu, ONE, VLLM, 8192).step.stage_s


@pytest.mark.parametrize("weight_only", [Precision.INT4, Precision.INT8, Precision.Q4_K_M])
def test_weight_only_formats_prefill_at_16_bit_rate(catalog, arch, weight_only):
    a, gpu = arch("llama-3-8b"), catalog.gpu("h100-80g")
    assert (
        prefill(a, weight_only, gpu, ONE, VLLM, 4096).step.compute_s
        == prefill(a, Precision.FP16, gpu, ONE, VLLM, 4096).step.compute_s
    )


def test_w8a8_prefill_uses_int8_tensor_cores(catalog, arch):
    a, gpu = arch("llama-3-8b"), catalog.gpu("a100-80g")
    w8a8 = prefill(a, Precision.W8A8, gpu, ONE, VLLM, 4096).step.compute_s
    assert w8a8 < 0.6 * prefill(a, Precision.INT8, gpu, ONE, VLLM, 4096).step.compute_s


def test_fp8_prefill_uses_fp8_tensor_cores_where_they_exist(catalog, arch):
    a = arch("llama-3-8b")
    h100, a100 = catalog.gpu("h100-80g"), catalog.gpu("a100-80g")
    assert (
        prefill(a, Precision.FP8, h100, ONE, VLLM, 4096).step.compute_s
        < 0.6 * prefill(a, Precision.FP16, h100, ONE, VLLM, 4096).step.compute_s
    )
    assert (
        prefill(a, Precision.FP8, a100, ONE, VLLM, 4096).step.compute_s
        == prefill(a, Precision.FP16, a100, ONE, VLLM, 4096).step.compute_s
    )
