"""Composition: a model, a precision and a workload evaluated on GPU setups, ranked.

Pure functions over the catalog; the CLI (``sluicegate plan``) only parses options and prints.
The workload is a plain value so the same estimator can later be fed from the gateway's own
usage (tokens per day, prompt and output lengths) instead of flags.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from sluicegate.planner.catalog import Catalog, Gpu
from sluicegate.planner.cost import (
    ApiComparison,
    Quote,
    WorkloadCost,
    break_even_tokens_per_day,
    quote,
    workload_cost,
)
from sluicegate.planner.export_control import ExportStatus, classify
from sluicegate.planner.memory import TP_SIZES, MemoryFit, fit, smallest_fit, tp_allowed, weight_bytes
from sluicegate.planner.models import Architecture, count_params, kv_bytes_per_token, load_hf_config
from sluicegate.planner.precision import Precision, peak_tflops
from sluicegate.planner.speed import (
    DEFAULT_EFFICIENCY,
    DecodeStep,
    Efficiency,
    Prefill,
    decode_step,
    prefill,
    served_output_tokens_per_s,
)

MAX_BATCH = 256  # vLLM's default max_num_seqs


@dataclass(frozen=True)
class Workload:
    """What the setup must serve. ``context`` is the KV length reserved per stream; decode reads
    the average length in flight, ``prompt + output/2`` (capped at ``context``)."""

    context: int = 4096
    prompt_tokens: int = 1024
    output_tokens: int = 256
    concurrency: int = 8
    kv_bytes_per_value: float = 2.0
    tokens_per_day: float | None = None
    peak_factor: float = 1.0
    min_stream_tokens_per_s: float = 20.0

    def __post_init__(self) -> None:
        if min(self.context, self.prompt_tokens, self.output_tokens, self.concurrency) < 1:
            raise ValueError("context, prompt, output and concurrency must be at least 1")

    @property
    def decode_context(self) -> int:
        return min(self.context, self.prompt_tokens + self.output_tokens // 2)


@dataclass(frozen=True)
class ModelSpec:
    name: str
    arch: Architecture
    source: str
    params_published: float | None = None


def resolve_model(name_or_path: str, catalog: Catalog) -> ModelSpec:
    """A catalog model by name or HF id, or a ``config.json`` path."""
    path = Path(name_or_path)
    if name_or_path.endswith(".json") or path.is_file():
        return ModelSpec(name=path.parent.name or path.stem, arch=load_hf_config(path), source=str(path))
    entry = catalog.model(name_or_path)
    return ModelSpec(
        name=entry.name,
        arch=Architecture.from_mapping(entry.architecture),
        source=entry.source,
        params_published=entry.params_published.value if entry.params_published else None,
    )


@dataclass(frozen=True)
class Option:
    """One GPU setup evaluated for the workload."""

    gpu: Gpu
    count: int
    fits: bool
    memory: MemoryFit
    decode: DecodeStep
    prefill: Prefill
    served_tokens_per_s: float
    export: ExportStatus
    quotes: tuple[Quote, ...]
    notes: tuple[str, ...] = ()
    workload_batch: int | None = None
    workload: WorkloadCost | None = None
    break_even: dict[str, float] = field(default_factory=dict)

    @property
    def best_quote(self) -> Quote | None:
        priced = [q for q in self.quotes if q.per_million_output_tokens is not None]
        return min(priced, key=lambda q: q.per_million_output_tokens or 0.0) if priced else None


def _workload_batch(
    spec: ModelSpec, precision: Precision, gpu: Gpu, count: int, mem: MemoryFit, w: Workload, eff: Efficiency
) -> int:
    """Largest batch that fits in memory and keeps every stream at the minimum speed."""
    best, limit = 1, max(1, min(mem.max_concurrency, MAX_BATCH))
    lo, hi = 1, limit
    while lo <= hi:
        mid = (lo + hi) // 2
        step = decode_step(spec.arch, precision, gpu, count, mid, w.decode_context, w.kv_bytes_per_value, eff)
        if step.tokens_per_s_per_stream >= w.min_stream_tokens_per_s:
            best, lo = mid, mid + 1
        else:
            hi = mid - 1
    return best


def evaluate(
    spec: ModelSpec,
    precision: Precision,
    gpu: Gpu,
    count: int,
    workload: Workload,
    catalog: Catalog,
    currency: str = "USD",
    api: ApiComparison | None = None,
    eff: Efficiency = DEFAULT_EFFICIENCY,
    today: date | None = None,
) -> Option:
    """Evaluate ``count`` cards of ``gpu`` (tensor parallel) for the workload; ``today`` (from the
    caller's clock) lets each price say how old it is."""
    notes: list[str] = []
    if not tp_allowed(spec.arch, count):
        notes.append(f"{spec.arch.heads} attention heads do not split evenly over {count} GPUs")
    if count > 1 and (gpu.nvlink_gbs is None or count > gpu.nvlink_domain):
        notes.append("tensor parallel over PCIe: prefer replicas or pipeline parallel where the model fits")
    _, precision_note = peak_tflops(gpu, precision)
    if precision_note:
        notes.append(precision_note)
    mem = fit(
        spec.arch, precision, gpu, count, workload.context, workload.concurrency, workload.kv_bytes_per_value
    )
    if not mem.fits:
        notes.append(
            "weights do not fit"
            if mem.kv_budget_bytes <= 0
            else f"KV cache for {workload.concurrency} x {workload.context} tokens does not fit "
            f"(max concurrency {mem.max_concurrency})"
        )
    step = decode_step(
        spec.arch,
        precision,
        gpu,
        count,
        workload.concurrency,
        workload.decode_context,
        workload.kv_bytes_per_value,
        eff,
    )
    pre = prefill(spec.arch, precision, gpu, count, workload.prompt_tokens, eff)
    served = served_output_tokens_per_s(step, pre, workload.output_tokens, eff)
    wl_batch: int | None = None
    wl: WorkloadCost | None = None
    tokens_per_day = workload.tokens_per_day
    if tokens_per_day is not None and mem.fits:
        wl_batch = _workload_batch(spec, precision, gpu, count, mem, workload, eff)
        wl_step = decode_step(
            spec.arch,
            precision,
            gpu,
            count,
            wl_batch,
            workload.decode_context,
            workload.kv_bytes_per_value,
            eff,
        )
        served = served_output_tokens_per_s(wl_step, pre, workload.output_tokens, eff)
    fx = catalog.cny_per_usd.value
    quotes = tuple(
        sorted(
            (quote(r, count, served, currency, fx, today) for r in catalog.prices_for(gpu.id)),
            key=lambda q: q.per_hour,
        )
    )
    if wl_batch is not None and tokens_per_day is not None:
        cheapest = min((q.per_hour for q in quotes), default=None)
        wl = workload_cost(tokens_per_day, served, count, cheapest, currency, api, workload.peak_factor)
    break_even = (
        {
            f"{q.provider}/{q.instance}": break_even_tokens_per_day(q.per_hour, api.per_million_output_tokens)
            for q in quotes
        }
        if api is not None
        else {}
    )
    return Option(
        gpu=gpu,
        count=count,
        fits=mem.fits,
        memory=mem,
        decode=step,
        prefill=pre,
        served_tokens_per_s=served,
        export=classify(gpu, catalog.export_rules),
        quotes=quotes,
        notes=tuple(notes),
        workload_batch=wl_batch,
        workload=wl,
        break_even=break_even,
    )


def _rank_key(o: Option) -> tuple[Any, ...]:
    if o.workload is not None and o.workload.per_day is not None:
        return (0, o.workload.per_day)
    best = o.best_quote
    if best is not None:
        return (1, best.per_million_output_tokens)
    return (2, -o.served_tokens_per_s / o.count)


def rank(
    spec: ModelSpec,
    precision: Precision,
    workload: Workload,
    catalog: Catalog,
    currency: str = "USD",
    api: ApiComparison | None = None,
    gpu_ids: tuple[str, ...] | None = None,
    eff: Efficiency = DEFAULT_EFFICIENCY,
    today: date | None = None,
) -> tuple[list[Option], list[Gpu]]:
    """Every self-hostable GPU at its smallest fitting TP size, ranked cheapest first (by cost per
    day with a workload, else by cost per million output tokens; unpriced cards after, by served
    tokens/s per card). Also returns the GPUs that cannot hold the workload on 8 cards."""
    fitted: list[Option] = []
    unfit: list[Gpu] = []
    gpus = [catalog.gpu(g) for g in gpu_ids] if gpu_ids else [g for g in catalog.gpus if not g.api_only]
    for gpu in gpus:
        m = smallest_fit(
            spec.arch,
            precision,
            gpu,
            workload.context,
            workload.concurrency,
            workload.kv_bytes_per_value,
            TP_SIZES,
        )
        if m is None:
            unfit.append(gpu)
            continue
        fitted.append(evaluate(spec, precision, gpu, m.tp, workload, catalog, currency, api, eff, today))
    fitted.sort(key=_rank_key)
    return fitted, unfit


def model_summary(spec: ModelSpec, precision: Precision, workload: Workload) -> dict[str, Any]:
    p = count_params(spec.arch)
    return {
        "name": spec.name,
        "source": spec.source,
        "precision": precision.value,
        "params_b": round(p.total / 1e9, 3),
        "active_params_b": round(p.active / 1e9, 3),
        "params": p.total,
        "params_published": spec.params_published,
        "weights_gb": round(weight_bytes(spec.arch, precision) / 1e9, 2),
        "kv_bytes_per_token": kv_bytes_per_token(spec.arch, workload.kv_bytes_per_value),
        "layers": spec.arch.layers,
        "heads": spec.arch.heads,
        "kv_heads": spec.arch.kv_heads,
        "head_dim": spec.arch.head_dim,
        "moe": spec.arch.is_moe,
        "mla": spec.arch.is_mla,
    }


def _r(x: float | None, nd: int = 2) -> float | None:
    return None if x is None or math.isinf(x) else round(x, nd)


def option_dict(o: Option) -> dict[str, Any]:
    """The JSON shape scripts rely on (see docs/planner.md)."""
    mem = o.memory
    d: dict[str, Any] = {
        "gpu": o.gpu.id,
        "count": o.count,
        "fits": o.fits,
        "memory_gb": _r(mem.required_bytes / 1e9),
        "memory_capacity_gb": _r(mem.capacity_bytes / 1e9),
        "memory_total_gb": _r(mem.required_bytes * o.count / 1e9),
        "decode_tokens_per_s": _r(o.decode.tokens_per_s_per_stream, 1),
        "aggregate_tokens_per_s": _r(o.decode.aggregate_tokens_per_s, 1),
        "served_output_tokens_per_s": _r(o.served_tokens_per_s, 1),
        "decode_bound": o.decode.bound,
        "ttft_ms": _r(o.prefill.ttft_s * 1e3, 1),
        "max_concurrency": mem.max_concurrency,
        "export_control": o.export.as_dict(),
        "prices": [
            {
                "provider": q.provider,
                "region": q.region,
                "instance": q.instance,
                "billing": q.billing,
                "currency": q.currency,
                "per_hour": _r(q.per_hour, 4),
                "per_million_output_tokens": _r(q.per_million_output_tokens, 4),
                "instances": q.instances,
                "vcpu": q.vcpu,
                "memory_gib": q.memory_gib,
                "source": q.source,
                "date": q.date,
                "age_days": q.age_days,
                "stale": q.stale,
                **(
                    {"break_even_tokens_per_day": _r(o.break_even[f"{q.provider}/{q.instance}"], 0)}
                    if o.break_even
                    else {}
                ),
            }
            for q in o.quotes
        ],
        "purchase_cny": _r(o.gpu.price_cny.value * o.count, 0) if o.gpu.price_cny else None,
        "notes": list(o.notes),
    }
    if o.workload is not None:
        w = o.workload
        d["workload"] = {
            "batch": o.workload_batch,
            "tokens_per_day": w.tokens_per_day,
            "required_tokens_per_s": _r(w.required_tokens_per_s, 2),
            "replicas": w.replicas,
            "gpus": w.gpus,
            "per_day": _r(w.per_day),
            "api_per_day": _r(w.api_per_day),
            "currency": w.currency,
        }
    return d
