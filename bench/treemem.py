"""Memory of a process tree, two ways: the sum of RSS, and each physical page counted once.

    python bench/treemem.py PID [--json]

Summing RSS over a tree counts a page once per process that maps it: a Granian worker forked from its
parent shares the parent's interpreter, libraries and early heap, and both RSS figures include them.
The kernel charges a container (cgroup) for each physical page once. This reads `/proc/PID/pagemap`
of every process in the tree (root needed: without CAP_SYS_ADMIN the kernel hides frame numbers) and
counts the distinct present frames, which is what the tree really holds in RAM. Both figures are
printed; neither replaces the other: bench/README.md quotes both.
"""

from __future__ import annotations

import argparse
import json
import os
import struct
import sys

PAGE = os.sysconf("SC_PAGE_SIZE")
PRESENT = 1 << 63
PFN_MASK = (1 << 55) - 1


def tree(pid: int) -> list[int]:
    """`pid` and all its descendants."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            with open(f"/proc/{p}/task/{p}/children") as f:
                todo += [int(c) for c in f.read().split()]
        except OSError:
            pass
    return out


def rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def frames(pid: int) -> set[int]:
    """Physical frame numbers of the pages `pid` has resident."""
    found: set[int] = set()
    with open(f"/proc/{pid}/maps") as maps, open(f"/proc/{pid}/pagemap", "rb") as pagemap:
        for line in maps:
            start_s, end_s = line.split()[0].split("-")
            start, end = int(start_s, 16) // PAGE, int(end_s, 16) // PAGE
            if line.rstrip().endswith("[vsyscall]"):
                continue
            pagemap.seek(start * 8)
            data = pagemap.read((end - start) * 8)
            for (entry,) in struct.iter_unpack("<Q", data):
                if entry & PRESENT:
                    pfn = entry & PFN_MASK
                    if pfn:
                        found.add(pfn)
    return found


def measure(pid: int) -> dict[str, object]:
    pids = tree(pid)
    per = {p: rss_kb(p) for p in pids}
    union: set[int] = set()
    hidden = False
    for p in pids:
        f = frames(p)
        if per[p] and not f:
            hidden = True  # not root: frame numbers read as 0
        union |= f
    return {
        "pids": pids,
        "rss_mb": {str(p): round(kb / 1024, 1) for p, kb in per.items()},
        "rss_sum_mb": round(sum(per.values()) / 1024, 1),
        "distinct_mb": None if hidden else round(len(union) * PAGE / 2**20, 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("pid", type=int)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    result = measure(args.pid)
    if args.json:
        print(json.dumps(result))
        return
    print(f"processes {result['pids']}  RSS {result['rss_mb']}")
    print(f"sum of RSS {result['rss_sum_mb']} MB; distinct pages {result['distinct_mb']} MB")
    if result["distinct_mb"] is None:
        sys.exit("frame numbers are hidden: run as root")


if __name__ == "__main__":
    main()
