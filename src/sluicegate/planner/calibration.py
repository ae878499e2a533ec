"""The estimator run on the conditions of a published measurement, for the validation table.

A measurement row (tests/planner/data/measurements.yaml) names an engine, card, model,
precision, layout, prompt and output lengths, a concurrency and what was measured. This module
turns a row into the planner's estimate of the same figure, so the test suite and the table in
docs/planner.md (``python -m sluicegate.planner.calibration FILE``) report the same errors.
"""

from __future__ import annotations

import statistics
import sys
from dataclasses import dataclass
from typing import Any

import yaml

from sluicegate.planner.catalog import Catalog, load_catalog
from sluicegate.planner.engines import get_engine
from sluicegate.planner.layout import Layout
from sluicegate.planner.memory import fit
from sluicegate.planner.models import Architecture
from sluicegate.planner.precision import parse_precision
from sluicegate.planner.speed import decode, prefill


@dataclass(frozen=True)
class Check:
    row: dict[str, Any]
    estimate: float
    batch: int

    @property
    def measured(self) -> float:
        return float(self.row["measured"])

    @property
    def error(self) -> float:
        """Signed relative error of the estimate (+0.10 = 10% optimistic for speeds)."""
        return self.estimate / self.measured - 1.0


def max_batch(
    arch: Architecture, row: dict[str, Any], lay: Layout, catalog: Catalog, cap: int, kv_bytes: float = 2.0
) -> int:
    """Streams an offline max-throughput run holds at once: KV memory, then the engine's cap."""
    prec = parse_precision(row["precision"])
    gpu = catalog.gpu(row["gpu"])
    m = fit(arch, prec, gpu, lay, row["prompt"] + row["output"], 1, kv_bytes)
    return max(1, min(cap, m.max_concurrency))


def estimate(row: dict[str, Any], catalog: Catalog) -> Check:
    """The planner's figure for the row's metric under the row's conditions."""
    engine = get_engine(row["engine"])
    gpu = catalog.gpu(row["gpu"])
    arch = Architecture.from_mapping(catalog.model(row["model"]).architecture)
    prec = parse_precision(row["precision"])
    lay = Layout(**row.get("layout", {}))
    prompt, output = int(row["prompt"]), int(row["output"])
    conc = row["concurrency"]
    kv = float(row.get("kv_bytes", 2.0))
    batch = max_batch(arch, row, lay, catalog, engine.max_batch, kv) if conc == "max" else int(conc)
    metric = row["metric"]
    if metric == "ttft_ms":
        value = prefill(arch, prec, gpu, lay, engine, prompt).ttft_s * 1e3
    elif metric == "stream_tps":
        mixed = (prompt, output) if batch > 1 else (0, 0)
        d = decode(arch, prec, gpu, lay, engine, batch, prompt + output / 2, kv, *mixed)
        value = d.tokens_per_s_per_stream
    elif metric == "served_tps":
        d = decode(arch, prec, gpu, lay, engine, batch, prompt + output / 2, kv, prompt, output)
        # a closed loop of `batch` clients also waits for each request's own first token
        pre = prefill(arch, prec, gpu, lay, engine, prompt)
        cycle = output * d.seconds + (pre.ttft_s if batch <= 64 else 0.0)
        value = batch * output / cycle
    else:
        raise ValueError(f"unknown metric {metric!r}")
    return Check(row=row, estimate=value, batch=batch)


def load_rows(path: str) -> list[dict[str, Any]]:
    with open(path, encoding="utf-8") as f:
        return list(yaml.safe_load(f)["rows"])


def summary(checks: list[Check]) -> dict[str, float]:
    errs = [abs(c.error) for c in checks]
    return {"median": statistics.median(errs), "worst": max(errs), "n": float(len(errs))}


def markdown(checks: list[Check]) -> str:
    """The validation table for docs/planner.md."""
    lines = [
        "| id | engine | card | model | prec | layout | in/out | conc | metric | measured | estimate | error | use |",
        "|---|---|---|---|---|---|---|---|---|---:|---:|---:|---|",
    ]
    for c in checks:
        r = c.row
        lay = Layout(**r.get("layout", {})).describe()
        conc = f"max ({c.batch})" if r["concurrency"] == "max" else str(r["concurrency"])
        lines.append(
            f"| {r['id']} | {r['engine']} | {r['gpu']} | {r['model']} | {r['precision']} | {lay} | "
            f"{r['prompt']}/{r['output']} | {conc} | {r['metric']} | {c.measured:g} | {c.estimate:.4g} | "
            f"{c.error:+.0%} | {r['use']} |"
        )
    return "\n".join(lines)


def main(argv: list[str]) -> int:  # pragma: no cover - a maintenance script
    catalog = load_catalog()
    checks = [estimate(r, catalog) for r in load_rows(argv[1])]
    print(markdown(checks))
    for use in ("calibration", "held-out"):
        s = summary([c for c in checks if c.row["use"] == use])
        print(f"\n{use}: n={s['n']:.0f} median |error| {s['median']:.0%}, worst {s['worst']:.0%}")
    s = summary(checks)
    print(f"all: n={s['n']:.0f} median |error| {s['median']:.0%}, worst {s['worst']:.0%}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main(sys.argv))
