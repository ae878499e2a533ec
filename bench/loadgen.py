"""Load generator for Sluicegate benchmarks: raw asyncio sockets on uvloop, httptools parsing.

Every mode takes OpenAI-style base URLs (".../v1"); requests go to {base}/chat/completions.
`--upstream` is the stand-in upstream reached directly, `--target` the system under test.

  throughput   closed loop: C connections for T seconds -> req/s, p50/p99 (use --stream for SSE)
  sequential   one request at a time, alternately direct and through the target -> added p50/p99
  openloop     requests sent on a fixed schedule at R req/s to the target, interleaved with a direct
               baseline at R/4 req/s -> added p50/p99/p99.9
  slowstreams  N concurrent streams of K chunks D ms apart -> peak RSS / CPU of --pid's process tree,
               inter-chunk gaps vs D (per-chunk added delay), direct baseline first

Output: a human summary on stderr and one JSON object on stdout (append it to bench/results/).
Loopback only: the tool refuses any other host.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from urllib.parse import urlsplit

import httptools

BODY = b'{"model":"bench-model","messages":[{"role":"user","content":"Hello, how are you?"}],"max_tokens":16}'
BODY_STREAM = BODY[:-1] + b',"stream":true}'
LOOPBACK = {"127.0.0.1", "localhost", "::1"}
perf = time.perf_counter


class Target:
    """A parsed base URL and the precomputed request bytes for it."""

    def __init__(self, base_url: str, key: str = "x", headers: list[str] | None = None) -> None:
        u = urlsplit(base_url)
        if u.hostname not in LOOPBACK:
            raise SystemExit(f"refusing non-loopback target {base_url}")
        self.host = u.hostname
        self.port = u.port or 80
        self.path = u.path.rstrip("/") + "/chat/completions"
        self.key = key
        self.url = base_url
        # extra "Name: value" request headers (a peer gateway told where the upstream is, e.g. Portkey's
        # x-portkey-provider / x-portkey-custom-host); sent to the target only
        self.headers = list(headers or [])

    def request(self, stream: bool = False, extra: dict[str, str] | None = None, user: str = "") -> bytes:
        body = BODY_STREAM if stream else BODY
        if user:
            body = body[:-1] + b',"user":"' + user.encode() + b'"}'
        lines = [
            f"POST {self.path} HTTP/1.1",
            f"Host: {self.host}:{self.port}",
            "Content-Type: application/json",
            f"Authorization: Bearer {self.key}",
            f"Content-Length: {len(body)}",
        ]
        lines.extend(self.headers)
        for k, v in (extra or {}).items():
            lines.append(f"{k}: {v}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


class Conn(asyncio.Protocol):
    """One keep-alive HTTP/1.1 client connection; one request in flight at a time."""

    def __init__(self) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        self.fut: asyncio.Future | None = None
        self.events = 0
        self.nbytes = 0
        self.event_times: list[float] | None = None
        self.lost = False
        self.cb = None  # open-loop mode: called as cb(conn, status) instead of resolving a future
        self.t0 = 0.0

    @classmethod
    async def open(cls, t: Target) -> Conn:
        loop = asyncio.get_running_loop()
        _, proto = await loop.create_connection(cls, t.host, t.port)
        return proto

    def connection_made(self, transport):  # noqa: D401
        self.transport = transport

    def connection_lost(self, exc):
        self.lost = True
        if self.cb is not None:
            cb, self.cb = self.cb, None
            cb(self, -1)
        if self.fut is not None and not self.fut.done():
            self.fut.set_exception(ConnectionError("connection lost"))

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            pass
        except Exception as e:  # parse error
            if self.fut is not None and not self.fut.done():
                self.fut.set_exception(e)

    def on_body(self, body: bytes) -> None:
        self.nbytes += len(body)
        if self.event_times is not None:
            n = body.count(b"data: ")
            if n:
                now = perf()
                self.events += n
                self.event_times.extend([now] * n)

    def on_message_complete(self) -> None:
        if self.cb is not None:
            cb, self.cb = self.cb, None
            cb(self, self.parser.get_status_code())
            return
        fut = self.fut
        if fut is not None and not fut.done():
            fut.set_result(self.parser.get_status_code())

    def send(self, req: bytes, track_events: bool = False) -> asyncio.Future:
        self.fut = asyncio.get_running_loop().create_future()
        self.events = 0
        self.nbytes = 0
        self.event_times = [] if track_events else None
        self.transport.write(req)
        return self.fut

    def send_cb(self, req: bytes, cb) -> None:
        """Send without a future or a task: the cheapest path, for open-loop rates."""
        self.fut = None
        self.event_times = None
        self.cb = cb
        self.t0 = perf()
        self.transport.write(req)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


def pct(sorted_vals: list[float], p: float) -> float:
    if not sorted_vals:
        return float("nan")
    i = min(len(sorted_vals) - 1, max(0, int(round(p / 100.0 * len(sorted_vals) + 0.5)) - 1))
    return sorted_vals[i]


def summary_ms(lat_s: list[float]) -> dict[str, float]:
    v = sorted(lat_s)
    return {
        "n": len(v),
        "p50_ms": round(pct(v, 50) * 1e3, 4),
        "p99_ms": round(pct(v, 99) * 1e3, 4),
        "p999_ms": round(pct(v, 99.9) * 1e3, 4),
        "max_ms": round((v[-1] if v else float("nan")) * 1e3, 4),
        "mean_ms": round(sum(v) / len(v) * 1e3, 4) if v else float("nan"),
    }


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- (a) / (d) closed loop


async def throughput(args) -> dict:
    t = Target(args.target, args.key, args.header)
    req = t.request(stream=args.stream)
    conns = [await Conn.open(t) for _ in range(args.connections)]
    lat: list[float] = []
    events: list[int] = []
    errors = 0
    stop_at = 0.0

    async def worker(c: Conn) -> None:
        nonlocal errors
        while perf() < stop_at:
            t0 = perf()
            try:
                status = await c.send(req, track_events=args.stream)
            except Exception:
                errors += 1
                return
            if status != 200:
                errors += 1
            lat.append(perf() - t0)
            if args.stream:
                events.append(c.events)

    # warm-up, then the measured run
    stop_at = perf() + args.warmup
    await asyncio.gather(*(worker(c) for c in conns))
    lat.clear()
    events.clear()
    start = perf()
    stop_at = start + args.duration
    await asyncio.gather(*(worker(c) for c in conns))
    elapsed = perf() - start
    for c in conns:
        c.close()
    out = {
        "mode": "throughput",
        "target": t.url,
        "stream": args.stream,
        "connections": args.connections,
        "duration_s": round(elapsed, 3),
        "requests": len(lat),
        "errors": errors,
        "rps": round(len(lat) / elapsed, 1),
        "latency": summary_ms(lat),
    }
    if args.stream:
        out["events_per_stream_min"] = min(events) if events else 0
        out["events_per_stream_max"] = max(events) if events else 0
    log(
        f"throughput {t.url} stream={args.stream} c={args.connections}: {out['rps']} req/s, "
        f"p50 {out['latency']['p50_ms']} ms, p99 {out['latency']['p99_ms']} ms, errors {errors}"
        + (
            f", events/stream {out['events_per_stream_min']}..{out['events_per_stream_max']}"
            if args.stream
            else ""
        )
    )
    return out


# ---------------------------------------------------------------- (b) sequential added latency


async def sequential(args) -> dict:
    up, tg = Target(args.upstream, args.key), Target(args.target, args.key, args.header)
    rq_up, rq_tg = up.request(stream=args.stream), tg.request(stream=args.stream)
    cu, ct = await Conn.open(up), await Conn.open(tg)
    lu: list[float] = []
    lt: list[float] = []
    diffs: list[float] = []
    for i in range(args.warmup + args.requests):
        # alternate which goes first so neither side always follows the other
        pair = [(cu, rq_up, lu), (ct, rq_tg, lt)]
        if i % 2:
            pair.reverse()
        got = {}
        for c, rq, bucket in pair:
            t0 = perf()
            status = await c.send(rq)
            dt = perf() - t0
            if status != 200:
                raise SystemExit(f"status {status} from {'upstream' if c is cu else 'target'}")
            got[id(bucket)] = dt
            if i >= args.warmup:
                bucket.append(dt)
        if i >= args.warmup:
            diffs.append(got[id(lt)] - got[id(lu)])
    cu.close()
    ct.close()
    su, st = summary_ms(lu), summary_ms(lt)
    out = {
        "mode": "sequential",
        "upstream": up.url,
        "target": tg.url,
        "stream": args.stream,
        "requests": args.requests,
        "direct": su,
        "via_target": st,
        "added_p50_ms": round(st["p50_ms"] - su["p50_ms"], 4),
        "added_p99_ms": round(st["p99_ms"] - su["p99_ms"], 4),
        "paired_diff": summary_ms(diffs),
    }
    log(
        f"sequential n={args.requests}: direct p50 {su['p50_ms']} p99 {su['p99_ms']} | via p50 {st['p50_ms']} "
        f"p99 {st['p99_ms']} | added p50 {out['added_p50_ms']} ms, p99 {out['added_p99_ms']} ms"
    )
    return out


# ---------------------------------------------------------------- (c) open loop


class Pool:
    """Connections for open-loop sends: take an idle one or open a new one, never wait."""

    def __init__(self, t: Target) -> None:
        self.t = t
        self.idle: list[Conn] = []
        self.opened = 0
        self.inflight = [0]

    async def prewarm(self, n: int) -> None:
        for _ in range(n):
            self.idle.append(await Conn.open(self.t))
        self.opened = n

    def fire(self, req: bytes, sched: float, lat: list[float], lag: list[float], errs: list[int]) -> None:
        """Send now on an idle connection (or a new one); never waits for an answer."""
        inflight = self.inflight

        def done(c: Conn, status: int) -> None:
            inflight[0] -= 1
            if status == 200:
                lat.append(perf() - c.t0)
                self.idle.append(c)
            else:
                errs[0] += 1
                if status > 0:
                    self.idle.append(c)
                else:
                    c.close()

        inflight[0] += 1
        if self.idle:
            c = self.idle.pop()
            c.send_cb(req, done)
            lag.append(c.t0 - sched)
            return

        async def open_then_send() -> None:
            self.opened += 1
            try:
                c = await Conn.open(self.t)
            except Exception:
                inflight[0] -= 1
                errs[0] += 1
                return
            c.send_cb(req, done)
            lag.append(c.t0 - sched)

        asyncio.get_running_loop().create_task(open_then_send())

    def close(self) -> None:
        for c in self.idle:
            c.close()


async def openloop(args) -> dict:
    up, tg = Target(args.upstream, args.key), Target(args.target, args.key, args.header)
    targets = [("direct", up), ("via_target", tg)]
    pools = {name: Pool(t) for name, t in targets}
    reqs = {name: t.request(stream=args.stream) for name, t in targets}
    for p in pools.values():
        await p.prewarm(args.prewarm)
    res: dict[str, dict] = {}
    lat = {name: [] for name, _ in targets}
    lag = {name: [] for name, _ in targets}
    errs = {name: [0] for name, _ in targets}
    period = 1.0 / args.rate
    total = int(args.rate * (args.warmup + args.duration))
    warm_n = int(args.rate * args.warmup)
    start = perf() + 0.05
    k = 0  # next slot; slot k fires "via_target" at start+k*period and "direct" half a period later
    names = [n for n, _ in targets]
    # The direct side is a baseline sample: every `direct_every`-th slot, so the Python generator
    # sends 1.25x the rate rather than 2x (its own overhead stays off the figures at 2,500/s).
    direct_every = max(1, round(1 / args.direct_ratio))
    offsets = {"via_target": 0.0, "direct": period / 2}
    while k < total:
        now = perf()
        while k < total and start + k * period <= now:
            for name in names:
                if name == "direct" and k % direct_every:
                    continue
                sched = start + k * period + offsets[name]
                if k == warm_n and name == names[0]:
                    for n2 in names:
                        lat[n2].clear()
                        lag[n2].clear()
                        errs[n2][0] = 0
                pools[name].fire(reqs[name], sched, lat[name], lag[name], errs[name])
            k += 1
        if k < total:
            await asyncio.sleep(max(0.0, start + k * period - perf()))
    deadline = perf() + args.drain
    while any(p.inflight[0] for p in pools.values()) and perf() < deadline:
        await asyncio.sleep(0.01)
    unfinished = sum(p.inflight[0] for p in pools.values())
    for name, _ in targets:
        res[name] = summary_ms(lat[name])
        res[name]["errors"] = errs[name][0]
        res[name]["connections_opened"] = pools[name].opened
        lg = sorted(lag[name])
        res[name]["send_lag_p99_ms"] = round(pct(lg, 99) * 1e3, 4)
        pools[name].close()
    out = {
        "mode": "openloop",
        "upstream": up.url,
        "target": tg.url,
        "stream": args.stream,
        "rate_per_target": args.rate,
        "direct_rate": args.rate / direct_every,
        "duration_s": args.duration,
        "unfinished": unfinished,
        **res,
        "added_p50_ms": round(res["via_target"]["p50_ms"] - res["direct"]["p50_ms"], 4),
        "added_p99_ms": round(res["via_target"]["p99_ms"] - res["direct"]["p99_ms"], 4),
        "added_p999_ms": round(res["via_target"]["p999_ms"] - res["direct"]["p999_ms"], 4),
    }
    d, v = res["direct"], res["via_target"]
    log(
        f"openloop {args.rate}/s x {args.duration}s: direct p50 {d['p50_ms']} p99 {d['p99_ms']} p99.9 {d['p999_ms']} | "
        f"via p50 {v['p50_ms']} p99 {v['p99_ms']} p99.9 {v['p999_ms']} (conns {v['connections_opened']}, "
        f"errors {v['errors']}, unfinished {unfinished}) | added p50 {out['added_p50_ms']} p99 {out['added_p99_ms']} "
        f"p99.9 {out['added_p999_ms']} ms"
    )
    return out


# ---------------------------------------------------------------- (e) slow streams


CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def proc_tree(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat", "rb") as f:
                s = f.read()
        except OSError:
            continue
        ppid = int(s[s.rfind(b")") + 2 :].split()[1])
        children.setdefault(ppid, []).append(int(d))
    out, stack = [], [pid]
    while stack:
        p = stack.pop()
        out.append(p)
        stack.extend(children.get(p, []))
    return out


def tree_stats(pids: list[int]) -> tuple[int, float]:
    """(RSS bytes, CPU seconds user+system) summed over pids."""
    rss, cpu = 0, 0.0
    for p in pids:
        try:
            with open(f"/proc/{p}/stat", "rb") as f:
                s = f.read()
        except OSError:
            continue
        fields = s[s.rfind(b")") + 2 :].split()
        cpu += (int(fields[11]) + int(fields[12])) / CLK_TCK
        rss += int(fields[21]) * PAGE
    return rss, cpu


async def run_slow(t: Target, args, pid: int | None) -> dict:
    extra = {"x-bench-chunks": str(args.chunks), "x-bench-delay-ms": str(args.delay_ms)}
    req = t.request(stream=True, extra=extra, user=f"bench:{args.chunks}:{int(args.delay_ms)}")
    pids = proc_tree(pid) if pid else []
    rss0, cpu0 = tree_stats(pids) if pid else (0, 0.0)
    peak = [rss0]
    done = asyncio.Event()

    async def sampler() -> None:
        while not done.is_set():
            if pid:
                r, _ = tree_stats(pids)
                peak[0] = max(peak[0], r)
            await asyncio.sleep(0.05)

    samp = asyncio.create_task(sampler())
    gaps: list[float] = []
    first: list[float] = []
    totals: list[float] = []
    bad = 0
    errors = 0

    async def one(i: int) -> None:
        nonlocal bad, errors
        await asyncio.sleep(args.ramp * i / args.streams)
        try:
            c = await Conn.open(t)
            t0 = perf()
            status = await c.send(req, track_events=True)
        except Exception:
            errors += 1
            return
        ts = c.event_times or []
        c.close()
        if status != 200 or len(ts) != args.chunks + 2:
            bad += 1
        first.append(ts[0] - t0 if ts else float("nan"))
        totals.append(perf() - t0)
        # events 0..chunks: chunk 0, chunks 1..chunks-1 every delay, then the usage event
        for j in range(1, min(len(ts), args.chunks + 1)):
            gaps.append(ts[j] - ts[j - 1])

    t_start = perf()
    await asyncio.gather(*(one(i) for i in range(args.streams)))
    elapsed = perf() - t_start
    done.set()
    await samp
    rss1, cpu1 = tree_stats(proc_tree(pid)) if pid else (0, 0.0)
    d = args.delay_ms / 1e3
    extra_s = [g - d for g in gaps]
    return {
        "target": t.url,
        "streams": args.streams,
        "chunks": args.chunks,
        "delay_ms": args.delay_ms,
        "elapsed_s": round(elapsed, 3),
        "errors": errors,
        "bad_streams": bad,
        "gap_minus_delay": summary_ms(extra_s),
        "time_to_first_event": summary_ms(first),
        "stream_time": summary_ms(totals),
        "rss_before_mb": round(rss0 / 2**20, 1),
        "rss_peak_mb": round(peak[0] / 2**20, 1),
        "rss_after_mb": round(rss1 / 2**20, 1),
        "cpu_s": round(cpu1 - cpu0, 3),
        "pids": len(pids),
    }


async def slowstreams(args) -> dict:
    out: dict = {"mode": "slowstreams"}
    if args.upstream:
        out["direct"] = await run_slow(Target(args.upstream, args.key), args, None)
        await asyncio.sleep(0.5)
    out["via_target"] = await run_slow(Target(args.target, args.key, args.header), args, args.pid)
    v = out["via_target"]
    if "direct" in out:
        dg, vg = out["direct"]["gap_minus_delay"], v["gap_minus_delay"]
        out["added_gap_p50_ms"] = round(vg["p50_ms"] - dg["p50_ms"], 4)
        out["added_gap_p99_ms"] = round(vg["p99_ms"] - dg["p99_ms"], 4)
    log(
        f"slowstreams {args.streams}x{args.chunks}@{args.delay_ms}ms via {v['target']}: peak RSS {v['rss_peak_mb']} MB "
        f"(before {v['rss_before_mb']}), CPU {v['cpu_s']} s, gap-delay p50 {v['gap_minus_delay']['p50_ms']} "
        f"p99 {v['gap_minus_delay']['p99_ms']} max {v['gap_minus_delay']['max_ms']} ms, bad {v['bad_streams']}, "
        f"errors {v['errors']}"
        + (
            f" | direct gap-delay p50 {out['direct']['gap_minus_delay']['p50_ms']} p99 "
            f"{out['direct']['gap_minus_delay']['p99_ms']} -> added p50 {out['added_gap_p50_ms']} "
            f"p99 {out['added_gap_p99_ms']} ms"
            if "direct" in out
            else ""
        )
    )
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="mode", required=True)

    def common(p, need_upstream: bool) -> None:
        p.add_argument(
            "--target", required=True, help="base URL of the system under test, e.g. http://127.0.0.1:8000/v1"
        )
        p.add_argument("--upstream", required=need_upstream, help="base URL of the stand-in upstream, direct")
        p.add_argument("--label", default="", help="free text copied into the JSON output")
        p.add_argument(
            "--key", default=os.environ.get("BENCH_KEY", "x"), help="bearer key sent to both sides"
        )
        p.add_argument(
            "--header",
            action="append",
            default=[h.strip() for h in os.environ.get("BENCH_HEADERS", "").split("|") if h.strip()],
            help='extra "Name: value" header sent to the target only (repeatable; default: $BENCH_HEADERS, '
            "split on |)",
        )

    p = sub.add_parser("throughput")
    common(p, False)
    p.add_argument("-c", "--connections", type=int, default=32)
    p.add_argument("-d", "--duration", type=float, default=10.0)
    p.add_argument("--warmup", type=float, default=1.0)
    p.add_argument("--stream", action="store_true")

    p = sub.add_parser("sequential")
    common(p, True)
    p.add_argument("-n", "--requests", type=int, default=5000)
    p.add_argument("--warmup", type=int, default=500)
    p.add_argument("--stream", action="store_true")

    p = sub.add_parser("openloop")
    common(p, True)
    p.add_argument("-r", "--rate", type=float, default=1000.0, help="req/s to EACH of direct and target")
    p.add_argument("-d", "--duration", type=float, default=10.0)
    p.add_argument("--warmup", type=float, default=1.0)
    p.add_argument("--prewarm", type=int, default=64, help="connections opened before the run, per side")
    p.add_argument("--drain", type=float, default=10.0)
    p.add_argument("--direct-ratio", type=float, default=0.25, help="direct requests per target request")
    p.add_argument("--stream", action="store_true")

    p = sub.add_parser("slowstreams")
    common(p, False)
    p.add_argument("-n", "--streams", type=int, default=1000)
    p.add_argument("--chunks", type=int, default=20)
    p.add_argument("--delay-ms", type=float, default=50.0)
    p.add_argument("--ramp", type=float, default=1.0, help="seconds over which stream starts are spread")
    p.add_argument(
        "--pid", type=int, default=None, help="root pid of the system under test (RSS/CPU of its tree)"
    )

    args = ap.parse_args()
    fn = {
        "throughput": throughput,
        "sequential": sequential,
        "openloop": openloop,
        "slowstreams": slowstreams,
    }[args.mode]
    try:
        import uvloop

        out = uvloop.run(fn(args))
    except ImportError:
        out = asyncio.run(fn(args))
    out["label"] = args.label
    out["time_utc"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    print(json.dumps(out))


if __name__ == "__main__":
    main()
