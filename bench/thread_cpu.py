"""CPU time of each thread of a process, from /proc (user + system), optionally since a snapshot.

python bench/thread_cpu.py PID > before.json
python bench/thread_cpu.py PID --since before.json     -> {"wall_s":..., "threads": [{tid, name, cpu_s, frac}...]}
"""

from __future__ import annotations

import argparse
import json
import os
import time

CLK_TCK = os.sysconf("SC_CLK_TCK")


def snapshot(pid: int) -> dict:
    threads = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/stat", "rb") as f:
                s = f.read()
            with open(f"/proc/{pid}/task/{tid}/comm") as f:
                name = f.read().strip()
        except OSError:
            continue
        fields = s[s.rfind(b")") + 2 :].split()
        threads[tid] = {"name": name, "cpu_s": (int(fields[11]) + int(fields[12])) / CLK_TCK}
    return {"pid": pid, "t": time.monotonic(), "threads": threads}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("pid", type=int)
    ap.add_argument("--since")
    args = ap.parse_args()
    now = snapshot(args.pid)
    if not args.since:
        print(json.dumps(now))
        return
    with open(args.since) as f:
        before = json.load(f)
    wall = now["t"] - before["t"]
    rows = []
    for tid, t in now["threads"].items():
        cpu = t["cpu_s"] - before["threads"].get(tid, {"cpu_s": 0.0})["cpu_s"]
        rows.append(
            {"tid": int(tid), "name": t["name"], "cpu_s": round(cpu, 2), "frac": round(cpu / wall, 3)}
        )
    rows.sort(key=lambda r: -r["cpu_s"])
    print(
        json.dumps(
            {
                "pid": args.pid,
                "wall_s": round(wall, 2),
                "cpu_s": round(sum(r["cpu_s"] for r in rows), 2),
                "threads": [r for r in rows if r["cpu_s"] > 0],
            }
        )
    )


if __name__ == "__main__":
    main()
