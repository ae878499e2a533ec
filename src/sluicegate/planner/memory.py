"""Memory fit: weights, KV cache and engine reserve per GPU of a tensor-parallel group.

Per GPU, for a layout of ``tp·pp·dp`` cards (planner-facts §2.3)::

    budget      = capacity × util                 util 0.90, vLLM's gpu_memory_utilization default
    weights     = dense_weights / (tp·pp) + routed_expert_weights / (tp·dp·pp)
                  (dense = everything but routed experts; embeddings and lm_head at 2 bytes)
    reserve     = 1.5 GiB  (+ 0.4 GiB NCCL buffers when t > 1)
    kv_per_tok  = 2·L·kv_heads·head_dim·B_kv / (pp·min(tp, kv_heads))   (MLA: not split by tp);
                  each of the dp attention groups holds the KV of its own streams
    kv_budget   = budget − weights − reserve
    max_concurrency = floor(kv_budget / (context × kv_per_tok))

The reserve sits between gpu_poor's 0.65 GB (single-user HF) and AIConfigurator's 3.5 GiB: it
covers the CUDA context, cuBLAS/attention workspaces, CUDA graphs and the activation peak of a
chunked prefill. Capacity is what the driver reports (nvidia-smi MiB, in the catalog): the
vendor's "GB" is binary on an A100 (81920 MiB) but decimal on a T4 (15360 MiB) or an L40S
(46068 MiB), so reading every "GB" as GiB overstates those by 6.7%.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from sluicegate.planner.catalog import Gpu
from sluicegate.planner.layout import Layout
from sluicegate.planner.models import Architecture, count_params, kv_bytes_per_token, kv_shards
from sluicegate.planner.precision import EMBEDDING_BYTES, LINEAR_BYTES, Precision

GIB = 2**30
GPU_MEMORY_UTILIZATION = 0.90
ENGINE_RESERVE_BYTES = 1.5 * GIB
NCCL_RESERVE_BYTES = 0.4 * GIB
TP_SIZES = (1, 2, 4, 8)
MAX_CARDS = 64


def weight_bytes(arch: Architecture, precision: Precision) -> float:
    """Bytes of all weights at ``precision`` (embeddings and lm_head stay 16-bit)."""
    p = count_params(arch)
    return (p.total - p.embedding) * LINEAR_BYTES[precision] + p.embedding * EMBEDDING_BYTES


@dataclass(frozen=True)
class MemoryFit:
    """How one TP group of a GPU holds a model and its KV cache."""

    tp: int
    capacity_bytes: float  # per GPU
    budget_bytes: float  # per GPU, after the utilization cap
    weights_bytes: float  # per GPU
    reserve_bytes: float  # per GPU
    kv_bytes_per_token: float  # per GPU
    kv_budget_bytes: float  # per GPU; negative when the weights alone do not fit
    context: int
    concurrency: int

    @property
    def max_tokens(self) -> int:
        return max(0, math.floor(self.kv_budget_bytes / self.kv_bytes_per_token))

    @property
    def max_concurrency(self) -> int:
        return self.max_tokens // self.context if self.context > 0 else 0

    @property
    def required_bytes(self) -> float:
        """Per GPU memory the workload needs: weights, reserve and KV for every stream."""
        return (
            self.weights_bytes
            + self.reserve_bytes
            + self.concurrency * self.context * self.kv_bytes_per_token
        )

    @property
    def fits(self) -> bool:
        return self.required_bytes <= self.budget_bytes


def fit(
    arch: Architecture,
    precision: Precision,
    gpu: Gpu,
    layout: Layout | int,
    context: int,
    concurrency: int,
    kv_bytes_per_value: float = 2.0,
    util: float = GPU_MEMORY_UTILIZATION,
) -> MemoryFit:
    """Memory per GPU for ``layout`` (or a TP size) serving ``concurrency`` streams of ``context`` tokens.

    ``kv_bytes_per_token`` and the concurrency it allows are for the whole setup: a dp group
    holds 1/dp of the streams, so the per-GPU KV per token is divided by dp as well."""
    lay = layout if isinstance(layout, Layout) else Layout(tp=layout)
    if lay.tp < 1 or context < 1 or concurrency < 0:
        raise ValueError("tp and context must be positive, concurrency non-negative")
    capacity = gpu.memory_bytes
    budget = capacity * util
    p = count_params(arch)
    expert_bytes = p.expert * LINEAR_BYTES[precision]
    dense_bytes = weight_bytes(arch, precision) - expert_bytes
    weights = dense_bytes / (lay.tp * lay.pp) + expert_bytes / (lay.ep * lay.pp)
    reserve = ENGINE_RESERVE_BYTES + (NCCL_RESERVE_BYTES if lay.count > 1 else 0.0)
    kv_tok = kv_bytes_per_token(arch, kv_bytes_per_value) / (kv_shards(arch, lay.tp) * lay.pp * lay.dp)
    return MemoryFit(
        tp=lay.count,
        capacity_bytes=capacity,
        budget_bytes=budget,
        weights_bytes=weights,
        reserve_bytes=reserve,
        kv_bytes_per_token=kv_tok,
        kv_budget_bytes=budget - weights - reserve,
        context=context,
        concurrency=concurrency,
    )


def tp_allowed(arch: Architecture, tp: int) -> bool:
    """Engines split attention heads evenly across ranks (vLLM requires heads % tp == 0)."""
    return arch.heads % tp == 0


def smallest_fit(
    arch: Architecture,
    precision: Precision,
    gpu: Gpu,
    context: int,
    concurrency: int,
    kv_bytes_per_value: float = 2.0,
    sizes: tuple[int, ...] = TP_SIZES,
) -> MemoryFit | None:
    """The smallest TP size in ``sizes`` that holds the weights and the requested KV cache."""
    for tp in sizes:
        if not tp_allowed(arch, tp):
            continue
        f = fit(arch, precision, gpu, tp, context, concurrency, kv_bytes_per_value)
        if f.fits:
            return f
    return None
