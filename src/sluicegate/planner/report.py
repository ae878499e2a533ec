"""The planner's JSON shapes: a model summary and one evaluated option (docs/planner.md lists them).

Kept apart from the estimator (plan.py) so what scripts rely on changes only on purpose.
"""

from __future__ import annotations

import math
from typing import Any

from sluicegate.planner.memory import weight_bytes
from sluicegate.planner.models import count_params, kv_bytes_per_token
from sluicegate.planner.plan import ModelSpec, Option, Workload
from sluicegate.planner.precision import QUALITY, Precision


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
        "quality": QUALITY[precision][0],
    }


def _r(x: float | None, nd: int = 2) -> float | None:
    return None if x is None or math.isinf(x) else round(x, nd)


def _range(x: float, spread: float) -> dict[str, float | None]:
    """The low/high band: the engine's spread against published measurements, either side."""
    return {"low": _r(x * (1 - spread), 1), "high": _r(x * (1 + spread), 1)}


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
        "engine": o.engine.name,
        "layout": {
            "tp": o.layout.tp,
            "pp": o.layout.pp,
            "dp": o.layout.dp,
            "ep": o.layout.ep,
            "nodes": o.layout.nodes,
        },
        "range": {
            "decode_tokens_per_s": _range(o.decode.tokens_per_s_per_stream, o.engine.spread),
            "served_output_tokens_per_s": _range(o.served_tokens_per_s, o.engine.spread),
            "ttft_ms": _range(o.prefill.ttft_s * 1e3, o.engine.spread),
        },
        "meets_targets": o.meets_targets,
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
            "replicas_at_load": o.replicas_at_load,
            "utilization": _r(o.load.utilization, 3) if o.load else None,
            "mean_queue_ms": _r(o.load.mean_wait_s * 1e3, 1) if o.load else None,
            "api_per_day": _r(w.api_per_day),
            "currency": w.currency,
        }
    return d
