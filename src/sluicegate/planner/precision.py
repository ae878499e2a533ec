"""Numeric precisions: bytes per weight and the tensor-core rate each one runs at on a GPU.

Quantized checkpoints keep the input embedding and the lm_head in 16 bits (AWQ, GPTQ and the
FP8 checkpoints vLLM serves all do), so only the linear layers shrink. Realistic bytes per
parameter include the quantization scales (planner-facts §2.2): int4 g128 is 0.53-0.57, not 0.5.
"""

from __future__ import annotations

from enum import Enum

from sluicegate.planner.catalog import Gpu


class Precision(str, Enum):
    FP16 = "fp16"
    BF16 = "bf16"
    FP8 = "fp8"
    INT8 = "int8"
    INT4 = "int4"


#: bytes per linear-layer weight, scales included
LINEAR_BYTES: dict[Precision, float] = {
    Precision.FP16: 2.0,
    Precision.BF16: 2.0,
    Precision.FP8: 1.02,
    Precision.INT8: 1.02,
    Precision.INT4: 0.55,
}

#: bytes for weights left at 16 bits (embeddings, lm_head)
EMBEDDING_BYTES = 2.0


def parse_precision(text: str) -> Precision:
    try:
        return Precision(text.lower())
    except ValueError:
        raise ValueError(
            f"unknown precision {text!r}; use one of {', '.join(p.value for p in Precision)}"
        ) from None


def peak_tflops(gpu: Gpu, precision: Precision) -> tuple[float, str | None]:
    """Dense tensor throughput the GEMMs run at, and a note when the GPU lacks the native format.

    fp8 and int8 run as W8A8 where the card has the units, else weight-only with 16-bit math
    (vLLM's Marlin kernels); int4 is weight-only (W4A16), so its math is 16-bit everywhere.
    """
    fp16 = gpu.fp16_tflops.value
    if precision is Precision.BF16 and not gpu.bf16:
        return fp16, f"{gpu.id} has no BF16; runs as FP16"
    if precision is Precision.FP8:
        if gpu.fp8_tflops is not None:
            return gpu.fp8_tflops.value, None
        return fp16, f"{gpu.id} has no FP8 tensor cores; FP8 weights served with 16-bit math (W8A16)"
    if precision is Precision.INT8:
        if gpu.int8_tops is not None:
            return gpu.int8_tops.value, None
        return fp16, f"{gpu.id} has no INT8 tensor cores; INT8 weights served with 16-bit math (W8A16)"
    return fp16, None
