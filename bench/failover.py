"""Failover benchmark: throughput and latency while one of a model's two channels is down.

    .venv/bin/python bench/failover.py [--duration 10] [--rate 1000] [--scenarios baseline refused hang]

Scenarios (one fresh gateway each, so every breaker starts closed; model `bench-model` has two
channels of weight 1, `a` and `b`):

  baseline  a and b both point at the stand-in bench upstream (bench/upstream.py)
  refused   b points at a port nobody listens on: connection refused, failover to a at once
  hang      b points at a "black hole" that accepts connections and never answers: each attempt on b
            costs its first_byte timeout (`--hang-first-byte`, 1 s) before failing over to a, until
            b's breaker opens (default breaker: 5 consecutive failures, or half of >= 20 in a minute)

Steps per scenario, load generators from bench/loadgen.py (the other engineer's tool, unchanged):
  1. closed loop, 32 connections, `--duration` s, NO warm-up: the transition (failures, breaker
     opening) is in the figures;
  2. /readyz channel snapshot (requests, failures, state of b);
  3. open loop at `--rate` req/s for `--duration` s, interleaved with a direct baseline (added latency).

Rig as in bench/README.md: gateway pinned to core 0, upstream and generators on core 1, SCHED_RR
(`NICE`, default `chrt -r 1`; the upstream one above) because the machine is shared; every step
runs under bench/quiet.py, which records how much CPU other work used meanwhile (foreign_cpu_frac).
Results: JSON lines in bench/results/failover-DATE.jsonl and a table in bench/results/failover.md.
Loopback only. Everything started is stopped (by pid) at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = ("baseline", "refused", "hang")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


# -- the black hole: accepts, reads, never answers -------------------------------------------------


async def black_hole(port: int) -> None:
    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while await reader.read(65536):
                pass
        finally:
            writer.close()

    server = await asyncio.start_server(hold, "127.0.0.1", port, backlog=1024)
    async with server:
        await server.serve_forever()


# -- the rig ------------------------------------------------------------------------------------


class Rig:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.py = args.python
        self.nice = shlex.split(args.nice)
        self.up_nice = shlex.split(args.up_nice)
        self.procs: list[subprocess.Popen[bytes]] = []
        self.upstream_pid: int | None = None
        self.upstream_url = ""
        self.black_hole_url = ""
        self.workdir = Path(tempfile.mkdtemp(prefix="sluicegate-failover-"))

    def spawn(self, cmd: list[str], **kwargs: object) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(cmd, **kwargs)  # type: ignore[call-overload]
        self.procs.append(proc)
        return proc

    def stop(self, proc: subprocess.Popen[bytes]) -> None:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        if proc in self.procs:
            self.procs.remove(proc)

    def close(self) -> None:
        for proc in list(reversed(self.procs)):
            self.stop(proc)

    def start_upstream(self) -> str:
        port = self.args.upstream_port or free_port()
        if not listening(port):
            proc = self.spawn(
                [*self.up_nice, "taskset", "-c", "1", self.py, "bench/upstream.py", "--port", str(port)],
                cwd=ROOT,
            )
            self.upstream_pid = proc.pid
            wait_for(lambda: listening(port), 10, f"bench upstream on :{port}")
        return f"http://127.0.0.1:{port}/v1"

    def start_black_hole(self) -> str:
        port = free_port()
        self.spawn(["taskset", "-c", "1", self.py, __file__, "--black-hole", str(port)], cwd=ROOT)
        wait_for(lambda: listening(port), 10, f"black hole on :{port}")
        return f"http://127.0.0.1:{port}/v1"

    def start_gateway(
        self, name: str, b_url: str, b_timeouts: dict[str, float] | None
    ) -> tuple[subprocess.Popen[bytes], int]:
        port = free_port()
        conf_dir = self.workdir / name
        conf_dir.mkdir()
        b = {"base_url": b_url, "api_key": "x"}
        if b_timeouts:
            b["timeouts"] = b_timeouts
        config = {
            "upstreams": {"a": {"base_url": self.upstream_url, "api_key": "x"}, "b": b},
            "models": {"bench-model": [{"upstream": "a", "weight": 1}, {"upstream": "b", "weight": 1}]},
        }
        (conf_dir / "sluicegate.yaml").write_text(json.dumps(config))  # JSON is YAML
        bin_dir = Path(self.py).parent
        log = open(conf_dir / "gateway.log", "wb")  # noqa: SIM115 - closed with the process
        proc = self.spawn(
            [
                *self.nice,
                "taskset",
                "-c",
                "0",
                str(bin_dir / "sluicegate"),
                "serve",
                "--config",
                str(conf_dir / "sluicegate.yaml"),
                "--port",
                str(port),
            ],
            cwd=conf_dir,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        wait_for(
            lambda: proc.poll() is None and get(port, "/healthz")[0] == 200,
            60,
            f"gateway {name}",
            failed=lambda: proc.poll() is not None,
        )
        return proc, port

    def loadgen(self, sut_pid: int, *mode_args: str) -> dict[str, object]:
        pids = ",".join(str(p) for p in (sut_pid, self.upstream_pid) if p)
        cmd = [
            self.py,
            "bench/quiet.py",
            "--pids",
            pids,
            *shlex.split(self.args.quiet_args),
            "--",
            *self.nice,
            "taskset",
            "-c",
            "1",
            self.py,
            "bench/loadgen.py",
            *mode_args,
        ]
        out = subprocess.run(cmd, cwd=ROOT, stdout=subprocess.PIPE, text=True, check=True).stdout
        return json.loads(out.strip().splitlines()[-1])


def wait_for(predicate, timeout: float, what: str, failed=lambda: False) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if failed():
            raise SystemExit(f"{what} exited before it was ready")
        try:
            if predicate():
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"{what} not ready within {timeout} s")


def get(port: int, path: str) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read()
    except OSError:
        return 0, b""
    finally:
        conn.close()


def channel_view(port: int) -> dict[str, dict[str, object]]:
    _, body = get(port, "/readyz")
    keep = ("state", "requests", "failures", "trips", "consecutive_failures", "last_error", "ewma_latency_s")
    # "<first upstream>/*" is the gateway's route for requests naming no model: not one of ours
    return {
        c["upstream"]: {k: c.get(k) for k in keep}
        for c in json.loads(body)["channels"]
        if not c["name"].endswith("/*")
    }


def run_scenario(rig: Rig, name: str) -> dict[str, object]:
    args = rig.args
    b_timeouts = None
    if name == "baseline":
        b_url = rig.upstream_url
    elif name == "refused":
        b_url = f"http://127.0.0.1:{free_port()}/v1"  # nobody listens: connection refused
    else:
        b_url = rig.black_hole_url
        b_timeouts = {"first_byte": args.hang_first_byte}
    proc, port = rig.start_gateway(name, b_url, b_timeouts)
    target = f"http://127.0.0.1:{port}/v1"
    try:
        print(f"== {name}: gateway pid {proc.pid} on :{port}", file=sys.stderr, flush=True)
        closed = rig.loadgen(
            proc.pid,
            "throughput",
            "--target",
            target,
            "-c",
            "32",
            "-d",
            str(args.duration),
            "--warmup",
            "0",
            "--label",
            f"failover-{name}",
        )
        after_closed = channel_view(port)
        opened = rig.loadgen(
            proc.pid,
            "openloop",
            "--upstream",
            rig.upstream_url,
            "--target",
            target,
            "-r",
            str(args.rate),
            "-d",
            str(args.duration),
            "--label",
            f"failover-{name}",
        )
        after_open = channel_view(port)
    finally:
        rig.stop(proc)
    return {
        "scenario": name,
        "closed_loop": closed,
        "channels_after_closed_loop": after_closed,
        "open_loop": opened,
        "channels_after_open_loop": after_open,
        "hang_first_byte_s": args.hang_first_byte if name == "hang" else None,
    }


# -- the report ------------------------------------------------------------------------------------


def markdown(results: list[dict], args: argparse.Namespace, commit: str, started: str) -> str:
    lines = [
        "# Failover: one of two channels down",
        "",
        (
            f"Run {started} UTC, commit `{commit}`, `bench/failover.py --duration {args.duration} --rate {args.rate}`"
            f" (hang: first_byte {args.hang_first_byte:g} s on the hanging channel; default breaker: 5 consecutive"
            " failures or half of >= 20 in a minute, cooldown 10 s doubling)."
        ),
        "Model `bench-model` = channels `a` and `b`, weight 1 each; `a` is the stand-in bench upstream.",
        "Gateway pinned to core 0, upstream and load generators on core 1, SCHED_RR; a fresh gateway per scenario.",
        (
            "`foreign CPU` is the share of a core other work on this shared machine used during the step"
            " (bench/quiet.py): figures with a high value are noisy."
        ),
        "",
        "## Closed loop (32 connections, no warm-up: the breaker's opening is included)",
        "",
        "| scenario | req/s | p50 ms | p99 ms | p99.9 ms | max ms | errors (non-200) | b: attempts / failures / state after | foreign CPU |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        c, lat, b = (
            r["closed_loop"],
            r["closed_loop"]["latency"],
            r["channels_after_closed_loop"].get("b", {}),
        )
        lines.append(
            f"| {r['scenario']} | {c['rps']:,.0f} | {lat['p50_ms']:.2f} | {lat['p99_ms']:.2f} | "
            f"{lat['p999_ms']:.2f} | {lat['max_ms']:.1f} | {c['errors']} | "
            f"{b.get('requests')} / {b.get('failures')} / {b.get('state')} | {c.get('foreign_cpu_frac', '?')} |"
        )
    lines += [
        "",
        f"## Open loop ({args.rate:g} req/s for {args.duration:g} s after the closed loop, direct baseline interleaved)",
        "",
        "| scenario | via p50 ms | via p99 ms | via p99.9 ms | direct p50 / p99 ms | added p50 / p99 ms | errors | unfinished | b: state after | foreign CPU |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        o, v, d = r["open_loop"], r["open_loop"]["via_target"], r["open_loop"]["direct"]
        b = r["channels_after_open_loop"].get("b", {})
        lines.append(
            f"| {r['scenario']} | {v['p50_ms']:.2f} | {v['p99_ms']:.2f} | {v['p999_ms']:.2f} | "
            f"{d['p50_ms']:.2f} / {d['p99_ms']:.2f} | {o['added_p50_ms']:.2f} / {o['added_p99_ms']:.2f} | "
            f"{v['errors']} | {o['unfinished']} | {b.get('state')} | {o.get('foreign_cpu_frac', '?')} |"
        )
    out = Path(args.out).resolve()
    lines += ["", f"Raw JSON lines: `{out.relative_to(ROOT) if out.is_relative_to(ROOT) else out}`.", ""]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--black-hole", type=int, metavar="PORT", help=argparse.SUPPRESS)
    ap.add_argument("--scenarios", nargs="+", choices=SCENARIOS, default=list(SCENARIOS))
    ap.add_argument("--duration", type=float, default=10.0, help="seconds per load step")
    ap.add_argument("--rate", type=float, default=1000.0, help="open-loop req/s")
    ap.add_argument(
        "--hang-first-byte", type=float, default=1.0, help="first_byte timeout of the hanging channel"
    )
    ap.add_argument(
        "--upstream-port",
        type=int,
        default=int(os.environ.get("UPORT", "0")),
        help="reuse the bench upstream listening there; default: start one of our own on a free port",
    )
    ap.add_argument("--python", default=os.environ.get("PY", str(ROOT / ".venv/bin/python")))
    ap.add_argument("--nice", default=os.environ.get("NICE", "chrt -r 1"))
    ap.add_argument("--up-nice", default=os.environ.get("UP_NICE", "chrt -r 2"))
    ap.add_argument("--quiet-args", default=os.environ.get("QUIET_ARGS", "--max-wait 5 --retries 0"))
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M")
    ap.add_argument("--out", default=str(ROOT / f"bench/results/failover-{stamp}.jsonl"))
    ap.add_argument("--md", default=str(ROOT / "bench/results/failover.md"))
    args = ap.parse_args()
    if args.black_hole:
        asyncio.run(black_hole(args.black_hole))
        return

    started = datetime.now(UTC).strftime("%Y-%m-%d %H:%M")
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=False
    ).stdout.strip()
    rig = Rig(args)
    results = []
    try:
        rig.upstream_url = rig.start_upstream()
        rig.black_hole_url = rig.start_black_hole() if "hang" in args.scenarios else ""
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        for name in args.scenarios:
            result = run_scenario(rig, name)
            results.append(result)
            with open(args.out, "a") as f:
                f.write(json.dumps({"commit": commit, **result}) + "\n")
    finally:
        rig.close()
    Path(args.md).write_text(markdown(results, args, commit, started))
    print(Path(args.md).read_text())


if __name__ == "__main__":
    main()
