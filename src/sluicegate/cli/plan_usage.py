"""`sluicegate plan --from-usage`: should we self-host? The I/O shell around planner.selfhost.

Reads the gateway's own request log and daily aggregates (store.traffic), maps each API model to
an open model, and prints the per-model and total answer as a table (English or Chinese) or JSON.
"""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import click

from sluicegate.cli._common import format_table, run
from sluicegate.cli.lang import t
from sluicegate.planner.catalog import CatalogError
from sluicegate.planner.engines import get_engine
from sluicegate.planner.models import ModelConfigError
from sluicegate.planner.precision import parse_precision


def _money(x: float | None, currency: str) -> str:
    if x is None:
        return "-"
    sym = "¥" if currency == "CNY" else "$"
    return f"{sym}{x:,.2f}" if x >= 0.995 else f"{sym}{x:.3f}"


def from_usage(
    url: str,
    since: date | None,
    maps: tuple[str, ...],
    currency: str,
    engine: str,
    precision: str | None,
    cny_per_usd: float | None,
    price_file: str | None,
    as_json: bool,
) -> None:
    """Read the request log and daily aggregates, then print the self-host answer."""
    from sluicegate.cli.plan import user_catalog
    from sluicegate.planner.selfhost import assess
    from sluicegate.store import Store
    from sluicegate.store.traffic import traffic_by_model

    overrides: dict[str, str] = {}
    for m in maps:
        api_model, sep, open_model = m.partition("=")
        if not sep or not api_model or not open_model:
            raise click.BadParameter(f"expected API_MODEL=OPEN_MODEL, got {m!r}", param_hint="--map")
        overrides[api_model] = open_model

    async def read() -> list[Any]:
        store = await Store.open(url)
        try:
            return list((await traffic_by_model(store.engine, since)).values())
        finally:
            await store.close()

    traffic = run(read(), url)
    today = date.today()
    try:
        catalog = user_catalog(cny_per_usd, price_file)
        for open_model in overrides.values():
            catalog.model(open_model)
        answer = assess(
            traffic,
            catalog,
            currency,
            get_engine(engine),
            overrides,
            parse_precision(precision or "fp8"),
            since,
            None,
            today,
        )
    except (CatalogError, ModelConfigError, KeyError, ValueError) as exc:
        raise click.ClickException(exc.args[0] if exc.args else str(exc)) from None
    if as_json:
        click.echo(json.dumps(answer, ensure_ascii=False, indent=2))
        return
    _print_usage(answer)


def _print_usage(a: dict[str, Any]) -> None:
    cur = a["currency"]
    click.echo(
        f"{t('Traffic', '流量')} {a['since']} .. {a['until']}  "
        f"{t('engine', '引擎')} {a['engine']}, {a['precision']}"
    )
    if not a["models"]:
        click.echo(t("No requests logged in that window.", "该时间段内没有请求日志。"))
        return
    head = [
        t("API model", "API 模型"),
        t("open model", "开源模型"),
        t("prompt tok/day", "输入/天"),
        t("output tok/day", "输出/天"),
        t("peak req/s", "峰值请求/秒"),
        t("API /month", "API 每月"),
        t("cheapest self-host", "最便宜自建"),
        t("/month", "每月"),
        t("break-even tok/day", "盈亏平衡 token/天"),
        t("verdict", "结论"),
    ]
    rows = []
    for m in a["models"]:
        best = next((r for r in m["self_host"] if r["meets_peak"]), None)
        be = m["break_even_tokens_per_day"]
        rows.append(
            [
                m["model"],
                m["open_model"],
                f"{m['prompt_tokens_per_day']:,.0f}",
                f"{m['completion_tokens_per_day']:,.0f}",
                f"{m['peak_requests_per_s']:.2f}",
                _money(m["api_cost_per_month"], cur),
                f"{best['gpu']} x{best['count']} {best['provider']}" if best else "-",
                _money(best["cost_per_month"] if best else None, cur),
                f"{be:,.0f}" if be is not None else "-",
                t("self-host", "自建更省") if m["self_host_wins"] else t("keep the API", "继续用 API"),
            ]
        )
    click.echo(format_table(head, rows, right=(2, 3, 4, 5, 7, 8), rule=True))
    tot = a["total"]
    click.echo(
        f"\n{t('Total', '合计')}: API {_money(tot['api_cost_per_month'], cur)}{t('/month', '/月')}, "
        f"{t('cheapest self-host', '最便宜自建')} {_money(tot['best_self_host_cost_per_month'], cur)}"
        f"{t('/month', '/月')}"
    )
    click.echo(
        t(
            "API cost is what the gateway metered; self-host is rented GPUs for 30 days sized to the "
            "observed peak (busiest minute, with queueing). Break-even: daily tokens above which the "
            "cheapest setup beats the API.",
            "API 费用为网关计量值；自建按 30 天租用、按观测峰值（最忙一分钟，含排队）配置。"
            "盈亏平衡：每天 token 超过该值时最便宜的自建方案比 API 便宜。",
        )
    )
