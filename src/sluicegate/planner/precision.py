"""Numeric precisions: bytes per weight, the tensor-core rate each phase runs at, and a quality note.

Quantized checkpoints keep the input embedding and the lm_head in 16 bits (AWQ, GPTQ and the
FP8 checkpoints vLLM serves all do), so only the linear layers shrink. Realistic bytes per
parameter include the quantization scales (planner-facts §2.2): int4 g128 is 0.53-0.57, not 0.5.

Two int8 formats behave differently and are kept apart:

- ``int8`` is weight-only (W8A16: GPTQ/AWQ int8, TRT-LLM ``int8_wo``, bitsandbytes). Decode reads
  half the bytes, but every matmul dequantizes to 16 bits, so **prefill runs at the FP16 rate**.
  Most int8 checkpoints on the Hub are this kind.
- ``w8a8`` (SmoothQuant-style, int8 weights *and* activations) runs the GEMMs on the INT8
  tensor cores at twice the FP16 rate, where the card has them.

``fp8`` is W8A8 on cards with FP8 units (Ada, Hopper) and weight-only (Marlin) elsewhere.
GGUF types are llama.cpp's block formats; their bytes per weight are the published bits per
weight (llama.cpp ``quantize --help`` table) over 8; llama.cpp dequantizes to 16-bit math.
"""

from __future__ import annotations

from enum import Enum

from sluicegate.planner.catalog import Gpu


class Precision(str, Enum):
    FP16 = "fp16"
    BF16 = "bf16"
    FP8 = "fp8"
    W8A8 = "w8a8"
    INT8 = "int8"
    INT4 = "int4"
    Q8_0 = "q8_0"
    Q6_K = "q6_k"
    Q5_K_M = "q5_k_m"
    Q4_K_M = "q4_k_m"
    Q4_1 = "q4_1"
    Q4_0 = "q4_0"


GGUF = frozenset(
    {Precision.Q8_0, Precision.Q6_K, Precision.Q5_K_M, Precision.Q4_K_M, Precision.Q4_1, Precision.Q4_0}
)

#: bytes per linear-layer weight, scales included
LINEAR_BYTES: dict[Precision, float] = {
    Precision.FP16: 2.0,
    Precision.BF16: 2.0,
    Precision.FP8: 1.02,
    Precision.W8A8: 1.02,
    Precision.INT8: 1.02,
    Precision.INT4: 0.55,
    Precision.Q8_0: 8.5 / 8,
    Precision.Q6_K: 6.56 / 8,
    Precision.Q5_K_M: 5.69 / 8,
    Precision.Q4_K_M: 4.85 / 8,
    Precision.Q4_1: 5.0 / 8,
    Precision.Q4_0: 4.5 / 8,
}

#: bytes for weights left at 16 bits (embeddings, lm_head)
EMBEDDING_BYTES = 2.0

#: What each format costs in answer quality, in one line (English, Chinese).
QUALITY: dict[Precision, tuple[str, str]] = {
    Precision.FP16: ("reference quality", "参考质量"),
    Precision.BF16: ("reference quality", "参考质量"),
    Precision.FP8: (
        "near-lossless (FP8 E4M3 with per-tensor scales; <1% on common benchmarks)",
        "几乎无损（FP8 E4M3，常见评测差距 <1%）",
    ),
    Precision.W8A8: (
        "small loss (SmoothQuant-style int8 activations; check long-context and math tasks)",
        "轻微损失（int8 激活，长上下文和数学任务需验证）",
    ),
    Precision.INT8: ("near-lossless (weight-only int8)", "几乎无损（仅权重 int8）"),
    Precision.INT4: (
        "noticeable on hard tasks (AWQ/GPTQ 4-bit: ~1-3% on reasoning/code; fine for chat)",
        "难题上可察觉（AWQ/GPTQ 4 位：推理/代码约降 1-3%，聊天可用）",
    ),
    Precision.Q8_0: ("near-lossless", "几乎无损"),
    Precision.Q6_K: ("near-lossless", "几乎无损"),
    Precision.Q5_K_M: ("very small loss", "损失很小"),
    Precision.Q4_K_M: ("small loss; the usual llama.cpp default", "轻微损失；llama.cpp 常用默认"),
    Precision.Q4_1: ("small loss; superseded by Q4_K_M", "轻微损失；已被 Q4_K_M 取代"),
    Precision.Q4_0: ("noticeable loss; prefer Q4_K_M", "可察觉损失；建议 Q4_K_M"),
}


def parse_precision(text: str) -> Precision:
    try:
        return Precision(text.lower())
    except ValueError:
        raise ValueError(
            f"unknown precision {text!r}; use one of {', '.join(p.value for p in Precision)}"
        ) from None


def peak_tflops(gpu: Gpu, precision: Precision) -> tuple[float, str | None]:
    """Dense tensor throughput the decode GEMMs run at, and a note when the GPU lacks the format.

    Only fp8 (where the card has FP8 units) and w8a8 (INT8 units) run faster than FP16; every
    weight-only format dequantizes into 16-bit math.
    """
    fp16 = gpu.fp16_tflops.value
    if precision is Precision.BF16 and not gpu.bf16:
        return fp16, f"{gpu.id} has no BF16; runs as FP16"
    if precision is Precision.FP8:
        if gpu.fp8_tflops is not None:
            return gpu.fp8_tflops.value, None
        return fp16, f"{gpu.id} has no FP8 tensor cores; FP8 weights served with 16-bit math (W8A16)"
    if precision is Precision.W8A8:
        if gpu.int8_tops is not None:
            return gpu.int8_tops.value, None
        return fp16, f"{gpu.id} has no INT8 tensor cores; W8A8 falls back to 16-bit math"
    return fp16, None


def prefill_tflops(gpu: Gpu, precision: Precision) -> float:
    """Rate the prefill GEMMs run at: the same as decode (weight-only formats are 16-bit math)."""
    return peak_tflops(gpu, precision)[0]
