#!/usr/bin/env bash
# Scale-out throughput: the gateway with 1 and 2 workers, limits in memory or in Redis.
#
#   bench/scaleout.sh            (results: bench/results/scaleout-DATE.jsonl, table appended to
#                                 bench/results/scaleout.md)
#
# Scenarios (same key, same store, same upstream; a fresh gateway each):
#   nolimit-1w   1 worker, key without limits                      (the gateway's bare cost)
#   memory-1w    1 worker, key with rpm 1e9 in the in-memory limiter (the single-process figure)
#   redis-1w     1 worker, same key, limits in Redis                (one EVALSHA per request)
#   nolimit-2w   2 workers, key without limits
#   redis-2w     2 workers, limits in Redis                         (what scale-out costs and buys)
# The rpm is so high that nothing is ever refused: every request is a real 200 through the limiter.
#
# The store is a PostgreSQL database of the script's own (created, dropped at the end) so two workers
# log as they would in production; Redis is a redis-server of the script's own (no persistence) whose
# CPU is reported beside the gateway's. 1-worker gateways are pinned to core 0 like bench/run_gateway.sh;
# 2-worker gateways get both cores, which they share with the upstream and the load generator (core 1):
# on this 2-core machine the 2-worker figure shows what a second process costs and buys when it has
# to share, not linear scaling. Steps run through bench/quiet.py, which reports other work's CPU.
# Knobs: DUR (10), CONNS (32), UPORT (9107), RPORT (6391), PG (postgresql://postgres@127.0.0.1:5432),
# SCENARIOS (all of the above), LOADGEN (bench/loadgen.py), QUIET_ARGS ("--max-wait 20 --retries 1").
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
BIN=$(dirname "$PY")
DUR=${DUR:-10}
CONNS=${CONNS:-32}
UPORT=${UPORT:-9107}
RPORT=${RPORT:-6391}
GPORT=${GPORT:-8107}
PG=${PG:-postgresql://postgres@127.0.0.1:5432}
DB=sg_bench_scaleout_$$
SCENARIOS=${SCENARIOS:-"nolimit-1w memory-1w redis-1w nolimit-2w redis-2w"}
LOADGEN=${LOADGEN:-bench/loadgen.py}  # a copy of a known-good revision, if someone is editing it
QUIET_ARGS=${QUIET_ARGS:-"--max-wait 20 --retries 1"}
NICE=${NICE:-chrt -r 1}
STAMP=$(date -u +%Y%m%d-%H%M)
OUT=${OUT:-bench/results/scaleout-$STAMP.jsonl}
MD=${MD:-bench/results/scaleout.md}
KEY_LIMITED=sk-bench-scaleout-limited-0000000001
KEY_FREE=sk-bench-scaleout-free-000000000002
WORK=$(mktemp -d /tmp/sluicegate-scaleout-XXXX)
PIDS=()
SUT=""

pg() { "$PY" -c "import asyncio, asyncpg, sys
async def main():
    c = await asyncpg.connect('$PG/postgres'); await c.execute(sys.argv[1]); await c.close()
asyncio.run(main())" "$1"; }
stop_sut() { if [ -n "$SUT" ]; then kill -TERM "$SUT" 2>/dev/null || true; wait "$SUT" 2>/dev/null || true; SUT=""; fi; }
cleanup() {
  stop_sut
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  pg "DROP DATABASE IF EXISTS \"$DB\" WITH (FORCE)" || true
  rm -rf "$WORK"
}
trap cleanup EXIT
proc_cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }  # utime + stime, clock ticks

pg "CREATE DATABASE \"$DB\""
${UP_NICE:-chrt -r 2} taskset -c 1 "$PY" bench/upstream.py --port "$UPORT" >/dev/null 2>&1 &
PIDS+=($!)
redis-server --port "$RPORT" --bind 127.0.0.1 --save "" --appendonly no --daemonize no --dir "$WORK" \
  >/dev/null 2>&1 &
RPID=$!
PIDS+=($RPID)
sleep 1

mkdir -p bench/results
for sc in $SCENARIOS; do
  workers=${sc##*-}; workers=${workers%w}
  kind=${sc%-*}
  redis_line=""; [ "$kind" = redis ] && redis_line="redis: redis://127.0.0.1:$RPORT/0"
  # one key per config: with no limit anywhere, several workers need no Redis
  key=$KEY_LIMITED; limit_field=", rpm: 1000000000"
  [ "$kind" = nolimit ] && { key=$KEY_FREE; limit_field=""; }
  cat > "$WORK/$sc.yaml" <<YAML
database: $PG/$DB
$redis_line
keys:
  - {key: $key, name: bench-$kind$limit_field}
upstreams:
  bench: {base_url: "http://127.0.0.1:$UPORT/v1", api_key: "x"}
models:
  bench-model: bench
YAML
  if [ "$kind" = memory ] && [ "$workers" != 1 ]; then echo "skip $sc: memory limits need one worker" >&2; continue; fi
  pin="taskset -c 0"; [ "$workers" != 1 ] && pin="taskset -c 0,1"
  $NICE $pin "$BIN/sluicegate" serve --config "$WORK/$sc.yaml" --port "$GPORT" --workers "$workers" \
    >"$WORK/$sc.log" 2>&1 &
  SUT=$!
  ok=""
  for _ in $(seq 300); do
    code=$(curl -s -o /dev/null -w '%{http_code}' -XPOST "http://127.0.0.1:$GPORT/v1/chat/completions" \
      -H "Authorization: Bearer $key" -H 'Content-Type: application/json' \
      -d '{"model":"bench-model","messages":[{"role":"user","content":"hi"}]}' || true)
    [ "$code" = "200" ] && { ok=1; break; }
    kill -0 "$SUT" 2>/dev/null || break
    sleep 0.2
  done
  [ -n "$ok" ] || { echo "$sc: gateway did not answer 200 (last $code)" >&2; tail -20 "$WORK/$sc.log" >&2; exit 1; }
  r0=$(proc_cpu "$RPID")
  line=$("$PY" bench/quiet.py --pids "$SUT,${PIDS[0]},$RPID" $QUIET_ARGS -- $NICE taskset -c 1 \
    "$PY" "$LOADGEN" throughput --target "http://127.0.0.1:$GPORT/v1" --key "$key" -c "$CONNS" \
    -d "$DUR" --label "scaleout-$sc" | tail -1)
  r1=$(proc_cpu "$RPID")
  line=$(echo "$line" | "$PY" -c "
import json, os, sys
d = json.loads(sys.stdin.read())
tick = os.sysconf('SC_CLK_TCK')
d.update(scenario='$sc', workers=$workers, limits='$kind', redis_cpu_s=round(($r1 - $r0) / tick, 3))
if d.get('requests'):
    d['redis_cpu_us_per_req'] = round(d['redis_cpu_s'] / d['requests'] * 1e6, 1)
print(json.dumps(d))")
  echo "$line" | tee -a "$OUT"
  stop_sut
  sleep 1
done

"$PY" - "$OUT" "$MD" <<'PYEOF'
import json, subprocess, sys, datetime
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
out = [f"\n## Run {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC, commit `{commit}`\n",
       "| scenario | workers | limits | req/s | p50 ms | p99 ms | errors | gateway CPU µs/req | Redis CPU µs/req | foreign CPU (cores) |",
       "|---|---|---|---|---|---|---|---|---|---|"]
for d in rows:
    lat = d.get("latency", {})
    out.append(f"| {d['scenario']} | {d['workers']} | {d['limits']} | {d['rps']:,.0f} | {lat.get('p50_ms', 0):.2f} | "
               f"{lat.get('p99_ms', 0):.2f} | {d.get('errors', 0)} | {d.get('sut_cpu_us_per_req', '-')} | "
               f"{d.get('redis_cpu_us_per_req', '-') if d['limits'] == 'redis' else '-'} | {d.get('foreign_cpu_frac', '-')} |")
out.append(f"\nRaw JSON lines: `{sys.argv[1]}`.\n")
with open(sys.argv[2], "a") as f:
    f.write("\n".join(out))
print("\n".join(out), file=sys.stderr)
PYEOF
