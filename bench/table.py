"""Summarise suite results (JSON lines from bench/suite.sh) as one Markdown table row per file.

  python bench/table.py bench/results/candidates-20261125/*.jsonl
  python bench/table.py --rounds R/rounds.jsonl R/relay.jsonl R/open.jsonl ...   (bench/phase2.sh output)

With --rounds, the CPU µs/req cell is the best of the interleaved closed-loop rounds for the row's label
(the steadiest figure on a shared machine), with the suite's own wrk figure after it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

HEAD = (
    "| system | req/s @32 (wrk) | CPU µs/req | seq added p50 / p99 ms | open 1,000/s added p50 / p99 ms | "
    "open 2,500/s added p50 / p99 ms (via p99.9) | fast streams/s (wrk) | 1,000 slow streams: peak RSS MB / CPU s / "
    "added gap p99 ms | worst foreign CPU |"
)
SEP = "|" + "---|" * 9


def f(x, nd=2) -> str:
    return "—" if x is None else f"{x:,.{nd}f}"


def med(recs: list[dict], key: str):
    vals = sorted(r[key] for r in recs if r.get(key) is not None)
    return vals[len(vals) // 2] if vals else None


def row(path: Path, rounds: list[dict] | None = None) -> str:
    recs = [json.loads(line) for line in path.read_text().splitlines() if line.startswith("{")]
    get = lambda **kw: [r for r in recs if all(r.get(k) == v for k, v in kw.items())]
    label = recs[0].get("label") if recs else path.stem
    wrk = get(mode="wrk", kind="chat")
    seq = get(mode="sequential")
    ol = {int(r["rate_per_target"]): r for r in get(mode="openloop")}
    fs = get(mode="wrk", kind="fast_stream")
    chk = get(mode="throughput", stream=True)
    slow = get(mode="slowstreams")
    cells = [label or path.stem]
    # several closed-loop runs (rounds) -> the median; n shown when more than one
    n = f" (n={len(wrk)})" if len(wrk) > 1 else ""
    cells.append(f(med(wrk, "rps"), 0) + n if wrk else "—")
    mine = [r for r in rounds or [] if r.get("label") == label and r.get("sut_cpu_us_per_req")]
    if mine:
        best = min(r["sut_cpu_us_per_req"] for r in mine)
        suite_us = f"; suite {f(med(wrk, 'sut_cpu_us_per_req'), 0)}" if wrk else ""
        cells.append(f"{f(best, 0)} (best of {len(mine)}{suite_us})")
    else:
        cells.append(f(med(wrk, "sut_cpu_us_per_req"), 0) if wrk else "—")
    cells.append(f"{f(seq[-1]['added_p50_ms'], 3)} / {f(seq[-1]['added_p99_ms'], 3)}" if seq else "—")
    o = ol.get(1000)
    cells.append(f"{f(o['added_p50_ms'])} / {f(o['added_p99_ms'])}" if o else "—")
    o = ol.get(2500)
    cells.append(
        f"{f(o['added_p50_ms'])} / {f(o['added_p99_ms'])} ({f(o['via_target']['p999_ms'], 1)})" if o else "—"
    )
    s = f(fs[-1]["rps"], 0) if fs else "—"
    if fs and fs[-1].get("sut_cpu_us_per_req"):
        s += f" ({f(fs[-1]['sut_cpu_us_per_req'], 0)} µs)"
    if chk:
        c = chk[-1]
        s += f", {c['events_per_stream_min']}–{c['events_per_stream_max']} events"
    cells.append(s)
    if slow:
        v = slow[-1]["via_target"]
        cells.append(
            f"{f(v['rss_peak_mb'], 0)} / {f(v['cpu_s'], 1)} / {f(slow[-1].get('added_gap_p99_ms'))}"
            + (f" ({v['bad_streams']} bad)" if v["bad_streams"] or v["errors"] else "")
        )
    else:
        cells.append("—")
    worst = max((r.get("foreign_cpu_frac", 0) for r in recs), default=0)
    cells.append(f"{worst:.0%}")
    return "| " + " | ".join(cells) + " |"


def main() -> None:
    args = sys.argv[1:]
    rounds = None
    if args[:1] == ["--rounds"]:
        rounds = [json.loads(x) for x in Path(args[1]).read_text().splitlines() if x.startswith("{")]
        args = args[2:]
    print(HEAD)
    print(SEP)
    for p in args:
        print(row(Path(p), rounds))


if __name__ == "__main__":
    main()
