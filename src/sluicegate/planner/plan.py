"""Composition: a model, a precision and a workload evaluated on GPU setups, ranked.

Pure functions over the catalog; the CLI (``sluicegate plan``) only parses options and prints.
The workload is a plain value so the same estimator can later be fed from the gateway's own
usage (tokens per day, prompt and output lengths) instead of flags.
"""

from __future__ import annotations

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
from sluicegate.planner.engines import DEFAULT_ENGINE, Engine, get_engine
from sluicegate.planner.export_control import ExportStatus, classify
from sluicegate.planner.layout import DEFAULT_NETWORK_GBPS, Layout, candidates
from sluicegate.planner.memory import MemoryFit, fit
from sluicegate.planner.models import Architecture, load_hf_config
from sluicegate.planner.precision import GGUF, Precision, peak_tflops
from sluicegate.planner.queueing import Load, replicas_for
from sluicegate.planner.speed import Decode, Prefill, decode, prefill

COUNTS = (1, 2, 4, 8, 16, 32, 64)  # card counts ranked when none is given


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
    target_ttft_ms: float | None = None
    requests_per_s: float | None = None

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
    decode: Decode
    prefill: Prefill
    served_tokens_per_s: float
    export: ExportStatus
    quotes: tuple[Quote, ...]
    layout: Layout
    engine: Engine
    notes: tuple[str, ...] = ()
    workload_batch: int | None = None
    workload: WorkloadCost | None = None
    break_even: dict[str, float] = field(default_factory=dict)
    replicas_at_load: int | None = None
    load: Load | None = None
    meets_targets: bool = True

    @property
    def best_quote(self) -> Quote | None:
        priced = [q for q in self.quotes if q.per_million_output_tokens is not None]
        return min(priced, key=lambda q: q.per_million_output_tokens or 0.0) if priced else None


def _mixed(
    spec: ModelSpec, precision: Precision, gpu: Gpu, lay: Layout, engine: Engine, batch: int, w: Workload
) -> Decode:
    """Decode of ``batch`` streams with the arriving prompts prefilled inside the same steps."""
    return decode(
        spec.arch,
        precision,
        gpu,
        lay,
        engine,
        batch,
        w.decode_context,
        w.kv_bytes_per_value,
        w.prompt_tokens,
        w.output_tokens,
    )


def _workload_batch(
    spec: ModelSpec, precision: Precision, gpu: Gpu, lay: Layout, engine: Engine, mem: MemoryFit, w: Workload
) -> int:
    """Largest batch that fits in memory and keeps every stream at the minimum speed under load."""
    best, limit = 1, max(1, min(mem.max_concurrency, engine.max_batch))
    lo, hi = 1, limit
    while lo <= hi:
        mid = (lo + hi) // 2
        if (
            _mixed(spec, precision, gpu, lay, engine, mid, w).tokens_per_s_per_stream
            >= w.min_stream_tokens_per_s
        ):
            best, lo = mid, mid + 1
        else:
            hi = mid - 1
    return best


def best_layout(
    spec: ModelSpec,
    precision: Precision,
    gpu: Gpu,
    count: int,
    w: Workload,
    engine: Engine,
    network_gbps: float = DEFAULT_NETWORK_GBPS,
) -> tuple[Layout, MemoryFit] | None:
    """The layout of ``count`` cards that fits the workload and serves the most tokens/s."""
    best: tuple[float, Layout, MemoryFit] | None = None
    for lay in candidates(spec.arch, gpu, count, engine.expert_parallel, network_gbps):
        mem = fit(spec.arch, precision, gpu, lay, w.context, w.concurrency, w.kv_bytes_per_value)
        if not mem.fits:
            continue
        speed = _mixed(spec, precision, gpu, lay, engine, w.concurrency, w).aggregate_tokens_per_s
        if best is None or speed > best[0]:
            best = (speed, lay, mem)
    return (best[1], best[2]) if best else None


def evaluate(
    spec: ModelSpec,
    precision: Precision,
    gpu: Gpu,
    count: int,
    workload: Workload,
    catalog: Catalog,
    currency: str = "USD",
    api: ApiComparison | None = None,
    engine: Engine | None = None,
    today: date | None = None,
    layout: Layout | None = None,
    network_gbps: float = DEFAULT_NETWORK_GBPS,
) -> Option:
    """Evaluate ``count`` cards of ``gpu`` for the workload on ``engine`` (vLLM by default), in the
    given layout or the fastest that fits; ``today`` (the caller's clock) dates each price."""
    eng = engine or get_engine(DEFAULT_ENGINE)
    notes: list[str] = []
    chosen = None if layout else best_layout(spec, precision, gpu, count, workload, eng, network_gbps)
    if layout is not None:
        lay = layout
    elif chosen is not None:
        lay = chosen[0]
    else:
        lay = next(
            iter(candidates(spec.arch, gpu, count, eng.expert_parallel, network_gbps)), Layout(tp=1, pp=count)
        )
    if spec.arch.heads % lay.tp:
        notes.append(f"{spec.arch.heads} attention heads do not split evenly over TP{lay.tp}")
    if lay.tp > 1 and (gpu.nvlink_gbs is None or lay.tp > gpu.nvlink_domain):
        notes.append("tensor parallel over PCIe: prefer pipeline parallel or replicas where the model fits")
    if lay.nodes > 1:
        notes.append(f"{lay.nodes} nodes, {lay.network_gbps:g} Gb/s per GPU between them")
    if precision in GGUF and eng.name != "llamacpp":
        notes.append(f"{precision.value} is a GGUF type: served by llama.cpp, not {eng.name}")
    _, precision_note = peak_tflops(gpu, precision)
    if precision_note:
        notes.append(precision_note)
    mem = fit(
        spec.arch, precision, gpu, lay, workload.context, workload.concurrency, workload.kv_bytes_per_value
    )
    if not mem.fits:
        notes.append(
            "weights do not fit"
            if mem.kv_budget_bytes <= 0
            else f"KV cache for {workload.concurrency} x {workload.context} tokens does not fit "
            f"(max concurrency {mem.max_concurrency})"
        )
    step = _mixed(spec, precision, gpu, lay, eng, workload.concurrency, workload)
    pre = prefill(spec.arch, precision, gpu, lay, eng, workload.prompt_tokens, workload.kv_bytes_per_value)
    served = step.aggregate_tokens_per_s
    wl_batch: int | None = None
    wl: WorkloadCost | None = None
    tokens_per_day = workload.tokens_per_day
    sizing = tokens_per_day is not None or workload.requests_per_s is not None
    if sizing and mem.fits:
        wl_batch = _workload_batch(spec, precision, gpu, lay, eng, mem, workload)
        served = _mixed(spec, precision, gpu, lay, eng, wl_batch, workload).aggregate_tokens_per_s
    replicas: int | None = None
    load: Load | None = None
    meets = mem.fits
    if workload.requests_per_s is not None and wl_batch is not None:
        d = _mixed(spec, precision, gpu, lay, eng, wl_batch, workload)
        service = pre.ttft_s + workload.output_tokens * d.seconds
        max_ttft = workload.target_ttft_ms / 1e3 if workload.target_ttft_ms else None
        sized = replicas_for(workload.requests_per_s, service, wl_batch, pre.ttft_s, max_ttft)
        if sized is None:
            meets = False
            notes.append("cannot meet the TTFT target at this load on any number of replicas")
        else:
            replicas, load = sized
    if workload.target_ttft_ms is not None and pre.ttft_s * 1e3 > workload.target_ttft_ms:
        meets = False
    if wl_batch is not None:
        per_stream = _mixed(spec, precision, gpu, lay, eng, wl_batch, workload).tokens_per_s_per_stream
        if per_stream < workload.min_stream_tokens_per_s:
            meets = False
    fx = catalog.cny_per_usd.value
    quotes = tuple(
        sorted(
            (quote(r, count, served, currency, fx, today) for r in catalog.prices_for(gpu.id)),
            key=lambda q: q.per_hour,
        )
    )
    if wl_batch is not None:
        cheapest = min((q.per_hour for q in quotes), default=None)
        daily = tokens_per_day if tokens_per_day is not None else 0.0
        wl = workload_cost(daily, served, count, cheapest, currency, api, workload.peak_factor)
        if replicas is not None and replicas > wl.replicas:
            wl = workload_cost(daily, served, count, cheapest, currency, api, workload.peak_factor, replicas)
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
        layout=lay,
        engine=eng,
        notes=tuple(notes),
        workload_batch=wl_batch,
        workload=wl,
        break_even=break_even,
        replicas_at_load=replicas,
        load=load,
        meets_targets=meets,
    )


def _rank_key(o: Option) -> tuple[Any, ...]:
    if not o.meets_targets:
        return (3, o.count)
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
    engine: Engine | None = None,
    today: date | None = None,
    network_gbps: float = DEFAULT_NETWORK_GBPS,
    counts: tuple[int, ...] = COUNTS,
) -> tuple[list[Option], list[Gpu]]:
    """Every self-hostable GPU at its smallest card count (1-64) that fits and meets the targets,
    ranked cheapest first (by cost per day with a workload, else by cost per million output
    tokens; unpriced cards after, by served tokens/s per card). Also returns the GPUs that
    cannot hold the workload on 64 cards."""
    eng = engine or get_engine(DEFAULT_ENGINE)
    fitted: list[Option] = []
    unfit: list[Gpu] = []
    gpus = [catalog.gpu(g) for g in gpu_ids] if gpu_ids else [g for g in catalog.gpus if not g.api_only]
    for gpu in gpus:
        chosen: Option | None = None
        for count in counts:
            if best_layout(spec, precision, gpu, count, workload, eng, network_gbps) is None:
                continue
            o = evaluate(
                spec, precision, gpu, count, workload, catalog, currency, api, eng, today, None, network_gbps
            )
            chosen = o
            if o.meets_targets:
                break
        if chosen is None:
            unfit.append(gpu)
        else:
            fitted.append(chosen)
    fitted.sort(key=_rank_key)
    return fitted, unfit
