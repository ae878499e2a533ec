"""`sluicegate plan gpus|models|clouds|apis`: the planner's catalog, listed with sources and dates."""

from __future__ import annotations

import json
from typing import Any

import click

from sluicegate.cli._common import format_table
from sluicegate.cli.lang import t
from sluicegate.planner.catalog import load_catalog
from sluicegate.planner.export_control import DISCLAIMER, classify
from sluicegate.planner.plan import Workload, resolve_model
from sluicegate.planner.precision import Precision
from sluicegate.planner.report import model_summary


def _table(rows: list[list[str]], right: set[int]) -> str:
    return format_table(rows[0], rows[1:], right=tuple(right), rule=True)


@click.command("gpus")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def gpus(as_json: bool) -> None:
    """List the GPU catalog with specs, prices and export classes."""
    catalog = load_catalog()
    recs: list[dict[str, Any]] = []
    for g in catalog.gpus:
        status = classify(g, catalog.export_rules)
        recs.append(
            {
                "id": g.id,
                "name": g.name,
                "market": g.market,
                "memory_gb": g.memory_gb.value,
                "bandwidth_gbs": g.bandwidth_gbs.value,
                "fp16_tflops": g.fp16_tflops.value,
                "fp8_tflops": g.fp8_tflops.value if g.fp8_tflops else None,
                "int8_tops": g.int8_tops.value if g.int8_tops else None,
                "tdp_w": g.tdp_w.value,
                "nvlink_gbs": g.nvlink_gbs.value if g.nvlink_gbs else None,
                "price_cny": g.price_cny.value if g.price_cny else None,
                "api_only": g.api_only,
                "export_control": status.as_dict(),
                "notes": list(g.notes),
            }
        )
    if as_json:
        click.echo(json.dumps(recs, ensure_ascii=False, indent=2))
        return
    rows = [
        [
            "id",
            t("memory", "显存"),
            "BW GB/s",
            "FP16",
            "FP8",
            "INT8",
            "TDP W",
            "NVLink",
            t("price CNY", "价格(元)"),
            "TPP",
            "PD",
            "2022",
            "2023",
        ]
    ]
    for r in recs:
        e = r["export_control"]
        rows.append(
            [
                r["id"] + (" (API)" if r["api_only"] else ""),
                f"{r['memory_gb']:g} GB",
                f"{r['bandwidth_gbs']:g}",
                f"{r['fp16_tflops']:g}",
                f"{r['fp8_tflops']:g}" if r["fp8_tflops"] else "-",
                f"{r['int8_tops']:g}" if r["int8_tops"] else "-",
                f"{r['tdp_w']:g}",
                f"{r['nvlink_gbs']:g}" if r["nvlink_gbs"] else "-",
                f"{r['price_cny']:,.0f}" if r["price_cny"] else "-",
                f"{e['tpp']:.0f}",
                f"{e['performance_density']:.2f}" if e["performance_density"] else "?",
                "C" if e["oct2022_controlled"] else "-",
                (e["oct2023_class"] or "-") + (" (Note 2)" if e["oct2023_note2_exempt"] else ""),
            ]
        )
    click.echo(_table(rows, right={2, 3, 4, 5, 6, 7, 8, 9, 10}))
    click.echo(f"\nTFLOPS/TOPS dense (no sparsity). C = controlled. {DISCLAIMER}")


@click.command("models")
def models() -> None:
    """List the catalog's models with parameter counts and KV-cache size."""
    catalog = load_catalog()
    rows = [["name", "params", "active", "layers", "heads/kv", "KV KiB/token (fp16)", "hf_id"]]
    for m in catalog.models:
        spec = resolve_model(m.name, catalog)
        s = model_summary(spec, Precision.FP16, Workload())
        rows.append(
            [
                m.name,
                f"{s['params_b']:.2f}B",
                f"{s['active_params_b']:.2f}B",
                str(s["layers"]),
                f"{s['heads']}/{s['kv_heads']}",
                f"{s['kv_bytes_per_token'] / 1024:.1f}",
                m.hf_id,
            ]
        )
    click.echo(_table(rows, right={1, 2, 3, 5}))


@click.command("clouds")
def clouds() -> None:
    """List the cloud price rows with their sources and dates."""
    catalog = load_catalog()
    rows = [["provider", "region", "instance", "gpu", "gpus", "vCPU", "GiB", "price/h", "billing", "date"]]
    for r in catalog.prices:
        rows.append(
            [
                r.provider,
                r.region,
                r.instance,
                "|".join(r.gpu),
                str(r.gpus),
                f"{r.vcpu:g}" if r.vcpu else "-",
                f"{r.memory_gib:g}" if r.memory_gib else "-",
                f"{r.price_per_hour:g} {r.currency}",
                r.billing,
                r.date,
            ]
        )
    click.echo(_table(rows, right={4, 5, 6, 7}))
    if catalog.unpriced:
        click.echo(
            f"\n{t('Offered, but no price could be sourced (add yours with --price-file):', '有供应但未能找到可引用的价格（可用 --price-file 提供）：')}"
        )
        for u in catalog.unpriced:
            click.echo(f"  {u.provider:<11} {', '.join(u.gpu):<40} {u.source}")


@click.command("apis")
def apis() -> None:
    """List the API price table used by --api-price NAME."""
    catalog = load_catalog()
    rows = [["name", "in/M", "out/M", "currency", "tok/s", "date"]]
    for a in catalog.apis:
        rows.append(
            [
                a.name,
                f"{a.input_per_m:g}",
                f"{a.output_per_m:g}",
                a.currency,
                f"{a.tokens_per_s:g}" if a.tokens_per_s else "-",
                a.date,
            ]
        )
    click.echo(_table(rows, right={1, 2, 4}))
