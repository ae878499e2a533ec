#!/usr/bin/env bash
# The whole benchmark suite against one running system under test.
#
#   bench/suite.sh TARGET_BASE_URL TARGET_PID LABEL [OUTFILE]
#
# TARGET_BASE_URL  e.g. http://127.0.0.1:8002/v1 (requests go to {base}/chat/completions)
# TARGET_PID       root pid of the system under test (its process tree is measured for RSS/CPU)
# LABEL            name for the results
# OUTFILE          JSON lines appended here (default bench/results/LABEL.jsonl)
#
# Expects the stand-in upstream on $BENCH_UPSTREAM (default http://127.0.0.1:9000/v1), started
# pinned to core 1, and the system under test pinned to core 0. The load generators run on core 1.
# Everything runs at nice -19 ($NICE) so that other work sharing the machine cannot starve it;
# bench/quiet.py reports how much CPU other work used during each step anyway.
# Knobs (environment): DUR (closed-loop seconds, 10), SEQ_N (5000), OL_DUR (10), OL_RATES ("1000 2500"),
# SLOW_N (1000), SLOW_CHUNKS (20), SLOW_DELAY_MS (50), SKIP (space-separated steps to skip:
# wrk seq ol streams slow).
set -euo pipefail
cd "$(dirname "$0")/.."
TARGET=${1:?target base url}
PID=${2:?target pid}
LABEL=${3:?label}
OUT=${4:-bench/results/${LABEL}.jsonl}
UP=${BENCH_UPSTREAM:-http://127.0.0.1:9000/v1}
PY=${PY:-.venv/bin/python}
DUR=${DUR:-10}
SEQ_N=${SEQ_N:-5000}
OL_DUR=${OL_DUR:-10}
OL_RATES=${OL_RATES:-"1000 2500"}
SLOW_N=${SLOW_N:-1000}
SLOW_CHUNKS=${SLOW_CHUNKS:-20}
SLOW_DELAY_MS=${SLOW_DELAY_MS:-50}
SKIP=${SKIP:-}
# the upstream's pid, so the noise check (bench/quiet.py) knows it is ours
UPORT=$(echo "$UP" | sed -E 's#^https?://[^:/]+:([0-9]+).*#\1#')
UPID=${BENCH_UPSTREAM_PID:-$(ss -ltnpH "sport = :$UPORT" | grep -o 'pid=[0-9]*' | head -1 | cut -d= -f2)}
Q="$PY bench/quiet.py --pids $PID,${UPID:-} ${QUIET_ARGS:---max-wait 45 --retries 2} --"
# The machine is shared with other work: run the load generators real-time (SCHED_RR) so they are
# not starved (the system under test and the upstream should be started with the same $NICE).
NICE=${NICE:-chrt -r 1}
LG="$Q $NICE taskset -c 1 $PY bench/loadgen.py"
mkdir -p "$(dirname "$OUT")"

# scheme://host:port of the target, for wrk (the lua script sets the path)
HOSTPORT=$(echo "$TARGET" | sed -E 's#^(https?://[^/]+).*#\1#')
BASEPATH=$(echo "$TARGET" | sed -E 's#^https?://[^/]+##')

skip() { [[ " $SKIP " == *" $1 "* ]]; }
wrkjson() { # $1 = lua script, $2 = kind
  BENCH_PATH="$BASEPATH/chat/completions" $Q $NICE taskset -c 1 wrk -t1 -c32 -d"${DUR}s" -s "bench/wrk/$1.lua" "$HOSTPORT/" \
    | tail -1 \
    | $PY -c "import json,sys; d=json.load(sys.stdin); d.update(mode='wrk', kind='$2', connections=32, label='$LABEL', target='$TARGET'); print(json.dumps(d))"
}

# warm-up: open pools, fill caches
BENCH_PATH="$BASEPATH/chat/completions" $NICE taskset -c 1 wrk -t1 -c32 -d2s -s bench/wrk/chat.lua "$HOSTPORT/" >/dev/null 2>&1 || true

# slow streams first, so the memory figure is the fresh process plus 1,000 streams, not the
# leftovers of an overload step
if ! skip slow; then
  $LG slowstreams --upstream "$UP" --target "$TARGET" -n "$SLOW_N" --chunks "$SLOW_CHUNKS" \
    --delay-ms "$SLOW_DELAY_MS" --pid "$PID" --label "$LABEL" | tee -a "$OUT"
fi
if ! skip wrk; then
  wrkjson chat chat | tee -a "$OUT"
fi
if ! skip seq; then
  $LG sequential --upstream "$UP" --target "$TARGET" -n "$SEQ_N" --label "$LABEL" | tee -a "$OUT"
fi
if ! skip ol; then
  for R in $OL_RATES; do
    $LG openloop --upstream "$UP" --target "$TARGET" -r "$R" -d "$OL_DUR" --label "$LABEL" | tee -a "$OUT"
    sleep 1
  done
fi
if ! skip streams; then
  wrkjson stream fast_stream | tee -a "$OUT"
  # chunk-count check (10 content chunks + usage + [DONE] = 12 events per stream) and time per stream
  $LG throughput --stream --target "$TARGET" -c 32 -d 3 --label "$LABEL" | tee -a "$OUT"
fi
