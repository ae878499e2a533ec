"""Should we self-host? The gateway's own traffic, priced on the API and on rented GPUs.

For each API model in the request log (tokens and cost from the daily aggregates, peaks from
the log itself) the planner maps it to an open model of its class, sizes the smallest setup on
each GPU that serves the observed peak (request rate with queueing, concurrency, and the mean
request shape), and prices it on every cloud row for a 30-day month::

    days                    = until − since + 1   (the window: --since or the first logged day,
                                                   to the last logged day; the same for every model)
    tokens_per_day          = tokens / days
    api_cost_per_month      = recorded cost / days × 30       (what the gateway metered)
    self_host cost_per_month = per_hour(setup share) × replicas × 24 × 30
    break_even_tokens_per_day = cheapest self-host month / 30 / (API cost per token)
                              (the volume at which one month of the cheapest setup that serves
                               today's peak costs what the API would; None without API cost)

Rented GPUs cost the same whether busy or idle, so self-hosting wins above the break-even
volume and loses below it, however cheap a token is at full load.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, Protocol

from sluicegate.planner.catalog import Catalog
from sluicegate.planner.cost import convert
from sluicegate.planner.engines import Engine
from sluicegate.planner.plan import Workload, rank, resolve_model
from sluicegate.planner.precision import Precision

DAYS_PER_MONTH = 30
HOURS_PER_MONTH = 24 * DAYS_PER_MONTH

#: API model name pattern -> open model of the same class (first match wins; --map overrides)
DEFAULT_MAP: tuple[tuple[str, str], ...] = (
    (r"deepseek|\bo1\b|\bo3\b|opus|gpt-5(?!-mini|-nano)|r1", "deepseek-v3"),
    (r"mini|nano|flash|haiku|lite|8b|7b|small|turbo", "llama-3.1-8b"),
    (r"qwen.*(235|max)", "qwen3-235b-a22b"),
    (r"qwen.*(30b|a3b|plus)", "qwen3-30b-a3b"),
    (r"mixtral", "mixtral-8x7b"),
    (r"gpt-4|sonnet|gemini|claude|llama|qwen|mistral|glm|command", "llama-3.1-70b"),
)
FALLBACK_MODEL = "llama-3.1-70b"


class Traffic(Protocol):
    model: str
    requests: int
    prompt_tokens: int
    completion_tokens: int
    cost: dict[str, float]
    first_day: date | None
    last_day: date | None
    peak_requests_per_s: float
    peak_concurrency: int


def open_model_for(api_model: str, overrides: dict[str, str]) -> str:
    """The open model standing in for ``api_model``: an override, else its class default."""
    if api_model in overrides:
        return overrides[api_model]
    name = api_model.lower()
    for pattern, model in DEFAULT_MAP:
        if re.search(pattern, name):
            return model
    return FALLBACK_MODEL


@dataclass(frozen=True)
class SelfHostRow:
    gpu: str
    count: int
    layout: str
    replicas: int
    provider: str
    instance: str
    cost_per_month: float
    meets_peak: bool


def _days(t: Traffic, since: date | None, until: date | None) -> int:
    start = since or t.first_day
    end = until or t.last_day
    if start is None or end is None:
        return 1
    return max(1, (end - start).days + 1)


def assess_model(
    t: Traffic,
    open_model: str,
    catalog: Catalog,
    currency: str,
    engine: Engine,
    precision: Precision = Precision.FP8,
    since: date | None = None,
    until: date | None = None,
    today: date | None = None,
) -> dict[str, Any]:
    """One model's answer in the JSON shape of ``plan --from-usage --json``."""
    fx = catalog.cny_per_usd.value
    days = _days(t, since, until)
    api_month = sum(convert(v, c, currency, fx) for c, v in t.cost.items()) / days * DAYS_PER_MONTH
    requests = max(t.requests, 1)
    prompt = max(1, round(t.prompt_tokens / requests))
    output = max(1, round(t.completion_tokens / requests))
    workload = Workload(
        context=max(prompt + output, 256),
        prompt_tokens=prompt,
        output_tokens=output,
        concurrency=max(1, t.peak_concurrency),
        requests_per_s=t.peak_requests_per_s or None,
        min_stream_tokens_per_s=10.0,
    )
    spec = resolve_model(open_model, catalog)
    options, _ = rank(spec, precision, workload, catalog, currency, engine=engine, today=today)
    rows: list[SelfHostRow] = []
    for o in options:
        replicas = o.replicas_at_load or 1
        for q in o.quotes:
            rows.append(
                SelfHostRow(
                    gpu=o.gpu.id,
                    count=o.count * replicas,
                    layout=o.layout.describe(),
                    replicas=replicas,
                    provider=q.provider,
                    instance=q.instance,
                    cost_per_month=q.per_hour * replicas * HOURS_PER_MONTH,
                    meets_peak=o.meets_targets,
                )
            )
    rows.sort(key=lambda r: (not r.meets_peak, r.cost_per_month))
    unpriced = [
        {"gpu": o.gpu.id, "count": o.count * (o.replicas_at_load or 1), "provider": u.provider, "source": u.source,
         "meets_peak": o.meets_targets, "note": u.note}
        for o in options
        for u in catalog.unpriced_for(o.gpu.id)
    ]  # fmt: skip
    best = next((r.cost_per_month for r in rows if r.meets_peak), None)
    tokens_per_day = (t.prompt_tokens + t.completion_tokens) / days
    api_per_token = api_month / DAYS_PER_MONTH / tokens_per_day if tokens_per_day > 0 else 0.0
    break_even = best / DAYS_PER_MONTH / api_per_token if best is not None and api_per_token > 0 else None
    return {
        "model": t.model,
        "open_model": open_model,
        "days": days,
        "requests": t.requests,
        "prompt_tokens_per_day": round(t.prompt_tokens / days, 1),
        "completion_tokens_per_day": round(t.completion_tokens / days, 1),
        "peak_requests_per_s": round(t.peak_requests_per_s, 4),
        "peak_concurrency": t.peak_concurrency,
        "api_cost_per_month": round(api_month, 4),
        "self_host": [
            {
                "gpu": r.gpu,
                "count": r.count,
                "layout": r.layout,
                "replicas": r.replicas,
                "provider": r.provider,
                "instance": r.instance,
                "cost_per_month": round(r.cost_per_month, 2),
                "meets_peak": r.meets_peak,
            }
            for r in rows
        ],
        "unpriced": unpriced,
        "best_self_host_cost_per_month": None if best is None else round(best, 2),
        "self_host_wins": best is not None and best < api_month,
        "break_even_tokens_per_day": None if break_even is None else round(break_even),
    }


def assess(
    traffic: Sequence[Traffic],
    catalog: Catalog,
    currency: str,
    engine: Engine,
    overrides: dict[str, str] | None = None,
    precision: Precision = Precision.FP8,
    since: date | None = None,
    until: date | None = None,
    today: date | None = None,
) -> dict[str, Any]:
    """The whole answer: per model and in total (the sum of each model's cheapest setup)."""
    maps = overrides or {}
    firsts = [t.first_day for t in traffic if t.first_day]
    lasts = [t.last_day for t in traffic if t.last_day]
    # one window for every model: a model first seen yesterday still counts over the whole window
    since = since or (min(firsts) if firsts else None)
    until = until or (max(lasts) if lasts else None)
    models = [
        assess_model(
            t, open_model_for(t.model, maps), catalog, currency, engine, precision, since, until, today
        )
        for t in sorted(traffic, key=lambda x: x.model)
        if t.model
    ]
    best = [m["best_self_host_cost_per_month"] for m in models]
    return {
        "currency": currency.upper(),
        "since": (since or today or date.today()).isoformat(),
        "until": (until or today or date.today()).isoformat(),
        "engine": engine.name,
        "precision": precision.value,
        "models": models,
        "total": {
            "api_cost_per_month": round(sum(m["api_cost_per_month"] for m in models), 4),
            "best_self_host_cost_per_month": None
            if any(b is None for b in best)
            else round(sum(b for b in best if b is not None), 2),
        },
    }
