"""What the hot path's small set-ups cost, each alone: the figures behind server/later.py and limits' NamedTuples.

    .venv/bin/python bench/micro_setups.py [-n 200000] [--rounds 3]

On uvloop (the gateway's loop), per operation, best of the rounds:
- `call_at + cancel`: one timer per request set and cancelled (the upstream deadline timer before Later);
- `Later add + cancel`: an entry put off on the shared beat and cancelled (a request over before the beat);
- `frozen dataclass` / `NamedTuple` / `slots dataclass`: making one four-field record (`Demand`).
A microbenchmark: it shows the size of each cost, not what a request saves (bench/instr.py does that).
"""

from __future__ import annotations

import argparse
import asyncio
import time
from dataclasses import dataclass
from typing import Any, NamedTuple

import uvloop

from sluicegate.server.later import Later


@dataclass(frozen=True, slots=True)
class Frozen:
    quota: Any
    amount: float
    unit: float = 0.0
    units: int = 0


class Named(NamedTuple):
    quota: Any
    amount: float
    unit: float = 0.0
    units: int = 0


@dataclass(slots=True)
class Slots:
    quota: Any
    amount: float
    unit: float = 0.0
    units: int = 0


def per_op(fn: Any, n: int) -> float:
    start = time.perf_counter()
    fn(n)
    return (time.perf_counter() - start) / n * 1e6


async def timers(n: int, rounds: int) -> dict[str, float]:
    loop = asyncio.get_running_loop()

    def noop(*_: Any) -> None:
        return None

    def call_at(k: int) -> None:
        for _ in range(k):
            loop.call_at(loop.time() + 10.0, noop).cancel()

    def later(k: int) -> None:
        beat = Later(10.0)
        for _ in range(k):
            Later.cancel(beat.add(noop, None))
        beat.close()

    return {
        "call_at + cancel": min(per_op(call_at, n) for _ in range(rounds)),
        "Later add + cancel": min(per_op(later, n) for _ in range(rounds)),
    }


def records(n: int, rounds: int) -> dict[str, float]:
    out = {}
    for name, cls in (("frozen dataclass", Frozen), ("NamedTuple", Named), ("slots dataclass", Slots)):

        def make(k: int, cls: Any = cls) -> None:
            for _ in range(k):
                cls(None, 1.0)

        out[name] = min(per_op(make, n) for _ in range(rounds))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-n", type=int, default=200_000)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    figures = uvloop.run(timers(args.n, args.rounds))
    figures.update(records(args.n, args.rounds))
    for name, us in figures.items():
        print(f"{name:<20} {us:6.2f} µs")


if __name__ == "__main__":
    main()
