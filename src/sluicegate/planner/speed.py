"""Decode, prefill and mixed (served) speed of a layout, from per-kernel rooflines plus the
engine's measured inefficiencies (:mod:`sluicegate.planner.engines`).

A forward step runs its kernels one after another, so its time is a **sum** of per-kernel
times, each the slower of its memory and math time (not one max over the whole step)::

    t_stage = max(W_dense/(tp·pp) / (mbu·BW),  F_dense(m) / (tp · mfu(m) · peak))     dense GEMMs
            + max(W_experts_touched/(ep·pp) / (mbu·BW), F_experts / (ep · mfu(m_e) · peak))
            + KV bytes read by attention / (mbu·BW)                                   attention
            + t_allreduce(tp) + t_all_to_all(ep) + t_pp_hop
            + step_s + per_seq_s·b + (L/pp)·layer_s + (L_moe/pp)·(moe_layer_s + moe_token_s·b/dp)
    mfu(m)  = mfu · m / (m + gemm_half_m)          m = tokens in the GEMM (batch, or prompt)

    MoE: experts touched by b tokens = E·(1 − (1 − k/E)^b) per layer (derived, not sourced):
         batch 1 reads k experts, a large batch reads them all.

Layouts: ``tp`` cards split every layer (NVLink all-reduces), ``pp`` stages split the layers
(one hop per stage, over the network between nodes), and for MoE the experts of a stage are
spread over ``ep = tp·dp`` cards while attention runs data-parallel over ``dp`` groups (the
DeepSeek/SGLang "DP attention + EP" deployment). A stream's token passes through all ``pp``
stages, so per-stream speed is 1/(pp·t_stage) and aggregate B/(pp·t_stage).

Mixed phase (what a loaded server does): each step also prefills the prompts of the requests
that arrive while B streams decode, on average ``B·prompt/output`` tokens per step, at GEMM
efficiency. Per-stream speed and aggregate throughput under load both come from that one step
time, so they cannot contradict each other.
"""

from __future__ import annotations

from dataclasses import dataclass

from sluicegate.planner.catalog import Gpu
from sluicegate.planner.engines import Engine
from sluicegate.planner.layout import GPUS_PER_NODE, Layout
from sluicegate.planner.models import Architecture, count_params, expert_size_params, kv_bytes_per_token
from sluicegate.planner.precision import EMBEDDING_BYTES, LINEAR_BYTES, Precision, peak_tflops


def experts_touched(experts: int, active: int, tokens: float) -> float:
    """Expected distinct experts a layer reads for ``tokens`` tokens routed top-``active`` of ``experts``."""
    if experts == 0:
        return 0.0
    return experts * (1.0 - (1.0 - active / experts) ** max(tokens, 1.0))


@dataclass(frozen=True)
class _Split:
    """Per-model byte and FLOP counts the step formulas need."""

    dense_bytes: float  # weights every token reads: attention, dense MLPs, shared experts, lm_head
    dense_params_active: float
    expert_bytes: float  # one routed expert in one layer
    expert_params: float
    moe_layers: int


def _split(arch: Architecture, precision: Precision) -> _Split:
    p = count_params(arch)
    lin = LINEAR_BYTES[precision]
    input_embedding = 0 if arch.tied else arch.vocab * arch.hidden
    head_params = p.embedding - input_embedding
    body = p.non_expert - p.embedding
    e = expert_size_params(arch) if arch.is_moe else 0
    moe_layers = arch.layers - arch.dense_layers if arch.is_moe else 0
    return _Split(
        dense_bytes=body * lin + head_params * EMBEDDING_BYTES,
        dense_params_active=body + head_params,
        expert_bytes=e * lin,
        expert_params=e,
        moe_layers=moe_layers,
    )


def _peak(gpu: Gpu, precision: Precision, engine: Engine) -> float:
    """FLOP/s the GEMMs run at. GeForce cards do FP16 with FP32 accumulate at half the FP16-
    accumulate rate (Ada whitepaper: 165 vs 330 TF on a 4090); engines that accumulate in FP16
    (llama.cpp's cuBLAS path) get the full rate there."""
    tflops, _ = peak_tflops(gpu, precision)
    if engine.fp16_accumulate and gpu.market == "consumer" and tflops == gpu.fp16_tflops.value:
        tflops *= 2
    return tflops * 1e12


def _mfu(engine: Engine, m: float) -> float:
    return engine.mfu * m / (m + engine.gemm_half_m)


def _intra_link(gpu: Gpu, n: int, engine: Engine) -> tuple[float, float]:
    """(bytes/s one direction, latency) inside a node for a group of ``n`` cards."""
    if gpu.nvlink_gbs is not None and n <= max(gpu.nvlink_domain, 1):
        return gpu.nvlink_gbs.value * 1e9 / 2, engine.nvlink_latency_s
    pcie = gpu.pcie_gbs.value if gpu.pcie_gbs is not None else 32.0
    return pcie * 1e9 / 2, engine.pcie_latency_s


def _allreduce(arch: Architecture, gpu: Gpu, lay: Layout, tokens: float, engine: Engine) -> float:
    """Two ring all-reduces of 16-bit activations per layer of the stage."""
    if lay.tp <= 1:
        return 0.0
    if lay.tp > GPUS_PER_NODE:  # a TP group spanning nodes all-reduces over the network, ring steps
        bw, lat = lay.network_gbps * 1e9 / 8, 2 * (lay.tp - 1) * engine.network_hop_s
    else:
        bw, lat = _intra_link(gpu, lay.tp, engine)
    payload = 2 * tokens * arch.hidden * 2 * (lay.tp - 1) / lay.tp
    return 2 * (arch.layers / lay.pp) * (lat + payload / (engine.link_efficiency * bw))


def _all_to_all(arch: Architecture, gpu: Gpu, lay: Layout, tokens: float, engine: Engine) -> float:
    """Expert-parallel dispatch + combine per MoE layer (only when attention is data-parallel)."""
    if lay.dp <= 1 or not arch.is_moe:
        return 0.0
    ep = lay.ep
    if ep <= GPUS_PER_NODE:
        bw, lat = _intra_link(gpu, ep, engine)
    else:
        bw, lat = lay.network_gbps * 1e9 / 8, engine.network_latency_s
    per_gpu_tokens = tokens / ep
    payload = 2 * per_gpu_tokens * arch.active_experts * arch.hidden * 1.5 * (ep - 1) / ep
    moe_layers = (arch.layers - arch.dense_layers) / lay.pp
    return moe_layers * (2 * lat + payload / (engine.link_efficiency * bw))


def _pp_hop(arch: Architecture, lay: Layout, tokens: float, engine: Engine) -> float:
    if lay.pp <= 1:
        return 0.0
    bw = lay.network_gbps * 1e9 / 8
    return engine.network_latency_s + tokens * arch.hidden * 2 / (engine.link_efficiency * bw)


@dataclass(frozen=True)
class Step:
    """One forward step of one pipeline stage and its parts (seconds)."""

    tokens: float  # tokens of the micro-batch in this step (all dp groups)
    weights_s: float
    compute_s: float
    attention_s: float
    comm_s: float
    overhead_s: float
    pp: int

    @property
    def stage_s(self) -> float:
        return self.weights_s + self.attention_s + self.comm_s + self.overhead_s

    @property
    def bound(self) -> str:
        return "compute" if self.compute_s >= self.weights_s * 0.999 else "memory"


def _stage(
    arch: Architecture,
    precision: Precision,
    gpu: Gpu,
    lay: Layout,
    engine: Engine,
    tokens: float,
    kv_tokens: float,
    kv_bytes_per_value: float,
    attn_flops: float,
    seqs: float,
) -> Step:
    """A stage processing ``tokens`` tokens that attend over ``kv_tokens`` cached tokens in all."""
    s = _split(arch, precision)
    bw = gpu.bandwidth_gbs.value * 1e9 * engine.mbu
    peak = _peak(gpu, precision, engine)
    group_tokens = max(tokens / lay.dp, 1.0)
    # dense part: every dp group reads its own copy of the stage's dense weights
    d_mem = s.dense_bytes / (lay.tp * lay.pp) / bw
    d_flops = 2 * s.dense_params_active * group_tokens / (lay.tp * lay.pp)
    d_comp = d_flops / (_mfu(engine, group_tokens) * peak)
    # routed experts, spread over ep cards
    e_mem = e_comp = 0.0
    if arch.is_moe:
        touched = experts_touched(arch.experts, arch.active_experts, tokens)
        layers = s.moe_layers / lay.pp
        e_mem = touched * s.expert_bytes * layers / lay.ep / bw
        m = tokens * arch.active_experts / max(touched, 1.0)
        e_flops = 2 * s.expert_params * arch.active_experts * tokens * layers / lay.ep
        e_comp = e_flops / (_mfu(engine, m) * peak)
    kv_tok = kv_bytes_per_token(arch, kv_bytes_per_value) / lay.pp
    shards = 1 if arch.is_mla else min(lay.tp, arch.kv_heads)
    attn = kv_tokens / lay.dp * kv_tok / shards / bw
    attn = max(attn, attn_flops / lay.dp / lay.tp / lay.pp / (engine.mfu * peak))
    comm = (
        _allreduce(arch, gpu, lay, group_tokens, engine)
        + _all_to_all(arch, gpu, lay, tokens, engine)
        + _pp_hop(arch, lay, group_tokens, engine)
    )
    overhead = (
        engine.step_s / lay.pp
        + engine.per_seq_s * seqs
        + (arch.layers / lay.pp) * engine.layer_s
        + (s.moe_layers / lay.pp) * (engine.moe_layer_s + engine.moe_token_s * group_tokens)
    )
    return Step(
        tokens=tokens,
        weights_s=max(d_mem, d_comp) + max(e_mem, e_comp),
        compute_s=d_comp + e_comp,
        attention_s=attn,
        comm_s=comm,
        overhead_s=overhead,
        pp=lay.pp,
    )


@dataclass(frozen=True)
class Decode:
    batch: int
    step: Step
    prefill_s: float = 0.0  # prefill work folded into each step under load (mixed phase)

    @property
    def seconds(self) -> float:
        """Time between two tokens of one stream."""
        return self.step.pp * (self.step.stage_s + self.prefill_s)

    @property
    def tokens_per_s_per_stream(self) -> float:
        return 1.0 / self.seconds

    @property
    def aggregate_tokens_per_s(self) -> float:
        return self.batch / self.seconds

    @property
    def bound(self) -> str:
        return self.step.bound


def decode(
    arch: Architecture,
    precision: Precision,
    gpu: Gpu,
    lay: Layout,
    engine: Engine,
    batch: int,
    context: float,
    kv_bytes_per_value: float = 2.0,
    prompt_tokens: int = 0,
    output_tokens: int = 0,
) -> Decode:
    """Decode for ``batch`` streams at average KV length ``context``. With ``prompt_tokens`` and
    ``output_tokens`` it is the mixed phase: each step also prefills the arriving prompts."""
    batch = max(batch, 1)
    micro = batch / lay.pp
    attn_flops = 4 * micro * context * arch.layers * arch.q_dim
    step = _stage(
        arch, precision, gpu, lay, engine, micro, micro * context, kv_bytes_per_value, attn_flops, micro
    )
    pre = 0.0
    if prompt_tokens and output_tokens:
        chunk = micro * prompt_tokens / output_tokens
        pre = prefill_compute_s(arch, precision, gpu, lay, engine, chunk, prompt_tokens)
    return Decode(batch=batch, step=step, prefill_s=pre)


def prefill_compute_s(
    arch: Architecture,
    precision: Precision,
    gpu: Gpu,
    lay: Layout,
    engine: Engine,
    tokens: float,
    prompt_tokens: int,
) -> float:
    """Math time of ``tokens`` prompt tokens riding in a decode step (weights are already read)."""
    s = _split(arch, precision)
    p = count_params(arch)
    peak = _peak(gpu, precision, engine)
    active = s.dense_params_active + (p.active - p.non_expert)
    m = max(tokens, 1.0) + 256  # chunked prefill batches prompt tokens with the decode batch
    flops = (2 * active + 2 * arch.layers * prompt_tokens * arch.q_dim) * tokens
    return flops / lay.count / (_mfu(engine, m) * peak)


@dataclass(frozen=True)
class Prefill:
    prompt_tokens: int
    step: Step
    request_s: float

    @property
    def ttft_s(self) -> float:
        """Unloaded time to first token: every stage runs the whole prompt, plus request overhead."""
        return self.step.pp * self.step.stage_s + self.request_s


def prefill(
    arch: Architecture,
    precision: Precision,
    gpu: Gpu,
    lay: Layout,
    engine: Engine,
    prompt_tokens: int,
    kv_bytes_per_value: float = 2.0,
) -> Prefill:
    """One prompt alone on the setup (batch-1 TTFT)."""
    s = max(prompt_tokens, 1)
    attn_flops = 2 * arch.layers * s * s * arch.q_dim
    # a single prompt runs on one attention group (conservative for DP-attention MoE layouts,
    # whose experts would spread the prompt's expert GEMMs over more cards)
    one = Layout(tp=lay.tp, pp=lay.pp, dp=1, network_gbps=lay.network_gbps)
    step = _stage(arch, precision, gpu, one, engine, s, 0.0, kv_bytes_per_value, attn_flops, 1)
    return Prefill(prompt_tokens=s, step=step, request_s=engine.request_s)
