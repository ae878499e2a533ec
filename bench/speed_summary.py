"""Summary of `phase2.sh` result directories: ranges over rounds, per configuration.

    .venv/bin/python bench/speed_summary.py bench/results/speed-20261205/before bench/results/speed-20261205/step12

Per directory and configuration: closed-loop req/s and SUT CPU µs/request (wrk -c32, `rounds.jsonl`),
sequential added latency p50/p99 (`seq-rounds.jsonl`), idle RSS (parent + workers), and memory per
concurrent slow stream ((peak − idle RSS of the process tree) / streams, `slow-rounds.jsonl`).
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path


def rng(values: list[float], fmt: str = "{:,.0f}") -> str:
    if not values:
        return "—"
    lo, hi = fmt.format(min(values)), fmt.format(max(values))
    return lo if lo == hi else f"{lo}–{hi}"


def lines(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()] if path.exists() else []


def summarise(directory: Path) -> None:
    rows: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    order: list[str] = []
    for d in lines(directory / "rounds.jsonl"):
        label = d["label"]
        if label not in order:
            order.append(label)
        if d["mode"] == "idle_rss":
            rows[label]["idle"].append(d["total_mb"])
            rows[label]["parent"].append(d["parent_mb"])
            rows[label]["worker"].append(sum(d["workers_mb"]))
        elif d["mode"] == "wrk":
            rows[label]["rps"].append(d["rps"])
            rows[label]["cpu"].append(d["sut_cpu_us_per_req"])
            rows[label]["foreign"].append(d.get("foreign_cpu_frac", 0.0))
    for d in lines(directory / "seq-rounds.jsonl"):
        rows[d["label"]]["p50"].append(d["added_p50_ms"])
        rows[d["label"]]["p99"].append(d["added_p99_ms"])
    for d in lines(directory / "slow-rounds.jsonl"):
        v = d["via_target"]
        label = d["label"]
        if label not in order:
            order.append(label)
        rows[label]["kb_stream"].append((v["rss_peak_mb"] - v["rss_before_mb"]) * 1024 / v["streams"])
        rows[label]["slow_cpu"].append(v["cpu_s"] * 1e6 / (v["streams"] * v["chunks"]))
    print(f"\n{directory}\n")
    print(
        "| config | req/s | CPU µs/req | seq added p50 / p99 ms | idle RSS MB (parent + worker) "
        "| KB per slow stream | CPU µs per chunk (slow streams) |"
    )
    print("|---|---|---|---|---|---|---|")
    for label in order:
        r = rows[label]
        idle = (
            f"{rng(r['idle'], '{:.0f}')} ({rng(r['parent'], '{:.0f}')} + {rng(r['worker'], '{:.0f}')})"
            if r["idle"]
            else "—"
        )
        print(
            f"| {label} | {rng(r['rps'])} | {rng(r['cpu'])} | {rng(r['p50'], '{:.2f}')} / "
            f"{rng(r['p99'], '{:.2f}')} | {idle} | {rng(r['kb_stream'], '{:.0f}')} | {rng(r['slow_cpu'], '{:.0f}')} |"
        )


if __name__ == "__main__":
    for arg in sys.argv[1:]:
        summarise(Path(arg))
