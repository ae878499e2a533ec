"""Instructions per request of the serving worker, under callgrind: a load-independent A/B measure.

    .venv/bin/python bench/instr.py [--configs relay,keys,full] [-n 1000] [--warmup 300] [-c 8]
                                    [--uport 9150] [--port 8295] [--candidate granian_aiohttp] [--keep DIR]

The machine is shared, so wall-clock A/B moves ±4 % between identical rounds; this counts the
instructions (valgrind's `Ir`, every thread of the worker: Python, Granian's Rust runtime thread, the
log writer) executed while the worker serves exactly N requests. For each configuration it starts the
system under `valgrind --tool=callgrind --trace-children=yes --instr-atstart=no` (start-up runs
uninstrumented), finds the worker (the process that accepted the connections), switches
instrumentation on for it (`callgrind_control -i on`), sends the warm-up requests, zeroes the counters,
sends N requests over C keep-alive connections (each connection one request at a time; the same
small chat completion as bench/wrk/chat.lua), dumps and reads the total. Prints one JSON line per
configuration (`instr_per_req`), and with `--keep DIR` copies the dump into DIR for callgrind_annotate. `--native`
runs the same steps without valgrind and prints the worker's CPU µs/request instead (load-dependent).

`relay` is bench/candidates/<candidate>.py under Granian (the flags phase2.sh uses); `keys` and `full`
are `sluicegate serve` with the configurations of phase2.sh. The stand-in upstream (bench/upstream.py)
runs natively on core 1. Work that is paced by the clock rather than by requests (the request log's
flush timer, deadline sweeps) runs ~50× more often per request under valgrind than natively, so keep
N the same across an A/B; the figure is for comparison, not an absolute cost. That work also runs
while nothing is sent (the key and catalog revision polls, sweeps: ~3.6 M instructions a second under
valgrind), so a run that took longer (a busier machine) counts more of it: `--idle S` leaves the worker
alone S seconds after the run and adds `net_instr_per_req`, the count less that rate × the run's wall
time.
"""

from __future__ import annotations

import argparse
import asyncio
import glob
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KEY = "sk-bench-phase2-0123456789abcdef0123"
BODY = b'{"model":"bench-model","messages":[{"role":"user","content":"Hello, how are you?"}],"max_tokens":16}'
LIMITS = {
    "keys": "rpm: 1000000000",
    "full": "rpm: 1000000000, tpm: 1000000000000, concurrency: 100000, budget_tokens_day: 1000000000000000",
}


def listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def wait_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 600) -> None:
    end = time.time() + timeout
    while time.time() < end:
        if proc.poll() is not None:
            raise SystemExit(f"the system under test exited ({proc.returncode})")
        if listening(port):
            return
        time.sleep(0.5)
    raise SystemExit(f"nothing listening on :{port}")


def request_bytes(key: str) -> bytes:
    return (
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Authorization: Bearer %s\r\nContent-Length: %d\r\n\r\n%s" % (key.encode(), len(BODY), BODY)
    )


async def one_conn(port: int, req: bytes, count: int) -> int:
    """`count` requests one after another on one keep-alive connection; returns the non-200 count."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    bad = 0
    for _ in range(count):
        writer.write(req)
        head = await reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        if status != 200:
            bad += 1
        m = re.search(rb"(?i)\r\ncontent-length:\s*(\d+)", head)
        if m:
            await reader.readexactly(int(m.group(1)))
        else:  # chunked
            while True:
                size = int((await reader.readuntil(b"\r\n")).strip(), 16)
                await reader.readexactly(size + 2)
                if size == 0:
                    break
    writer.close()
    return bad


async def drive(port: int, key: str, n: int, conns: int) -> int:
    req = request_bytes(key)
    per = [n // conns + (1 if i < n % conns else 0) for i in range(conns)]
    return sum(await asyncio.gather(*(one_conn(port, req, k) for k in per if k)))


def send(port: int, key: str, n: int, conns: int) -> None:
    bad = asyncio.run(drive(port, key, n, conns))
    if bad:
        raise SystemExit(f"{bad} of {n} requests did not answer 200")


def descendants(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    kids = [int(p) for p in out]
    return kids + [d for k in kids for d in descendants(k)]


def worker_pid(root: int) -> int:
    """Granian's worker: the one descendant of the root without children (the root itself if none)."""
    procs = [root, *descendants(root)]
    leaves = [p for p in procs if not descendants(p)]
    if len(leaves) != 1:
        raise SystemExit(f"expected one worker under {root}, found {leaves}")
    return leaves[0]


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process (all its threads)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def ctl(*args: str) -> str:
    res = subprocess.run(["callgrind_control", *args], capture_output=True, text=True, timeout=300)
    return res.stdout + res.stderr


def totals(path: str) -> int:
    with open(path) as f:
        for line in f:
            if line.startswith(("totals:", "summary:")):
                return int(line.split()[1])
    raise SystemExit(f"no totals in {path}")


def measure(cfg: str, args: argparse.Namespace, rundir: str) -> dict[str, object]:
    py = os.path.join(ROOT, ".venv", "bin", "python")
    binp = os.path.dirname(py)
    env = dict(os.environ, BENCH_UPSTREAM=f"http://127.0.0.1:{args.uport}/v1", PYTHONUNBUFFERED="1")
    port = args.port
    out = os.path.join(rundir, f"cg.{cfg}.%p")
    vg = [
        "valgrind",
        "--tool=callgrind",
        "--trace-children=yes",
        "--instr-atstart=no",
        f"--callgrind-out-file={out}",
        "--vgdb=yes",
    ]
    if cfg == "relay":
        cmd = [
            os.path.join(binp, "granian"), "--interface", "rsgi", "--host", "127.0.0.1", "--no-ws",
            "--log-level", "warning", "--runtime-mode", "mt", "--loop", "uvloop", "--http", "1",
            "--port", str(port), f"bench.candidates.{args.candidate}:app",
        ]  # fmt: skip
        key = "x"
    else:
        conf = os.path.join(rundir, f"{cfg}.yaml")
        with open(conf, "w") as f:
            f.write(
                f'upstreams:\n  bench:\n    base_url: "http://127.0.0.1:{args.uport}/v1"\n    api_key: "x"\n'
                f"models:\n  bench-model: bench\n"
                f'keys:\n  - {{key: "{KEY}", name: bench, {LIMITS[cfg]}}}\n'
                f'database: "sqlite:///{rundir}/{cfg}.db"\n'
            )
        cmd = [os.path.join(binp, "sluicegate"), "serve", "--config", conf, "--port", str(port)]
        key = KEY
    log = open(os.path.join(rundir, f"{cfg}.log"), "wb")
    proc = subprocess.Popen(
        ["taskset", "-c", "0", *([] if args.native else vg), *cmd],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        wait_port(port, proc)
        send(port, key, 2, 2)  # a first answer: the worker has connections now
        worker = worker_pid(proc.pid)
        if args.native:
            send(port, key, args.warmup, args.conns)
            c0, t0 = cpu_s(worker), time.time()
            send(port, key, args.n, args.conns)
            wall, cpu = time.time() - t0, cpu_s(worker) - c0
            return {
                "mode": "cpu",
                "config": cfg if cfg != "relay" else f"relay:{args.candidate}",
                "n": args.n,
                "conns": args.conns,
                "cpu_us_per_req": round(cpu * 1e6 / args.n, 1),
                "rps": round(args.n / wall),
            }
        ctl("-i", "on", str(worker))
        send(port, key, args.warmup, args.conns)
        ctl("-z", str(worker))
        t0 = time.time()
        send(port, key, args.n, args.conns)
        wall = time.time() - t0
        for f in glob.glob(out.replace("%p", str(worker)) + "*"):
            os.unlink(f)
        ctl("-d", str(worker))
        dumps = sorted(glob.glob(out.replace("%p", str(worker)) + "*"), key=os.path.getmtime)
        if not dumps:
            raise SystemExit("callgrind wrote no dump")
        ir = totals(dumps[-1])
        if args.keep:
            os.makedirs(args.keep, exist_ok=True)
            keep = os.path.join(args.keep, f"callgrind.{cfg}")
            shutil.copy(dumps[-1], keep)
        idle = None
        if args.idle:  # the same worker left alone: what clock-paced work costs per second of wall time
            for f in dumps:
                os.unlink(f)
            ctl("-z", str(worker))
            time.sleep(args.idle)
            ctl("-d", str(worker))
            later = sorted(glob.glob(out.replace("%p", str(worker)) + "*"), key=os.path.getmtime)
            idle = totals(later[-1]) / args.idle
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()
    res: dict[str, object] = {
        "mode": "instr",
        "config": cfg if cfg != "relay" else f"relay:{args.candidate}",
        "n": args.n,
        "conns": args.conns,
        "instr": ir,
        "instr_per_req": round(ir / args.n),
        "wall_s": round(wall, 1),
    }
    if idle is not None:
        res["idle_per_s"] = round(idle)
        res["net_instr_per_req"] = round((ir - idle * wall) / args.n)
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--configs", default="relay,keys,full")
    ap.add_argument("-n", type=int, default=1000)
    ap.add_argument("--warmup", type=int, default=300)
    ap.add_argument("-c", "--conns", type=int, default=8)
    ap.add_argument("--uport", type=int, default=9150)
    ap.add_argument("--port", type=int, default=8295)
    ap.add_argument("--candidate", default="granian_aiohttp")
    ap.add_argument("--keep", default="", help="a directory to copy each callgrind dump into")
    ap.add_argument("--label", default="")
    ap.add_argument("--native", action="store_true", help="no valgrind: CPU µs/request of the worker instead")
    ap.add_argument(
        "--idle",
        type=float,
        default=0,
        help="then leave the worker idle this many seconds and subtract that rate × the run's wall time",
    )
    args = ap.parse_args()
    if shutil.which("valgrind") is None:
        sys.exit("valgrind is not installed (apt-get install valgrind)")
    up = None
    if not listening(args.uport):
        py = os.path.join(ROOT, ".venv", "bin", "python")
        up = subprocess.Popen(
            ["taskset", "-c", "1", py, "bench/upstream.py", "--port", str(args.uport)], cwd=ROOT
        )
        for _ in range(50):
            if listening(args.uport):
                break
            time.sleep(0.1)
    rundir = tempfile.mkdtemp(prefix="sluicegate-instr-")
    try:
        for cfg in args.configs.split(","):
            res = measure(cfg, args, rundir)
            if args.label:
                res["label"] = args.label
            print(json.dumps(res), flush=True)
    finally:
        if up is not None:
            up.terminate()
            up.wait()
        shutil.rmtree(rundir, ignore_errors=True)


if __name__ == "__main__":
    main()
