"""Money: cloud cost per hour and per million output tokens, the API comparison, and workloads.

    per_hour            = count × instance_price / gpus_per_instance     (the setup's share)
    per_M_output        = per_hour / (3600 × served_output_tokens_per_s) × 1e6
    API per_M_output    = output_price + input_price × prompt_tokens / output_tokens
    break-even tokens/day = per_hour × 24 / API per_M_output × 1e6
    replicas for a workload = ceil(tokens_per_day × peak_factor / 86400 / served_output_tokens_per_s)

A setup smaller than its instance (one A100 of an 8-GPU p4d) is charged its share, which
assumes the rest of the instance runs replicas; ``instances`` says how many you must rent.
The per-M-output figure includes the GPU time spent on each request's prompt, so it can be
compared with an API's input-plus-output price for the same request shape.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date

from sluicegate.planner.catalog import ApiPrice, PriceRow

CURRENCIES = ("CNY", "USD")
SECONDS_PER_DAY = 86_400


def convert(amount: float, from_currency: str, to_currency: str, cny_per_usd: float) -> float:
    """Convert between CNY and USD at ``cny_per_usd``."""
    src, dst = from_currency.upper(), to_currency.upper()
    if src not in CURRENCIES or dst not in CURRENCIES:
        raise ValueError(f"currency must be one of {CURRENCIES}")
    if src == dst:
        return amount
    return amount * cny_per_usd if src == "USD" else amount / cny_per_usd


def per_million(per_hour: float, tokens_per_s: float) -> float | None:
    """Cost of a million tokens at ``tokens_per_s`` sustained; None when nothing is produced."""
    if tokens_per_s <= 0:
        return None
    return per_hour / (3600.0 * tokens_per_s) * 1e6


@dataclass(frozen=True)
class Quote:
    """One price row applied to one setup, in the requested currency."""

    provider: str
    region: str
    instance: str
    billing: str
    currency: str
    per_hour: float
    per_million_output_tokens: float | None
    instances: int
    source: str
    date: str
    note: str | None = None
    vcpu: float | None = None
    memory_gib: float | None = None
    age_days: int | None = None

    @property
    def stale(self) -> bool:
        """Older than a year: cloud GPU prices move that fast (AWS cut P5 by ~45% in 2025-06)."""
        return self.age_days is not None and self.age_days > STALE_AFTER_DAYS


STALE_AFTER_DAYS = 365


def price_age_days(price_date: str, today: date) -> int:
    """Days since a ``YYYY-MM`` or ``YYYY-MM-DD`` date (a bare month counts from its first day)."""
    parts = [int(x) for x in price_date.split("-")]
    return (today - date(parts[0], parts[1], parts[2] if len(parts) > 2 else 1)).days


def quote(
    row: PriceRow,
    count: int,
    served_tokens_per_s: float,
    currency: str,
    cny_per_usd: float,
    today: date | None = None,
) -> Quote:
    """Price ``count`` GPUs from ``row`` at the setup's served output rate; ``today`` dates it."""
    per_hour = convert(row.per_gpu_hour * count, row.currency, currency, cny_per_usd)
    return Quote(
        provider=row.provider,
        region=row.region,
        instance=row.instance,
        billing=row.billing,
        currency=currency.upper(),
        per_hour=per_hour,
        per_million_output_tokens=per_million(per_hour, served_tokens_per_s),
        instances=math.ceil(count / row.gpus),
        source=row.source,
        date=row.date,
        note=row.note,
        vcpu=row.vcpu,
        memory_gib=row.memory_gib,
        age_days=price_age_days(row.date, today) if today is not None else None,
    )


@dataclass(frozen=True)
class ApiComparison:
    """An API's effective price per million output tokens for this request shape, and where
    self-hosting on a given setup starts to win."""

    name: str
    currency: str
    per_million_output_tokens: float  # output price plus the prompt's input price
    tokens_per_s: float | None
    source: str
    date: str


def api_per_million_output(
    api: ApiPrice, prompt_tokens: int, output_tokens: int, currency: str, cny_per_usd: float
) -> ApiComparison:
    """The API's cost of a million output tokens, counting the prompts that produce them."""
    ratio = prompt_tokens / max(output_tokens, 1)
    native = api.output_per_m + api.input_per_m * ratio
    return ApiComparison(
        name=api.name,
        currency=currency.upper(),
        per_million_output_tokens=convert(native, api.currency, currency, cny_per_usd),
        tokens_per_s=api.tokens_per_s,
        source=api.source,
        date=api.date,
    )


def flat_api_price(per_million_output: float, currency: str) -> ApiComparison:
    """A user-given API price per million output tokens (prompt cost assumed included)."""
    return ApiComparison(
        name=f"{per_million_output:g} {currency.upper()}/M",
        currency=currency.upper(),
        per_million_output_tokens=per_million_output,
        tokens_per_s=None,
        source="user (--api-price)",
        date="",
    )


def break_even_tokens_per_day(per_hour: float, api_per_million: float) -> float:
    """Output tokens a day above which renting the setup all day beats paying the API."""
    if api_per_million <= 0:
        return math.inf
    return per_hour * 24 / api_per_million * 1e6


@dataclass(frozen=True)
class WorkloadCost:
    """How many copies of a setup a daily volume needs, and what that costs a day."""

    tokens_per_day: float
    required_tokens_per_s: float
    replicas: int
    gpus: int
    per_day: float | None
    api_per_day: float | None
    currency: str


def workload_cost(
    tokens_per_day: float,
    served_tokens_per_s: float,
    count: int,
    per_hour: float | None,
    currency: str,
    api: ApiComparison | None = None,
    peak_factor: float = 1.0,
    min_replicas: int = 1,
) -> WorkloadCost:
    """Size a workload of ``tokens_per_day`` output tokens on replicas of one setup.

    ``peak_factor`` scales the daily average to the peak the fleet must carry (2-3 is typical
    for interactive traffic; 1 for a batch queue that may run all day).
    """
    required = tokens_per_day * peak_factor / SECONDS_PER_DAY
    replicas = max(min_replicas, math.ceil(required / served_tokens_per_s)) if served_tokens_per_s > 0 else 0
    api_day = api.per_million_output_tokens * tokens_per_day / 1e6 if api is not None else None
    return WorkloadCost(
        tokens_per_day=tokens_per_day,
        required_tokens_per_s=required,
        replicas=replicas,
        gpus=replicas * count,
        per_day=per_hour * 24 * replicas if per_hour is not None else None,
        api_per_day=api_day,
        currency=currency.upper(),
    )
