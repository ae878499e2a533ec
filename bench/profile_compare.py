"""Compare two py-spy raw profiles per request: which functions cost more µs a request in A than in B.

  python bench/profile_compare.py A.raw A_REQUESTS B.raw B_REQUESTS [--rate 500] [--top 40]

A_REQUESTS / B_REQUESTS: requests served while each profile was recorded (wrk's req/s x seconds).
Each sample stands for 1/rate s of the sampled thread (with --gil: of the GIL held), so
samples / rate / requests = seconds a request. Self time per (function, module), and inclusive time.
"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

from profile_summary import component, launcher, package, parse


def per_request(path: str, requests: float, rate: float) -> tuple[Counter, Counter, Counter, float]:
    self_fn: Counter[str] = Counter()
    incl_fn: Counter[str] = Counter()
    self_pkg: Counter[str] = Counter()
    total = 0
    for thread, frames, n in parse(Path(path)):
        if not frames or thread.endswith("[idle]"):
            continue
        total += n
        func, file, _ = frames[-1]
        self_fn[f"{func} ({component(file)})"] += n
        self_pkg[package(file)] += n
        for k in {f"{fn} ({component(f)})" for fn, f, _ in frames if not launcher(component(f))}:
            incl_fn[k] += n
    k = 1e6 / rate / requests
    scale = lambda c: Counter({key: v * k for key, v in c.items()})
    return scale(self_fn), scale(incl_fn), scale(self_pkg), total * k


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("a")
    ap.add_argument("a_requests", type=float)
    ap.add_argument("b")
    ap.add_argument("b_requests", type=float)
    ap.add_argument("--rate", type=float, default=500)
    ap.add_argument("--top", type=int, default=40)
    args = ap.parse_args()
    sa, ia, pa, ta = per_request(args.a, args.a_requests, args.rate)
    sb, ib, pb, tb = per_request(args.b, args.b_requests, args.rate)
    print(f"µs a request with Python frames: A {ta:.0f}, B {tb:.0f}, A-B {ta - tb:+.0f}")
    for title, a, b in (
        ("self by package", pa, pb),
        ("self by function", sa, sb),
        ("inclusive by function", ia, ib),
    ):
        print(f"\n## {title}: µs/req A, B, A-B (largest A-B first)")
        keys = sorted(set(a) | set(b), key=lambda x: -(a.get(x, 0) - b.get(x, 0)))
        for key in keys[: args.top]:
            print(f"{a.get(key, 0):8.1f} {b.get(key, 0):8.1f} {a.get(key, 0) - b.get(key, 0):+8.1f}  {key}")


if __name__ == "__main__":
    main()
