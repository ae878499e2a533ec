"""Serving engines as the estimator sees them: a handful of physical efficiencies per engine.

Every engine gets the same eight numbers, each one a thing a profiler can see:

``mbu``            fraction of memory bandwidth a weight-streaming (GEMV-like) kernel reaches
``mfu``            fraction of dense tensor peak a large GEMM reaches (prefill, big decode batches)
``gemm_half_m``    rows (tokens) at which a GEMM reaches half of ``mfu``: small-M GEMMs leave
                   tensor-core tiles empty, so efficiency rises with batch as M/(M + m_half)
``step_s``         fixed time per forward step (scheduler, sampling, launch of a CUDA graph)
``per_seq_s``      CPU time per running sequence per step (batch bookkeeping, detokenizing):
                   this is what makes decode at hundreds of streams slower than any roofline
``layer_s``        per-layer time no roofline sees (norms, rotary, small kernels, graph gaps)
``moe_layer_s``    per MoE layer: routing, token permutation and grouped-GEMM launch
``moe_token_s``    per token a card routes per MoE layer (top-k, permute/unpermute, scatter):
                   grows with batch, which is why MoE throughput saturates early
``request_s``      per request before the first token (HTTP, tokenizing, scheduling)

plus ``spread``: the half-width of the low/high range, set from the engine's errors against
published measurements (tests/planner/data/measurements.yaml, docs/planner.md).

The values were set by hand against the *calibration* rows of that table and then checked on
held-out rows; see docs/planner.md for the table and each row's error. No vLLM or llama.cpp MoE
measurement with its conditions was found: vLLM's two MoE numbers are SGLang's (both run fused
Triton/CUTLASS MoE kernels), llama.cpp's are a guess, and the docs say so. They describe the
releases measured (vLLM 0.6-0.8 era and later, SGLang 0.4, TensorRT-LLM 0.x-1.0, llama.cpp
2023-2024 builds), not the engines forever.
"""

from __future__ import annotations

from dataclasses import dataclass, replace


@dataclass(frozen=True)
class Engine:
    name: str
    mbu: float
    mfu: float
    gemm_half_m: float
    step_s: float
    per_seq_s: float
    layer_s: float
    moe_layer_s: float
    moe_token_s: float
    request_s: float
    spread: float
    expert_parallel: bool = True
    fp16_accumulate: bool = False  # 16-bit GEMMs accumulate in FP16 (twice the rate on GeForce)
    max_batch: int = 256
    link_efficiency: float = 0.4
    nvlink_latency_s: float = 25e-6
    pcie_latency_s: float = 30e-6
    network_latency_s: float = 20e-6
    network_hop_s: float = 5e-6  # per ring step of an all-reduce between nodes: 2·(n−1) steps
    note: str = ""

    def with_(self, **changes: float) -> Engine:
        """A copy with some efficiencies changed (for what-if runs and tests)."""
        return replace(self, **changes)  # type: ignore[arg-type]


ENGINES: dict[str, Engine] = {
    "vllm": Engine(
        name="vllm",
        mbu=0.78,
        mfu=0.62,
        gemm_half_m=24,
        step_s=1.5e-3,
        per_seq_s=25e-6,
        layer_s=6e-6,
        moe_layer_s=40e-6,
        moe_token_s=2.4e-6,
        request_s=12e-3,
        spread=0.25,
        max_batch=256,
        note="PagedAttention, continuous batching, chunked prefill; max_num_seqs 256.",
    ),
    "sglang": Engine(
        name="sglang",
        mbu=0.80,
        mfu=0.65,
        gemm_half_m=24,
        step_s=1.0e-3,
        per_seq_s=15e-6,
        layer_s=5e-6,
        moe_layer_s=40e-6,
        moe_token_s=2.4e-6,
        request_s=10e-3,
        spread=0.25,
        max_batch=512,
        note="RadixAttention, overlap scheduler, DP attention + expert parallel for DeepSeek.",
    ),
    "trtllm": Engine(
        name="trtllm",
        mbu=0.82,
        mfu=0.60,
        gemm_half_m=16,
        step_s=0.6e-3,
        per_seq_s=8e-6,
        layer_s=4e-6,
        moe_layer_s=40e-6,
        moe_token_s=2.4e-6,
        request_s=6e-3,
        spread=0.2,
        max_batch=2048,
        note="Compiled engines / PyTorch backend with CUDA graphs; in-flight batching; C++ runtime.",
    ),
    "llamacpp": Engine(
        name="llamacpp",
        mbu=0.85,
        mfu=0.60,
        gemm_half_m=16,
        step_s=1.0e-3,
        per_seq_s=50e-6,
        layer_s=30e-6,
        moe_layer_s=150e-6,
        moe_token_s=5e-6,
        request_s=5e-3,
        spread=0.35,
        expert_parallel=False,
        fp16_accumulate=True,
        max_batch=16,
        note="GGUF block quantization dequantized in-kernel; layer split across GPUs (pipeline), "
        "no tensor-core-friendly batching beyond a few slots.",
    ),
}

#: Older releases whose published measurements stay in the validation table. Only the numbers a
#: release changed differ: SGLang 0.4.1 (2024-12) ran DeepSeek's MoE layers ~5x slower than 0.5.
RELEASES: dict[str, Engine] = {
    "sglang-0.4": replace(ENGINES["sglang"], name="sglang-0.4", moe_layer_s=450e-6, moe_token_s=16e-6),
}

DEFAULT_ENGINE = "vllm"


def get_engine(name: str) -> Engine:
    """A current engine by name (``--engine``), or an older release profile for validation."""
    key = name.lower()
    found = ENGINES.get(key) or RELEASES.get(key)
    if found is None:
        raise ValueError(f"unknown engine {name!r}; use one of {', '.join(ENGINES)}")
    return found
