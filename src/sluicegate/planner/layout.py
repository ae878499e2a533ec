"""Parallel layouts: how ``count`` cards (1 to 64, over one or more 8-GPU nodes) share a model.

``tp`` splits every layer across cards that all-reduce twice per layer, so it belongs inside an
NVLink domain; ``pp`` splits the layers into stages that pass activations once per stage, so it
is what crosses nodes (and what PCIe cards without NVLink should use, as TensorRT-LLM's own
RTX 6000 tables do); for MoE, ``dp`` attention groups share experts spread over ``ep = tp·dp``
cards (expert parallelism), with an all-to-all per MoE layer. The planner evaluates every valid
layout of a card count and keeps the fastest one that fits.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from sluicegate.planner.catalog import Gpu
from sluicegate.planner.models import Architecture

GPUS_PER_NODE = 8
DEFAULT_NETWORK_GBPS = 400.0  # per GPU, one direction: InfiniBand NDR / 400G RoCE per card


@dataclass(frozen=True)
class Layout:
    """How ``count = tp·pp·dp`` cards share one model copy."""

    tp: int = 1
    pp: int = 1
    dp: int = 1
    network_gbps: float = DEFAULT_NETWORK_GBPS

    @property
    def count(self) -> int:
        return self.tp * self.pp * self.dp

    @property
    def ep(self) -> int:
        return self.tp * self.dp

    @property
    def nodes(self) -> int:
        return -(-self.count // GPUS_PER_NODE)

    def describe(self) -> str:
        parts = [f"TP{self.tp}"]
        if self.pp > 1:
            parts.append(f"PP{self.pp}")
        if self.dp > 1:
            parts.append(f"DP{self.dp}/EP{self.ep}")
        return "x".join(parts) + (f" on {self.nodes} nodes" if self.nodes > 1 else "")


def _divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def candidates(
    arch: Architecture,
    gpu: Gpu,
    count: int,
    expert_parallel: bool = True,
    network_gbps: float = DEFAULT_NETWORK_GBPS,
) -> Iterator[Layout]:
    """Every sensible layout of ``count`` cards: TP within a node and dividing the heads, PP for
    the rest (at most one stage per layer), and for MoE models data-parallel attention groups."""
    if count < 1:
        return
    for tp in _divisors(count):
        if tp > GPUS_PER_NODE or arch.heads % tp:
            continue
        rest = count // tp
        dps = _divisors(rest) if (arch.is_moe and expert_parallel) else [1]
        for dp in dps:
            pp = rest // dp
            if pp > arch.layers or (dp > 1 and tp * dp < 2):
                continue
            yield Layout(tp=tp, pp=pp, dp=dp, network_gbps=network_gbps)
