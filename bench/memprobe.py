"""Where a worker's memory goes: tracemalloc inside a real Granian worker (not a timed benchmark).

    MEMPROBE_DIR=/tmp/mp SLUICEGATE_CONFIG=keys.yaml granian --interface rsgi --factory \\
        --runtime-mode mt --loop uvloop --http 1 --no-ws --port 8390 bench.memprobe:create
    touch /tmp/mp/go               # the worker writes MEMPROBE_DIR/snap-<n>.tm (tracemalloc snapshot)
    python bench/memprobe.py diff /tmp/mp/snap-1.tm /tmp/mp/snap-2.tm [--per N]

`create` starts tracemalloc before the gateway is built, so the snapshot holds everything the gateway
allocated from then on (the worker's imports up to the factory call are not traced); with
MEMPROBE_LATE=1 the first `go` starts tracing instead (start-up at full speed; for per-request diffs). `diff` prints the
lines whose allocations grew between two snapshots (say idle, then with N streams open), per stream
with `--per N`.
"""

from __future__ import annotations

import argparse
import gc
import itertools
import os
import sys
import threading
import time
import tracemalloc
from typing import Any

_count = itertools.count(1)


def _watch(folder: str) -> None:
    """Granian's worker keeps no Python signal handler of ours: a file `go` in the folder triggers."""
    go = os.path.join(folder, "go")
    trim = os.path.join(folder, "trim")
    while True:
        time.sleep(0.1)
        if os.path.exists(trim):  # what glibc's malloc_trim would give back now (a measurement)
            os.unlink(trim)
            import ctypes

            gc.collect()
            ctypes.CDLL("libc.so.6").malloc_trim(0)
            print("memprobe: trimmed", file=sys.stderr, flush=True)
        if os.path.exists(go):
            os.unlink(go)
            if not tracemalloc.is_tracing():  # the first trigger starts tracing (MEMPROBE_LATE=1)
                tracemalloc.start(int(os.environ.get("MEMPROBE_FRAMES", "16")))
                print("memprobe: tracing", file=sys.stderr, flush=True)
                continue
            gc.collect()
            path = os.path.join(folder, f"snap-{next(_count)}.tm")
            tracemalloc.take_snapshot().dump(path)
            print(f"memprobe: {path}", file=sys.stderr, flush=True)


def create() -> Any:
    if not os.environ.get("MEMPROBE_LATE"):
        tracemalloc.start(int(os.environ.get("MEMPROBE_FRAMES", "16")))
    from sluicegate.server.factory import create_from_env

    gateway = create_from_env()
    folder = os.environ.get("MEMPROBE_DIR", "/tmp")
    threading.Thread(target=_watch, args=(folder,), daemon=True, name="memprobe").start()
    return gateway


def relay() -> Any:
    """The bare relay (candidates/granian_aiohttp.py) under the same probe, for comparison."""
    if not os.environ.get("MEMPROBE_LATE"):
        tracemalloc.start(int(os.environ.get("MEMPROBE_FRAMES", "16")))
    from bench.candidates.granian_aiohttp import app

    folder = os.environ.get("MEMPROBE_DIR", "/tmp")
    threading.Thread(target=_watch, args=(folder,), daemon=True, name="memprobe").start()
    return app


def diff(old_path: str, new_path: str, per: int, top: int, key: str) -> None:
    skip = [tracemalloc.Filter(False, tracemalloc.__file__), tracemalloc.Filter(False, __file__)]
    old = tracemalloc.Snapshot.load(old_path).filter_traces(skip)
    new = tracemalloc.Snapshot.load(new_path).filter_traces(skip)
    stats = new.compare_to(old, key)
    total = sum(s.size_diff for s in stats)
    count = sum(s.count_diff for s in stats)
    print(
        f"total growth {total / 1024:.1f} KB in {count} blocks; per unit {total / per / 1024:.2f} KB, {count / per:.1f} blocks"
    )
    for s in stats[:top]:
        if s.size_diff <= 0:
            continue
        frames = s.traceback.format(limit=None if key == "traceback" else 1, most_recent_first=True)
        print(
            f"{s.size_diff / per:9.0f} B {s.count_diff / per:6.2f} blk  "
            + " <- ".join(f.strip() for f in frames[:1])
        )
        if key == "traceback":
            for f in frames[1:12]:
                print("      " + f.strip())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("diff")
    d.add_argument("old")
    d.add_argument("new")
    d.add_argument("--per", type=int, default=1)
    d.add_argument("--top", type=int, default=40)
    d.add_argument("--key", default="lineno", choices=["lineno", "filename", "traceback"])
    t = sub.add_parser("top")
    t.add_argument("snap")
    t.add_argument("--top", type=int, default=40)
    t.add_argument("--key", default="filename", choices=["lineno", "filename", "traceback"])
    args = ap.parse_args()
    if args.cmd == "diff":
        diff(args.old, args.new, args.per, args.top, args.key)
    else:
        snap = tracemalloc.Snapshot.load(args.snap)
        stats = snap.statistics(args.key)
        print(f"total {sum(s.size for s in stats) / 2**20:.2f} MB")
        for s in stats[: args.top]:
            print(f"{s.size / 1024:9.1f} KB {s.count:7d}  {s.traceback.format(limit=1)[0].strip()}")


if __name__ == "__main__":
    main()
