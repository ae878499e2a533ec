"""Decode speed, time to first token and served throughput, from a roofline with realistic
efficiencies (planner-facts §2.4-2.6).

Decode step for ``B`` streams at average length ``c`` on ``t`` cards::

    bytes  = W_read/t + B·c·kv_per_tok                        W_read excludes the input embedding
                                                              (a lookup); MoE reads only touched experts
    flops  = (2·P_active·B + 4·B·c·L·q_dim) / t
    t_mem  = bytes / (MBU·BW·e_bw(t))         MBU 0.75,  e_bw(t)  = t^-0.1
    t_comp = flops / (MFU_dec·peak·e_c(t))     MFU_dec 0.50, e_c(t) = t^-0.2
    t_comm = 2·L·(lat + 2·B·hidden·2·(t−1)/t / (0.7·link/2))  link = bidirectional GB/s; 0 when t = 1
    t_step = max(t_mem, t_comp) + t_comm + 0.5 ms + L·10 µs (+ 55 µs per active expert per MoE layer)
    per stream = 1/t_step,   aggregate = B/t_step

MoE: experts touched per layer by a batch of B tokens = E·(1 − (1 − k/E)^B) (derived, not sourced).

Time to first token for an ``S``-token prompt::

    flops = 2·P_active·S + 2·L·S²·q_dim                       (causal attention, half of 4·L·S²·q_dim)
    TTFT  = max(flops/(t·MFU_pre·peak·e_c(t)), W_read/(t·MBU·BW·e_bw(t))) + t_comm(S) + 8 ms
    MFU_pre 0.60

The constants were chosen against published measurements (tests/planner/test_measurements.py
cites them): the 0.75 MBU is what vLLM reaches on one A100 for Llama-3.1-8B (~77% of the
roofline), the 8 ms request overhead and the t^-0.2 tensor-parallel efficiency reproduce
Databricks' MPT-7B and Llama-2-70B TTFT scaling. Calculators that assume MBU = 1 and perfect TP
scaling overstate speed by 30-60%. Served throughput (prefill included) is in
:func:`served_output_tokens_per_s`.
"""

from __future__ import annotations

from dataclasses import dataclass

from sluicegate.planner.catalog import Gpu
from sluicegate.planner.models import (
    Architecture,
    count_params,
    expert_size_params,
    kv_bytes_per_token,
    kv_shards,
)
from sluicegate.planner.precision import EMBEDDING_BYTES, LINEAR_BYTES, Precision, peak_tflops


@dataclass(frozen=True)
class Efficiency:
    """Realistic fractions of the datasheet peak; override to model a better or worse engine."""

    mbu: float = 0.75
    mfu_decode: float = 0.50
    mfu_prefill: float = 0.60
    tp_compute_exponent: float = 0.2
    tp_bandwidth_exponent: float = 0.1
    link_efficiency: float = 0.7
    nvlink_latency_s: float = 10e-6
    pcie_latency_s: float = 50e-6
    step_overhead_s: float = 0.5e-3
    layer_overhead_s: float = 10e-6
    moe_expert_overhead_s: float = 55e-6
    request_overhead_s: float = 8e-3
    prefill_overlap: float = 0.5


DEFAULT_EFFICIENCY = Efficiency()


def experts_touched(experts: int, active: int, tokens: int) -> float:
    """Expected distinct experts a layer reads for ``tokens`` tokens routed top-``active`` of ``experts``."""
    if experts == 0:
        return 0.0
    return experts * (1.0 - (1.0 - active / experts) ** max(tokens, 1))


def weights_read_bytes(arch: Architecture, precision: Precision, tokens: int) -> float:
    """Weight bytes one forward pass over ``tokens`` tokens reads from memory (whole model)."""
    p = count_params(arch)
    lin = LINEAR_BYTES[precision]
    input_embedding = 0 if arch.tied else arch.vocab * arch.hidden
    head_bytes = (p.embedding - input_embedding) * EMBEDDING_BYTES
    body: float = p.non_expert - p.embedding
    if arch.is_moe:
        moe_layers = arch.layers - arch.dense_layers
        body += (
            moe_layers * experts_touched(arch.experts, arch.active_experts, tokens) * expert_size_params(arch)
        )
    return body * lin + head_bytes


def _link(gpu: Gpu, tp: int, eff: Efficiency) -> tuple[float, float]:
    """(bytes/s one direction, latency) of the link a TP group of ``tp`` all-reduces over."""
    if gpu.nvlink_gbs is not None and tp <= gpu.nvlink_domain:
        return gpu.nvlink_gbs.value * 1e9 / 2, eff.nvlink_latency_s
    pcie = gpu.pcie_gbs.value if gpu.pcie_gbs is not None else 32.0
    return pcie * 1e9 / 2, eff.pcie_latency_s


def allreduce_time(
    arch: Architecture, gpu: Gpu, tp: int, tokens: int, eff: Efficiency = DEFAULT_EFFICIENCY
) -> float:
    """Two ring all-reduces of the 16-bit activations per layer (attention out, MLP out)."""
    if tp <= 1:
        return 0.0
    bw, latency = _link(gpu, tp, eff)
    payload = 2 * tokens * arch.hidden * 2 * (tp - 1) / tp
    return 2 * arch.layers * (latency + payload / (eff.link_efficiency * bw))


def fixed_step_overhead(arch: Architecture, eff: Efficiency = DEFAULT_EFFICIENCY) -> float:
    """Time a decode step spends that no roofline sees: the scheduler, and kernels too small to
    reach peak (launch latency and minimum durations, a few µs per op). MoE layers pay per active
    expert: their grouped GEMMs are small and badly shaped at small batch, which is why measured
    MoE decode is far below its bandwidth roofline (SGLang, DeepSeek-V3 on 8xH200: 30 tok/s at
    batch 1 where the roofline says 170)."""
    moe_layers = arch.layers - arch.dense_layers if arch.is_moe else 0
    experts = arch.active_experts + arch.shared_experts
    return (
        eff.step_overhead_s
        + arch.layers * eff.layer_overhead_s
        + moe_layers * experts * eff.moe_expert_overhead_s
    )


@dataclass(frozen=True)
class DecodeStep:
    batch: int
    seconds: float
    memory_s: float
    compute_s: float
    comm_s: float
    overhead_s: float

    @property
    def tokens_per_s_per_stream(self) -> float:
        return 1.0 / self.seconds

    @property
    def aggregate_tokens_per_s(self) -> float:
        return self.batch / self.seconds

    @property
    def bound(self) -> str:
        return "compute" if self.compute_s > self.memory_s else "memory"


def decode_step(
    arch: Architecture,
    precision: Precision,
    gpu: Gpu,
    tp: int,
    batch: int,
    context: int,
    kv_bytes_per_value: float = 2.0,
    eff: Efficiency = DEFAULT_EFFICIENCY,
) -> DecodeStep:
    """One decode step for ``batch`` streams whose KV caches hold ``context`` tokens on average."""
    batch = max(batch, 1)
    kv_tok = kv_bytes_per_token(arch, kv_bytes_per_value) / kv_shards(arch, tp)
    bytes_step = weights_read_bytes(arch, precision, batch) / tp + batch * context * kv_tok
    bw = gpu.bandwidth_gbs.value * 1e9 * eff.mbu * tp**-eff.tp_bandwidth_exponent
    t_mem = bytes_step / bw
    p = count_params(arch)
    flops = (2 * p.active * batch + 4 * batch * context * arch.layers * arch.q_dim) / tp
    peak, _ = peak_tflops(gpu, precision)
    t_comp = flops / (peak * 1e12 * eff.mfu_decode * tp**-eff.tp_compute_exponent)
    t_comm = allreduce_time(arch, gpu, tp, batch, eff)
    overhead = fixed_step_overhead(arch, eff)
    total = max(t_mem, t_comp) + t_comm + overhead
    return DecodeStep(
        batch=batch, seconds=total, memory_s=t_mem, compute_s=t_comp, comm_s=t_comm, overhead_s=overhead
    )


@dataclass(frozen=True)
class Prefill:
    prompt_tokens: int
    compute_s: float
    memory_s: float
    comm_s: float
    overhead_s: float

    @property
    def ttft_s(self) -> float:
        """Unloaded time to first token: the prefill forward pass plus the fixed request overhead."""
        return max(self.compute_s, self.memory_s) + self.comm_s + self.overhead_s

    @property
    def busy_s(self) -> float:
        """GPU time a prompt costs inside a running batch (chunked prefill shares the weight reads)."""
        return self.compute_s + self.comm_s


def prefill(
    arch: Architecture,
    precision: Precision,
    gpu: Gpu,
    tp: int,
    prompt_tokens: int,
    eff: Efficiency = DEFAULT_EFFICIENCY,
) -> Prefill:
    """Compute-bound prefill of one prompt, with the weight-read time as the short-prompt floor."""
    s = max(prompt_tokens, 1)
    p = count_params(arch)
    flops = 2 * p.active * s + 2 * arch.layers * s * s * arch.q_dim
    peak, _ = peak_tflops(gpu, precision)
    if precision is Precision.INT4:
        peak = gpu.fp16_tflops.value
    t_comp = flops / (tp * peak * 1e12 * eff.mfu_prefill * tp**-eff.tp_compute_exponent)
    bw = gpu.bandwidth_gbs.value * 1e9 * eff.mbu * tp**-eff.tp_bandwidth_exponent
    t_mem = weights_read_bytes(arch, precision, s) / tp / bw
    return Prefill(
        prompt_tokens=s,
        compute_s=t_comp,
        memory_s=t_mem,
        comm_s=allreduce_time(arch, gpu, tp, s, eff),
        overhead_s=eff.request_overhead_s,
    )


def served_output_tokens_per_s(
    step: DecodeStep, pre: Prefill, output_tokens: int, eff: Efficiency = DEFAULT_EFFICIENCY
) -> float:
    """Output tokens/s a setup sustains when every request also needs its prompt prefilled.

    In steady state a batch of B streams completes B requests per cycle. Over a cycle the GPU
    must move ``M = output·t_mem`` worth of bytes and do ``C = output·t_comp + B·prefill_comp``
    worth of math; chunked prefill hides part of the smaller one under the larger::

        T = max(M, C) + (1 − overlap)·min(M, C) + output·(t_comm + fixed) + B·prefill_comm
        served = B·output / T                                   overlap = 0.5

    This is what a closed-loop benchmark reports, and what cost per token must be based on.
    """
    out = max(output_tokens, 1)
    mem = out * step.memory_s
    comp = out * step.compute_s + step.batch * pre.compute_s
    cycle = (
        max(mem, comp)
        + (1 - eff.prefill_overlap) * min(mem, comp)
        + out * (step.comm_s + step.overhead_s)
        + step.batch * pre.comm_s
    )
    return step.batch * out / cycle
