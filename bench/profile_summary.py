"""Summarise a py-spy raw (collapsed stacks) profile: where the worker's samples went.

  python bench/profile_summary.py bench/results/sluicegate-YYYYMMDD/profile-keys.raw [--top 40]

Prints, as a share of all samples: (1) by component (the package owning the leaf frame: sluicegate
modules, aiohttp, asyncio/uvloop, sqlalchemy/aiosqlite, prometheus_client, orjson...), self time;
(2) inclusive time by component (a stack counts once for every component on it); (3) the top functions
by self time and by inclusive time. py-spy sees Python frames only: time in Granian's Rust code and in
C extensions shows up under the Python frame that called it (or as the idle/event-loop frame).
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^():]+)(?::(?P<line>\d+))?\)$")


def component(file: str) -> str:
    """The module, as py-spy names it (a path relative to its sys.path entry)."""
    f = file.replace("\\", "/")
    m = re.search(r"(?:site-packages|src|python3\.\d+)/(.+)$", f)
    return m.group(1) if m else f


def package(file: str) -> str:
    """sluicegate.<subpackage>, or the top-level package (aiohttp, asyncio, granian, sqlalchemy...)."""
    mod = component(file)
    parts = mod.removesuffix(".py").split("/")
    if parts[0] == "sluicegate" and len(parts) > 2:
        return "sluicegate." + parts[1]
    if parts[0] == "bench":
        return "bench." + "/".join(parts[1:])
    return parts[0]


# frames every stack of the worker's main thread sits under (Granian's launcher): not a cost
LAUNCH = (
    "click/",
    "multiprocessing/",
    "granian/server/common.py",
    "granian/server/mp.py",
    "sluicegate/cli/",
    "sluicegate/server/runner.py",
    "threading.py",
)


def launcher(mod: str) -> bool:
    return mod == "sluicegate" or mod.startswith(LAUNCH)


# leaf frames that are a thread waiting, not working (py-spy --nonblocking cannot always tell)
IDLE = {("_connection_worker_thread", "aiosqlite/core.py", "59")}
THREAD = re.compile(r"^thread \((?P<tid>\w+)\)(?::\s*(?P<name>.*))?$")


def thread_label(first: str) -> str:
    m = THREAD.match(first.strip())
    if not m:
        return ""
    name = m.group("name") or ""
    if name.startswith("MainThread"):
        return "event loop (MainThread)"
    if "_connection_worker_thread" in name:
        return "aiosqlite connection thread"
    return name or "native thread, no Python frames (Granian runtime)"


def parse(path: Path) -> list[tuple[str, list[tuple[str, str, str]], int]]:
    stacks = []
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        stack, _, n = line.rpartition(" ")
        parts = stack.split(";")
        thread = thread_label(parts[0]) if parts[0].startswith("thread (") else ""
        if thread:
            parts = parts[1:]
        frames = []
        for fr in parts:
            if not fr.strip() or fr.startswith(("MainThread", "Thread-")):
                continue
            m = FRAME.match(fr.strip())
            frames.append((m.group("func"), m.group("file"), m.group("line") or "") if m else (fr, "?", ""))
        if frames and frames[-1] in IDLE:
            thread += " [idle]"
        stacks.append((thread, frames, int(n)))
    return stacks


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("raw")
    ap.add_argument("--top", type=int, default=40)
    args = ap.parse_args()
    stacks = parse(Path(args.raw))
    by_thread: Counter[str] = Counter()
    for thread, _, n in stacks:
        by_thread[thread or "(all threads)"] += n
    total = sum(by_thread.values())
    print(f"# {args.raw}: {total} samples")
    print("\n## samples by thread (with --gil: which thread held the GIL)")
    for k, n in by_thread.most_common():
        print(f"{100 * n / total:6.1f}%  {n:7d}  {k}")
    stacks = [(t, fr, n) for t, fr, n in stacks if fr and not t.endswith("[idle]")]
    total = sum(n for _, _, n in stacks)
    print(f"\nBelow: the {total} samples with Python frames, not idle (shares of these).")
    self_comp: Counter[str] = Counter()
    incl_comp: Counter[str] = Counter()
    self_pkg: Counter[str] = Counter()
    incl_pkg: Counter[str] = Counter()
    self_fn: Counter[str] = Counter()
    incl_fn: Counter[str] = Counter()
    for _, frames, n in stacks:
        func, file, line = frames[-1]
        self_comp[component(file)] += n
        self_pkg[package(file)] += n
        self_fn[f"{func} ({component(file)}:{line})"] += n
        for c in {component(f) for _, f, _ in frames if not launcher(component(f))}:
            incl_comp[c] += n
        for c in {package(f) for _, f, _ in frames if not launcher(component(f))}:
            incl_pkg[c] += n
        for k in {f"{fn} ({component(f)})" for fn, f, _ in frames if not launcher(component(f))}:
            incl_fn[k] += n

    def show(title: str, counter: Counter[str], top: int) -> None:
        print(f"\n## {title}")
        for k, n in counter.most_common(top):
            print(f"{100 * n / total:6.1f}%  {n:7d}  {k}")

    show("self time by package (leaf frame)", self_pkg, args.top)
    show("inclusive time by package (launcher frames left out)", incl_pkg, args.top)
    show("self time by module (leaf frame)", self_comp, args.top)
    show("inclusive time by module", incl_comp, args.top)
    show("top functions, self (function (component:line))", self_fn, args.top)
    show("top functions, inclusive", incl_fn, args.top)


if __name__ == "__main__":
    main()
