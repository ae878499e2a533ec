"""`sluicegate plan`: size GPUs and clouds for self-hosting a model, before buying or renting.

The I/O shell around ``sluicegate.planner``: parse options, load the catalog (plus a user
price file), call the estimator, print a ranked table or JSON. Headings switch to Chinese when
``LANG`` starts with ``zh``; the JSON never changes with the locale.
"""

from __future__ import annotations

import json
import math
import re
import sys
from datetime import date, datetime
from typing import Any

import click

from sluicegate.cli import plan_catalog
from sluicegate.cli._common import database_options, format_table, resolve_database
from sluicegate.cli.lang import t
from sluicegate.planner.catalog import Catalog, CatalogError, load_catalog, load_price_file
from sluicegate.planner.cost import ApiComparison, api_per_million_output, flat_api_price
from sluicegate.planner.engines import get_engine
from sluicegate.planner.export_control import DISCLAIMER
from sluicegate.planner.layout import Layout
from sluicegate.planner.models import ModelConfigError
from sluicegate.planner.plan import Option, Workload, evaluate, rank, resolve_model
from sluicegate.planner.precision import QUALITY, Precision, parse_precision
from sluicegate.planner.report import model_summary, option_dict

_SUFFIX = {"k": 1e3, "m": 1e6, "b": 1e9, "g": 1e9}


def parse_amount(text: str) -> float:
    """``50000000``, ``5e7``, ``50M``, ``1.5B`` -> a number."""
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:e[0-9]+)?)\s*([kmbg]?)\s*", text.lower())
    if not m:
        raise click.BadParameter(f"not a number: {text!r} (examples: 5e7, 50M, 1.5B)")
    return float(m.group(1)) * _SUFFIX.get(m.group(2), 1.0)


def user_catalog(cny_per_usd: float | None, price_file: str | None) -> Catalog:
    """The bundled catalog with the user's exchange rate and price rows applied."""
    catalog = load_catalog()
    if cny_per_usd:
        catalog = catalog.with_cny_per_usd(cny_per_usd)
    if price_file:
        catalog = catalog.with_price_rows(load_price_file(price_file, catalog))
    return catalog


def parse_api_price(text: str, currency: str, prompt: int, output: int, catalog: Catalog) -> ApiComparison:
    """A number (per million output tokens, optionally with a currency) or an API name."""
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*(usd|cny)?\s*", text.lower())
    fx = catalog.cny_per_usd.value
    if m:
        value, cur = float(m.group(1)), (m.group(2) or currency).upper()
        if cur != currency.upper():
            value = value * fx if cur == "USD" else value / fx
        return flat_api_price(value, currency)
    try:
        return api_per_million_output(catalog.api(text), prompt, output, currency, fx)
    except KeyError as exc:
        raise click.BadParameter(exc.args[0]) from None


def _money(x: float | None, currency: str) -> str:
    if x is None:
        return "-"
    sym = "¥" if currency == "CNY" else "$"
    return f"{sym}{x:,.2f}" if x >= 0.995 else f"{sym}{x:.3f}"


def _band(x: float, r: dict[str, float], nd: int) -> str:
    return f"{x:,.{nd}f} ({r['low']:,.{nd}f}-{r['high']:,.{nd}f})"


def _export_cell(o: Option) -> str:
    e = o.export
    return f"{'C' if e.oct2022_controlled else '-'}/{'C' if e.oct2023_controlled else '-'}"


def _table(rows: list[list[str]], right: set[int]) -> str:
    return format_table(rows[0], rows[1:], right=tuple(right), rule=True)


def _print_plan(
    summary: dict[str, Any],
    workload: Workload,
    options: list[Option],
    unfit: list[str],
    currency: str,
    api: ApiComparison | None,
) -> None:
    s = summary
    moe = f", {s['active_params_b']:.1f}B active" if s["moe"] else ""
    click.echo(
        f"{t('Model', '模型')}: {s['name']}  {s['params_b']:.2f}B params{moe}  "
        f"{s['precision']} weights {s['weights_gb']:.1f} GB  KV {s['kv_bytes_per_token'] / 1024:.0f} KiB/token "
        f"({s['layers']} layers, {s['kv_heads']} KV heads x {s['head_dim']})"
    )
    q = QUALITY[Precision(s["precision"])]
    engine = options[0].engine.name if options else "vllm"
    click.echo(f"{t('Quality', '质量')}: {s['precision']}: {t(q[0], q[1])}.  {t('Engine', '引擎')}: {engine}")
    click.echo(
        f"{t('Workload', '负载')}: context {workload.context}, prompt {workload.prompt_tokens}, "
        f"output {workload.output_tokens}, concurrency {workload.concurrency}"
        + (
            f", {workload.tokens_per_day:,.0f} output tokens/day x peak {workload.peak_factor:g}"
            if workload.tokens_per_day
            else ""
        )
    )
    head = [
        "#",
        "GPU",
        "x",
        t("layout", "并行"),
        t("GB/GPU", "显存/卡"),
        t("tok/s/stream (low-high)", "单流tok/s（低-高）"),
        t("served (low-high)", "含prefill（低-高）"),
        t("TTFT ms (low-high)", "首字ms（低-高）"),
        t("max conc", "最大并发"),
        "2022/2023",
        t("cheapest/h", "最低/小时"),
        t("per M out", "每百万输出"),
        t("where", "云"),
    ]
    if any(o.workload for o in options):
        head += [t("replicas", "副本"), t("per day", "每天")]
    rows = [head]
    for i, o in enumerate(options, 1):
        d = option_dict(o)
        best = o.best_quote
        row = [
            str(i),
            o.gpu.id,
            str(o.count),
            o.layout.describe(),
            f"{d['memory_gb']:.1f}/{d['memory_capacity_gb']:.0f}",
            _band(d["decode_tokens_per_s"], d["range"]["decode_tokens_per_s"], 1),
            _band(d["served_output_tokens_per_s"], d["range"]["served_output_tokens_per_s"], 0),
            _band(d["ttft_ms"], d["range"]["ttft_ms"], 0),
            str(d["max_concurrency"]),
            _export_cell(o),
            _money(best.per_hour if best else None, currency) + ("*" if best and best.stale else ""),
            _money(best.per_million_output_tokens if best else None, currency),
            t("DOES NOT FIT", "放不下")
            if not o.fits
            else t("MISSES TARGET", "未达目标")
            if not o.meets_targets
            else (best.provider if best else "-"),
        ]
        if len(head) > 13:
            w = o.workload
            row += [
                f"{w.replicas} (batch {o.workload_batch})" if w else "-",
                _money(w.per_day if w else None, currency),
            ]
        rows.append(row)
    click.echo("")
    click.echo(_table(rows, right={0, 2, 4, 5, 6, 7, 8, 10, 11, 13, 14}))
    if any(o.best_quote and o.best_quote.stale for o in options):
        click.echo(
            f"\n* {t('price older than a year: check it or pass --price-file', '价格已超过一年：请核实或用 --price-file 提供')}"
        )
    if unfit:
        click.echo(f"\n{t('Cannot fit on 64 cards', '64 卡也放不下')}: {', '.join(unfit)}")
    click.echo(
        f"\n{t('GB = 10^9 bytes; capacity is what the driver reports (an A100 80GB holds 85.9, an L40S 48GB 48.3). served = output tokens/s including each prompt prefill; prices are the setup share of each instance.', 'GB = 10^9 字节；容量按驱动报告（A100 80GB 为 85.9，L40S 48GB 为 48.3）。served = 含 prompt 预填充的输出吞吐；价格按该配置占实例的份额计。')}"
    )
    click.echo(
        f"2022/2023: C = {t('controlled for China under the Oct 2022 / Oct 2023 rule', '受 2022年10月 / 2023年10月 规则管制')}. {DISCLAIMER}"
    )
    sized = [o for o in options if o.workload is not None]
    w = sized[0].workload if sized else None
    if w is not None:
        o = sized[0]
        click.echo(
            f"\n{t('Workload on', '负载方案')} {o.gpu.id} x{o.count}: {w.replicas} "
            f"{t('replica(s)', '副本')} = {w.gpus} GPUs at batch {o.workload_batch} "
            f"({o.served_tokens_per_s:,.0f} {t('output tok/s each; needs', '输出 tok/s/副本；需要')} "
            f"{w.required_tokens_per_s:,.0f}); {t('per day', '每天')} {_money(w.per_day, currency)}"
            + (f", API {_money(w.api_per_day, currency)}" if w.api_per_day is not None else "")
        )
    if api is not None:
        click.echo(
            f"\nAPI {api.name}: {_money(api.per_million_output_tokens, currency)} "
            f"{t('per M output tokens incl. prompts', '每百万输出 token（含输入）')}"
            + (f", ~{api.tokens_per_s:.0f} tok/s/stream" if api.tokens_per_s else "")
        )
        for o in options:
            best = o.best_quote
            if best is None or best.per_million_output_tokens is None:
                continue
            be = o.break_even.get(f"{best.provider}/{best.instance}") or math.inf
            capacity = o.served_tokens_per_s * 86_400
            if be <= capacity:
                verdict = t(
                    f"cheaper than the API above {be / 1e6:,.1f}M output tokens/day "
                    f"(one setup serves up to {capacity / 1e6:,.1f}M/day)",
                    f"每天输出超过 {be / 1e6:,.1f}M token 时比 API 便宜（单套最多 {capacity / 1e6:,.1f}M/天）",
                )
            else:
                verdict = t(
                    f"dearer than the API even fully busy: break-even {be / 1e6:,.1f}M/day, "
                    f"capacity {capacity / 1e6:,.1f}M/day",
                    f"满载也比 API 贵：盈亏平衡 {be / 1e6:,.1f}M/天，容量 {capacity / 1e6:,.1f}M/天",
                )
            click.echo(f"  {o.gpu.id} x{o.count} on {best.provider}: {verdict}")


def _print_detail(
    summary: dict[str, Any], workload: Workload, o: Option, currency: str, api: ApiComparison | None
) -> None:
    _print_plan(summary, workload, [o], [], currency, api)
    d = option_dict(o)
    click.echo(
        f"\n{o.gpu.name} x{o.count}: decode is {d['decode_bound']}-bound; "
        f"{t('KV room for', 'KV 可容纳')} {o.memory.max_tokens:,} tokens"
    )
    for q in d["prices"]:
        click.echo(
            f"  {q['provider']:<11} {q['instance']:<30} {_money(q['per_hour'], currency):>10}/h  "
            f"{_money(q['per_million_output_tokens'], currency):>9}/M  ({q['billing']}, {q['date']}"
            f"{', STALE' if q['stale'] else ''})"
        )
    e = d["export_control"]
    click.echo(
        f"  export: TPP {e['tpp']:.0f}, PD {e['performance_density']}, 2023 class {e['oct2023_class'] or 'none'}"
        f"{' (Note 2 exempt)' if e['oct2023_note2_exempt'] else ''}, 2026: {e['jan2026']}"
    )
    if e["note"]:
        click.echo(f"  {e['note']}")
    for n in d["notes"]:
        click.echo(f"  note: {n}")


@click.group(invoke_without_command=True, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--model", "model", help="Catalog model name (see `plan models`), HF id, or a config.json path."
)
@click.option("--precision", type=click.Choice([p.value for p in Precision]), help="Weight precision.")
@click.option(
    "--context",
    type=click.IntRange(1),
    default=4096,
    show_default=True,
    help="KV-cache tokens reserved per stream (prompt + output).",
)
@click.option(
    "--prompt-tokens",
    type=click.IntRange(1),
    default=None,
    help="Prompt length for TTFT [min(1024, context/2)].",
)
@click.option(
    "--output-tokens",
    type=click.IntRange(1),
    default=256,
    show_default=True,
    help="Output tokens per request.",
)
@click.option(
    "--concurrency", type=click.IntRange(1), default=8, show_default=True, help="Streams decoding at once."
)
@click.option("--gpu", "gpu_id", help="Evaluate this GPU only (see `plan gpus`).")
@click.option("--count", type=click.IntRange(1, 64), default=None, help="Cards for one model copy (1-64).")
@click.option(
    "--engine",
    type=click.Choice(["vllm", "sglang", "trtllm", "llamacpp"]),
    default="vllm",
    show_default=True,
    help="Serving engine whose measured efficiency to use.",
)
@click.option("--tp", type=click.IntRange(1, 64), default=None, help="Tensor-parallel size (with --count).")
@click.option("--pp", type=click.IntRange(1, 64), default=None, help="Pipeline-parallel size (with --count).")
@click.option(
    "--dp",
    type=click.IntRange(1, 64),
    default=None,
    help="MoE attention data-parallel groups (EP = TP x DP).",
)
@click.option(
    "--network-gbps",
    type=click.FloatRange(1.0),
    default=400.0,
    show_default=True,
    help="Network between nodes, Gb/s per GPU (400 = InfiniBand NDR).",
)
@click.option(
    "--target-ttft-ms", type=click.FloatRange(1.0), default=None, help="Largest acceptable TTFT at load."
)
@click.option(
    "--target-tokens-per-s",
    type=click.FloatRange(0.1),
    default=None,
    help="Slowest acceptable tokens/s per stream.",
)
@click.option(
    "--requests-per-s",
    type=click.FloatRange(0.0),
    default=None,
    help="Request rate to size for (queueing at load).",
)
@click.option(
    "--currency", type=click.Choice(["USD", "CNY"], case_sensitive=False), default="USD", show_default=True
)
@click.option(
    "--price-file",
    type=click.Path(exists=True, dir_okay=False),
    help="Your cloud price rows (YAML/JSON); add or override.",
)
@click.option(
    "--api-price", help="API price per M output tokens (e.g. 0.6, 3CNY) or a name (see `plan apis`)."
)
@click.option(
    "--tokens-per-day", help="Output tokens a day to serve (e.g. 50M): sizes replicas and cost per day."
)
@click.option(
    "--peak-factor",
    type=click.FloatRange(1.0),
    default=1.0,
    show_default=True,
    help="Peak over average traffic.",
)
@click.option(
    "--min-stream-tps",
    type=click.FloatRange(0.1),
    default=20.0,
    show_default=True,
    help="Slowest acceptable tokens/s per stream when sizing for --tokens-per-day.",
)
@click.option(
    "--kv-precision",
    type=click.Choice(["fp16", "fp8"]),
    default="fp16",
    show_default=True,
    help="KV-cache precision.",
)
@click.option(
    "--cny-per-usd", type=click.FloatRange(0.1), default=None, help="Exchange rate [catalog's dated rate]."
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
@click.option(
    "--from-usage",
    is_flag=True,
    help="Should we self-host? Size and price from the gateway's own request log.",
)
@click.option(
    "--since", type=click.DateTime(["%Y-%m-%d"]), default=None, help="With --from-usage: first UTC day."
)
@click.option(
    "--map",
    "maps",
    multiple=True,
    metavar="API_MODEL=OPEN_MODEL",
    help="With --from-usage: the open model to price for an API model (repeatable).",
)
@database_options
@click.pass_context
def plan(
    ctx: click.Context,
    model: str | None,
    precision: str | None,
    context: int,
    prompt_tokens: int | None,
    output_tokens: int,
    concurrency: int,
    gpu_id: str | None,
    count: int | None,
    engine: str,
    tp: int | None,
    pp: int | None,
    dp: int | None,
    network_gbps: float,
    target_ttft_ms: float | None,
    target_tokens_per_s: float | None,
    requests_per_s: float | None,
    currency: str,
    price_file: str | None,
    api_price: str | None,
    tokens_per_day: str | None,
    peak_factor: float,
    min_stream_tps: float,
    kv_precision: str,
    cny_per_usd: float | None,
    as_json: bool,
    from_usage: bool,
    since: datetime | None,
    maps: tuple[str, ...],
    config: str | None,
    database: str | None,
) -> None:
    """Plan GPUs and clouds for self-hosting a model: memory fit, speed, cost, export rules.

    Without --gpu it ranks every catalog GPU at its smallest card count (1-64) that fits and
    meets the targets; with --gpu (and --count) it evaluates that setup. `plan usage` answers
    "should we self-host?" from the gateway's own request log. Subcommands list the catalog.
    """
    if ctx.invoked_subcommand is not None:
        return
    if from_usage:
        from sluicegate.cli.plan_usage import from_usage as _from_usage

        _from_usage(
            resolve_database(config, database),
            since.date() if since else None,
            maps,
            currency.upper(),
            engine,
            precision,
            cny_per_usd,
            price_file,
            as_json,
        )
        return
    if not model or not precision:
        raise click.UsageError(
            "--model and --precision are required (or use a subcommand: gpus, models, clouds, apis)"
        )
    currency = currency.upper()
    today = date.today()
    try:
        catalog = user_catalog(cny_per_usd, price_file)
        spec = resolve_model(model, catalog)
        prec = parse_precision(precision)
        prompt = prompt_tokens or min(1024, max(1, context // 2))
        workload = Workload(
            context=context,
            prompt_tokens=prompt,
            output_tokens=output_tokens,
            concurrency=concurrency,
            kv_bytes_per_value=1.0 if kv_precision == "fp8" else 2.0,
            tokens_per_day=parse_amount(tokens_per_day) if tokens_per_day else None,
            peak_factor=peak_factor,
            min_stream_tokens_per_s=target_tokens_per_s or min_stream_tps,
            target_ttft_ms=target_ttft_ms,
            requests_per_s=requests_per_s,
        )
        eng = get_engine(engine)
        layout = None
        if count and (tp or pp or dp):
            t_, p_, d_ = tp or 1, pp or 1, dp or 1
            if t_ * p_ * d_ != count:
                raise ValueError(f"--tp x --pp x --dp = {t_ * p_ * d_}, not --count {count}")
            layout = Layout(tp=t_, pp=p_, dp=d_, network_gbps=network_gbps)
        api = parse_api_price(api_price, currency, prompt, output_tokens, catalog) if api_price else None
        unfit: list[str] = []
        common: dict[str, Any] = {
            "engine": eng,
            "today": today,
            "layout": layout,
            "network_gbps": network_gbps,
        }
        if gpu_id and count:
            options = [
                evaluate(spec, prec, catalog.gpu(gpu_id), count, workload, catalog, currency, api, **common)
            ]
        elif count:
            options = [
                evaluate(spec, prec, g, count, workload, catalog, currency, api, **common)
                for g in catalog.gpus
                if not g.api_only
            ]
            options.sort(
                key=lambda o: (
                    not o.fits,
                    (o.best_quote.per_million_output_tokens or math.inf) if o.best_quote else math.inf,
                )
            )
        else:
            options, unfit_gpus = rank(
                spec,
                prec,
                workload,
                catalog,
                currency,
                api,
                (gpu_id,) if gpu_id else None,
                eng,
                today,
                network_gbps,
            )
            unfit = [g.id for g in unfit_gpus]
            if gpu_id and not options:
                options = [
                    evaluate(
                        spec, prec, catalog.gpu(gpu_id), 64, workload, catalog, currency, api, eng, today
                    )
                ]
    except (CatalogError, ModelConfigError, KeyError, ValueError) as exc:
        raise click.ClickException(exc.args[0] if exc.args else str(exc)) from None
    summary = model_summary(spec, prec, workload)
    if as_json:
        out = {
            "model": summary,
            "workload": {
                "context": workload.context,
                "prompt_tokens": workload.prompt_tokens,
                "output_tokens": workload.output_tokens,
                "concurrency": workload.concurrency,
                "tokens_per_day": workload.tokens_per_day,
                "peak_factor": workload.peak_factor,
                "kv_precision": kv_precision,
                "engine": eng.name,
                "target_ttft_ms": target_ttft_ms,
                "target_tokens_per_s": workload.min_stream_tokens_per_s,
                "requests_per_s": requests_per_s,
            },
            "currency": currency,
            "cny_per_usd": catalog.cny_per_usd.value,
            "options": [option_dict(o) for o in options],
            "cannot_fit": unfit,
            "api": None
            if api is None
            else {
                "name": api.name,
                "currency": api.currency,
                "per_million_output_tokens": round(api.per_million_output_tokens, 4),
                "tokens_per_s": api.tokens_per_s,
                "source": api.source,
                "date": api.date,
            },
            "disclaimer": DISCLAIMER,
        }
        click.echo(json.dumps(out, ensure_ascii=False, indent=2))
    elif len(options) == 1 and gpu_id:
        _print_detail(summary, workload, options[0], currency, api)
    else:
        _print_plan(summary, workload, options, unfit, currency, api)


for _command in (plan_catalog.gpus, plan_catalog.models, plan_catalog.clouds, plan_catalog.apis):
    plan.add_command(_command)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(plan())
