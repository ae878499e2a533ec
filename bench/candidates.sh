#!/usr/bin/env bash
# Phase 1: measure every candidate relay with the same suite.
#
#   bench/candidates.sh [NAME ...]      (no names = all; results in bench/results/candidates-DATE/)
#
# Starts the stand-in upstream on core 1 (port 9000) unless one is already listening, then for each
# candidate: start it pinned to core 0, run bench/suite.sh, stop it (by its own pid).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
BIN=$(dirname "$PY")
export BENCH_UPSTREAM=${BENCH_UPSTREAM:-http://127.0.0.1:9000/v1}
OUTDIR=${OUTDIR:-bench/results/candidates-$(date -u +%Y%m%d)}
mkdir -p "$OUTDIR"
PORT=8100
UPSTREAM_PID=""
trap 'restore_rr; [ -n "$UPSTREAM_PID" ] && kill $UPSTREAM_PID 2>/dev/null || true' EXIT
NICE=${NICE:-chrt -r 1}  # the machine is shared: do not let other work starve the measured processes
export NICE
# SCHED_RR's default 100 ms slice lets one thread of a multi-threaded server (Granian: Python
# thread + Rust runtime thread on one core) starve the other; use 1 ms for the run, restore after.
RR_OLD=$(cat /proc/sys/kernel/sched_rr_timeslice_ms 2>/dev/null || echo "")
if [[ "${NICE}" == chrt* && -n "$RR_OLD" ]]; then echo 1 > /proc/sys/kernel/sched_rr_timeslice_ms || true; fi
restore_rr() { [ -n "$RR_OLD" ] && echo "$RR_OLD" > /proc/sys/kernel/sched_rr_timeslice_ms 2>/dev/null || true; }

if ! ss -ltnH "sport = :9000" | grep -q .; then
  ${UP_NICE:-chrt -r 2} taskset -c 1 "$PY" bench/upstream.py --port 9000 &  # above the load generators, so it answers at once
  UPSTREAM_PID=$!
  sleep 1
fi

G="$BIN/granian --interface rsgi --host 127.0.0.1 --no-ws --log-level warning"
declare -A CMD=(
  [aiohttp]="$PY -m bench.candidates.aiohttp_server --port PORT"
  [granian-st-uvloop]="$G --port PORT --runtime-mode st --loop uvloop --http 1 bench.candidates.granian_aiohttp:app"
  [granian-mt-uvloop]="$G --port PORT --runtime-mode mt --loop uvloop --http 1 bench.candidates.granian_aiohttp:app"
  [granian-mt2-uvloop]="$G --port PORT --runtime-mode mt --runtime-threads 2 --loop uvloop --http 1 bench.candidates.granian_aiohttp:app"
  [granian-st-asyncio]="$G --port PORT --runtime-mode st --loop asyncio --http 1 bench.candidates.granian_aiohttp:app"
  [granian-st-uvloop-auto]="$G --port PORT --runtime-mode st --loop uvloop --http auto bench.candidates.granian_aiohttp:app"
  [granian-st-uvloop-bp64]="$G --port PORT --runtime-mode st --loop uvloop --http 1 --backpressure 64 bench.candidates.granian_aiohttp:app"
  [uvicorn]="$BIN/uvicorn --host 127.0.0.1 --port PORT --loop uvloop --http httptools --no-access-log --lifespan on --log-level warning bench.candidates.uvicorn_aiohttp:app"
  [granian-httpx]="$G --port PORT --runtime-mode st --loop uvloop --http 1 bench.candidates.granian_httpx:app"
)
ORDER=(aiohttp granian-st-uvloop uvicorn granian-httpx granian-mt-uvloop granian-st-asyncio granian-mt2-uvloop
       granian-st-uvloop-auto granian-st-uvloop-bp64)
NAMES=("$@")
[ ${#NAMES[@]} -eq 0 ] && NAMES=("${ORDER[@]}")

for name in "${NAMES[@]}"; do
  PORT=$((PORT + 1))
  cmd=${CMD[$name]//PORT/$PORT}
  echo "=== $name: $cmd" >&2
  $NICE taskset -c 0 $cmd &
  SUT=$!
  for _ in $(seq 50); do curl -s -o /dev/null -XPOST "http://127.0.0.1:$PORT/v1/chat/completions" -d '{}' && break; sleep 0.2; done
  bench/suite.sh "http://127.0.0.1:$PORT/v1" "$SUT" "$name" "$OUTDIR/$name.jsonl" > /dev/null || echo "suite failed for $name" >&2
  kill "$SUT"; wait "$SUT" 2>/dev/null || true
  sleep 1
done
