"""Response cache figures: what a hit costs against a miss relayed to the stand-in upstream.

Starts bench/upstream.py and a one-worker gateway (`sluicegate serve`) with the cache on, then sends
sequential requests on one kept-alive connection and measures, per kind of request:

- client latency p50 / p99 (request sent -> whole answer read);
- the gateway's CPU per request (utime + stime of its process tree, from /proc).

Kinds: `hit` (the same deterministic request again), `miss` (a new prompt each time: lookup, relay,
then the answer stored), `bypass` (`x-sluicegate-cache: off`: a plain relay, the cache does nothing),
and `hit_stream` (a stream replayed from a cached whole answer). Once with the memory backend, once
with Redis (`--redis`, '' to skip).

`--semantic` measures the semantic stage instead (the `semantic` extra; bench/upstream.py answers
/v1/embeddings with 1,536-dimension bag-of-words vectors): the route has `semantic: true` with
threshold 0.9, and the kinds are `bypass`, `miss` (a new prompt of random words: exact miss, the
embedding call, a search that finds nothing, the relay, the answer stored in both stages; the partition
fills to its 1,000 prompts), `hit` (exact), `semantic_hit` (the stored prompt with one random word
added: exact miss, the embedding call, a search that finds it, the entry read) and
`semantic_hit_stream` (the same, replayed as a stream). It also times the usearch index alone
(`index_search`: one search of a full 1,000-prompt partition, in process).

  .venv/bin/python bench/cache_bench.py [--requests 1000] [--rounds 5] [--redis redis://127.0.0.1:6379/12]
  .venv/bin/python bench/cache_bench.py --semantic [--requests 1000] [--rounds 5] [--redis ...]

Kinds run in interleaved rounds; per kind, the median round's CPU and latency over all rounds.

The Redis database given is flushed before and after. Loopback only.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
KEY = "sk-bench-cache-key-0001"
TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"nothing listens on port {port}")


def tree_cpu(root: int) -> float:
    """CPU seconds (user + system) of `root` and every process below it."""
    parents: dict[int, int] = {}
    times: dict[int, float] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            text = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = text[text.rfind(")") + 2 :].split()
        parents[int(entry)] = int(fields[1])
        times[int(entry)] = (int(fields[11]) + int(fields[12])) / TICKS
    wanted = {root}
    changed = True
    while changed:
        changed = False
        for pid, ppid in parents.items():
            if ppid in wanted and pid not in wanted:
                wanted.add(pid)
                changed = True
    return sum(times.get(pid, 0.0) for pid in wanted)


SEMANTIC_BASE = "please summarise the quarterly sales report for the northern region in three bullet points"


def random_words(n: int) -> str:
    return " ".join(uuid.uuid4().hex[:6] for _ in range(n))


def start_gateway(
    upstream_port: int, workdir: Path, redis: str | None, semantic: bool = False
) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    config: dict[str, Any] = {
        "database": f"sqlite:///{workdir}/bench.db",
        "keys": [{"key": KEY, "name": "bench"}],
        "upstreams": {"up": {"base_url": f"http://127.0.0.1:{upstream_port}/v1", "api_key": "sk-up"}},
        "models": {"bench-model": "up"},
        "prices": {"bench-model": {"input": 0.15, "output": 0.6}},
        "cache": {"enabled": True, "ttl_s": 3600, "backend": "redis" if redis else "memory"},
    }
    if semantic:
        config["models"]["bench-embed"] = "up"
        config["prices"]["bench-embed"] = {"input": 0.02, "output": 0.0}
        config["cache"]["semantic"] = {"embedding_model": "bench-embed", "threshold": 0.9}
        config["cache"]["models"] = {"bench-model": {"semantic": True}}
    if redis:
        config["redis"] = redis
    path = workdir / "sluicegate.json"  # JSON is YAML
    path.write_text(json.dumps(config))
    log = open(workdir / "gateway.log", "wb")  # noqa: SIM115 - closed with the process
    proc = subprocess.Popen(
        [sys.executable, "-m", "sluicegate", "serve", "--config", str(path), "--port", str(port)],
        stdout=log,
        stderr=log,
        cwd=workdir,
    )
    wait_port(port)
    return proc, port


def body(prompt: str, stream: bool = False) -> bytes:
    return json.dumps(
        {
            "model": "bench-model",
            "messages": [{"role": "user", "content": prompt}],
            "temperature": 0,
            "stream": stream,
        }
    ).encode()


def run(port: int, pid: int, kind: str, n: int, round_: int = 0, semantic: bool = False) -> dict[str, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    headers = {"authorization": f"Bearer {KEY}", "content-type": "application/json"}
    if kind == "bypass":
        headers["x-sluicegate-cache"] = "off"
    streamed = kind.endswith("_stream")
    fixed = body(SEMANTIC_BASE if semantic else "the same question", stream=streamed)

    def next_body(i: int) -> bytes:
        if kind == "miss":  # random words: far from every stored prompt
            return body(random_words(12) if semantic else f"new question {round_} {i} {time.time_ns()}")
        if kind.startswith("semantic_hit"):  # the stored prompt and one new word: ~0.97 similar
            return body(f"{SEMANTIC_BASE} {random_words(1)}", stream=streamed)
        return fixed

    # Warm up (and, for hits, fill the cache).
    conn.request("POST", "/v1/chat/completions", body(SEMANTIC_BASE) if semantic else fixed, headers)
    conn.getresponse().read()
    for i in range(50):
        conn.request("POST", "/v1/chat/completions", next_body(i), headers)
        conn.getresponse().read()
    latencies = []
    cpu0 = tree_cpu(pid)
    t0 = time.perf_counter()
    states: dict[str, int] = {}
    for i in range(n):
        payload = next_body(i)
        start = time.perf_counter()
        conn.request("POST", "/v1/chat/completions", payload, headers)
        resp = resp_ = conn.getresponse()
        resp_.read()
        latencies.append(time.perf_counter() - start)
        state = resp.getheader("x-sluicegate-cache") or "-"
        states[state] = states.get(state, 0) + 1
    wall = time.perf_counter() - t0
    cpu = tree_cpu(pid) - cpu0
    conn.close()
    latencies.sort()
    return {
        "kind": kind,
        "requests": n,
        "answers": states,
        "latencies": latencies,
        "cpu_us_per_request": round(cpu / n * 1e6, 1),
        "req_per_s": round(n / wall, 1),
    }


def rounds(port: int, pid: int, n: int, count: int, semantic: bool = False) -> list[dict[str, Any]]:
    """Interleaved rounds of every kind (a neighbour's burst hits all kinds alike); per kind the median
    round's CPU and the latency percentiles over all rounds."""
    if semantic:
        kinds: tuple[str, ...] = ("bypass", "miss", "hit", "semantic_hit", "semantic_hit_stream")
    else:
        kinds = ("bypass", "miss", "hit", "hit_stream")
    results: dict[str, list[dict[str, Any]]] = {k: [] for k in kinds}
    for r in range(count):
        for kind in kinds:
            results[kind].append(run(port, pid, kind, n, r, semantic))
    out = []
    for kind, runs in results.items():
        latencies = sorted(x for one in runs for x in one["latencies"])
        answers: dict[str, int] = {}
        for one in runs:
            for state, seen in one["answers"].items():
                answers[state] = answers.get(state, 0) + seen
        out.append(
            {
                "kind": kind,
                "requests": n * count,
                "answers": answers,
                "p50_ms": round(statistics.median(latencies) * 1000, 3),
                "p99_ms": round(latencies[int(len(latencies) * 0.99) - 1] * 1000, 3),
                "cpu_us_per_request": statistics.median(one["cpu_us_per_request"] for one in runs),
                "req_per_s": statistics.median(one["req_per_s"] for one in runs),
            }
        )
    return out


def index_search(searches: int = 2000) -> dict[str, Any]:
    """One search of a full partition (1,000 prompts of 1,536 dimensions) in the usearch index, in
    process: what the semantic stage adds besides its embedding call and one store read."""
    import numpy as np

    from sluicegate.cache.semantic.index import PartitionIndex, normalised

    rng = np.random.default_rng(7)
    index = PartitionIndex(1536, max_entries=1000)
    far = time.time() + 3600
    vectors = [normalised(rng.standard_normal(1536)) for _ in range(1000)]
    t0 = time.perf_counter()
    for i, v in enumerate(vectors):
        index.add_many([(f"k{i}", v, far)])
    add_us = (time.perf_counter() - t0) / len(vectors) * 1e6
    queries = [normalised(vectors[i % 1000] + 0.004 * rng.standard_normal(1536)) for i in range(searches)]
    times = []
    found = 0
    for q in queries:
        start = time.perf_counter()
        match = index.nearest(q, 0.9)
        times.append(time.perf_counter() - start)
        found += match is not None
    times.sort()
    return {
        "kind": "index_search",
        "partition": len(index),
        "dims": 1536,
        "found": found,
        "searches": searches,
        "search_p50_us": round(statistics.median(times) * 1e6, 1),
        "search_p99_us": round(times[int(len(times) * 0.99) - 1] * 1e6, 1),
        "add_us": round(add_us, 1),
    }


def flush(url: str) -> None:
    import redis

    client = redis.Redis.from_url(url)
    client.flushdb()
    client.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int, default=1000, help="requests per kind per round")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--redis", default="redis://127.0.0.1:6379/12", help="'' to skip the Redis backend")
    ap.add_argument("--semantic", action="store_true", help="measure the semantic stage (see above)")
    args = ap.parse_args()
    if args.semantic:
        print(json.dumps(index_search()), flush=True)
    up_port = free_port()
    upstream = subprocess.Popen([sys.executable, str(HERE / "upstream.py"), "--port", str(up_port)])
    try:
        wait_port(up_port)
        for backend in ("memory", "redis"):
            redis = args.redis if backend == "redis" else None
            if backend == "redis" and not redis:
                continue
            if redis:
                flush(redis)
            with tempfile.TemporaryDirectory(prefix="sg-cache-bench-") as tmp:
                proc, port = start_gateway(up_port, Path(tmp), redis, args.semantic)
                try:
                    for result in rounds(port, proc.pid, args.requests, args.rounds, args.semantic):
                        print(json.dumps({"backend": backend, **result}), flush=True)
                finally:
                    proc.terminate()
                    proc.wait(15)
            if redis:
                flush(redis)
    finally:
        upstream.terminate()
        upstream.wait(5)


if __name__ == "__main__":
    main()
