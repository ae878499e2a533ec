"""Summary of `phase2.sh` result directories: ranges over rounds, per configuration.

    .venv/bin/python bench/speed_summary.py bench/results/speed-20261205/before bench/results/speed-20261205/step12

Per directory and configuration: closed-loop req/s and SUT CPU µs/request (wrk -c32, `rounds.jsonl`),
sequential added latency p50/p99 (`seq-rounds.jsonl`), idle RSS (parent + workers), and memory per
concurrent slow stream ((peak − idle RSS of the process tree) / streams, `slow-rounds.jsonl`).

    .venv/bin/python bench/speed_summary.py --peers bench/results/peers-20261205

`--peers`: the issue's side-by-side table instead (bench/peers.sh): per system the median over the rounds of
req/s, CPU µs/request (best in brackets, and × the bare relay's median), sequential added latency p50 and p99.
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
        rows[label]["slow_peak"].append(v["rss_peak_mb"])
        rows[label]["slow_gap"].append(d.get("added_gap_p99_ms", float("nan")))
        rows[label]["slow_direct_gap"].append(
            d.get("direct", {}).get("gap_minus_delay", {}).get("p99_ms", float("nan"))
        )
        rows[label]["slow_bad"].append(v["errors"] + v["bad_streams"])
        rows[label]["slow_n"].append(v["streams"])
        rows[label]["slow_s"].append(v["elapsed_s"])
    for d in lines(directory / "ol-rounds.jsonl"):
        label = d["label"]
        if label not in order:
            order.append(label)
        rows[label]["ol_rate"].append(d["rate_per_target"])
        rows[label]["ol_p50"].append(d["added_p50_ms"])
        rows[label]["ol_p99"].append(d["added_p99_ms"])
        rows[label]["ol_conns"].append(d["via_target"]["connections_opened"])
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
    if any(rows[label]["ol_rate"] for label in order):
        print(
            "\n| config | open loop rate req/s | added p50 ms, per round | added p99 ms, per round | connections opened |"
        )
        print("|---|---|---|---|---|")
        for label in order:
            r = rows[label]
            if r["ol_rate"]:
                print(
                    f"| {label} | {rng(r['ol_rate'])} | {' / '.join(f'{x:.2f}' for x in r['ol_p50'])} | "
                    f"{' / '.join(f'{x:.2f}' for x in r['ol_p99'])} | {' / '.join(f'{x:.0f}' for x in r['ol_conns'])} |"
                )
    if any(rows[label]["slow_n"] for label in order):
        print(
            "\n| config | streams | peak RSS MB | KB per stream | CPU µs per chunk | added gap p99 ms (direct gap p99) "
            "| step s | errors + bad streams |"
        )
        print("|---|---|---|---|---|---|---|---|")
        for label in order:
            r = rows[label]
            if r["slow_n"]:
                print(
                    f"| {label} | {rng(r['slow_n'])} | {rng(r['slow_peak'])} | {rng(r['kb_stream'], '{:.0f}')} | "
                    f"{rng(r['slow_cpu'], '{:.0f}')} | {rng(r['slow_gap'], '{:.1f}')} ({rng(r['slow_direct_gap'], '{:.1f}')}) | "
                    f"{rng(r['slow_s'], '{:.1f}')} | {int(sum(r['slow_bad']))} |"
                )


NAMES = {
    "relay": "bare relay (Granian + aiohttp, routing only)",
    "static": "Sluicegate, static key, no limits",
    "keys": "Sluicegate, static key, rpm only",
    "full": "Sluicegate, key with rpm/tpm/concurrency/budget, metering to SQLite",
    "openai-forward": "openai-forward",
    "portkey": "Portkey gateway (Node)",
    "litellm": "LiteLLM (no database)",
}


def median(values: list[float]) -> float | None:
    v = sorted(values)
    if not v:
        return None
    n = len(v)
    return v[n // 2] if n % 2 else (v[n // 2 - 1] + v[n // 2]) / 2


def peers(directory: Path) -> None:
    """The issue's table: medians over the interleaved rounds, one row per system."""
    rows: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    order: list[str] = []
    versions = {
        d["label"]: d["version"] for d in lines(directory / "meta.jsonl") if d.get("mode") == "version"
    }
    for d in lines(directory / "rounds.jsonl"):
        if d["mode"] != "wrk":
            continue
        if d["label"] not in order:
            order.append(d["label"])
        rows[d["label"]]["rps"].append(d["rps"])
        rows[d["label"]]["cpu"].append(d["sut_cpu_us_per_req"])
        rows[d["label"]]["errors"].append(d.get("errors", 0))
    for d in lines(directory / "seq-rounds.jsonl"):
        if d["label"] not in order:
            order.append(d["label"])
        rows[d["label"]]["p50"].append(d["added_p50_ms"])
        rows[d["label"]]["p99"].append(d["added_p99_ms"])
    relay_cpu = median(rows["relay"]["cpu"]) if "relay" in rows else None
    print(
        "| system | req/s | CPU µs/request (best) | × relay CPU | added latency, sequential p50 | "
        "sequential p99 | rounds | non-2xx/errors |"
    )
    print("|---|---|---|---|---|---|---|---|")

    def cell(x: float | None, fmt: str) -> str:
        return "—" if x is None else fmt.format(x)

    for label in order:
        r = rows[label]
        cpu = median(r["cpu"])
        ratio = cpu / relay_cpu if cpu and relay_cpu else None
        name = NAMES.get(label, label) + (f" {versions[label]}" if label in versions else "")
        print(
            f"| {name} | {cell(median(r['rps']), '{:,.0f}')} | {cell(cpu, '{:,.0f}')} "
            f"({cell(min(r['cpu']) if r['cpu'] else None, '{:,.0f}')}) | {cell(ratio, '{:.2f}×')} | "
            f"{cell(median(r['p50']), '{:.2f} ms')} | {cell(median(r['p99']), '{:.2f} ms')} | "
            f"{len(r['rps'])} / {len(r['p50'])} | {int(sum(r['errors']))} |"
        )


if __name__ == "__main__":
    argv = sys.argv[1:]
    if argv[:1] == ["--peers"]:
        for arg in argv[1:]:
            peers(Path(arg))
    else:
        for arg in argv:
            summarise(Path(arg))
