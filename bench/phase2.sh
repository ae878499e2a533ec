#!/usr/bin/env bash
# Phase 2: Sluicegate's own figures beside the bare Granian+aiohttp relay, and where its CPU goes.
#
#   bench/phase2.sh                     (results in bench/results/sluicegate-DATE/)
#   STEPS="rounds seq" bench/phase2.sh
#
# Configurations (one gateway each, all against the same stand-in upstream on core 1):
#   relay     the phase-1 bare relay, granian-mt-uvloop (candidates/granian_aiohttp.py), same flags as
#             `sluicegate serve` uses (RSGI, mt runtime with 1 thread, uvloop, HTTP/1.1, no websockets)
#   open      sluicegate, no keys (open, loopback); request log on SQLite (the default, always on)
#   keys      sluicegate, one static key with rpm 1e9 (a limit checked on every request, never reached),
#             metering + request log on SQLite through the batched sink: "everything on"
#   keys-pg   as keys, request log on PostgreSQL (a database of its own, created and dropped here)
#   static    sluicegate, one static key with no limit at all; metering + request log on SQLite
#   full      as keys with every kind of key limit checked and settled on each request: rpm, tpm,
#             concurrency and a daily token budget (all far above the load), request log on SQLite
#   openai-forward, portkey, litellm   the peer gateways, installed by bench/peers.sh into PEERS_DIR (bench/.peers)
#   keys-b, full-b   keys and full run from another checkout's sources (AB_SRC: its src/ directory, put
#             first on PYTHONPATH), in the same rounds: an A/B of two commits under the same noise, e.g.
#             mkdir -p /tmp/ab && git archive REF src | tar -x -C /tmp/ab && AB_SRC=/tmp/ab/src \
#             CONFIGS="relay keys keys-b full full-b" STEPS=rounds bench/phase2.sh
#
# Steps (STEPS, default "suite rounds seq profile"):
#   suite     bench/suite.sh against each configuration alone on core 0 (the gateways through
#             bench/run_gateway.sh) -> OUTDIR/<config>.jsonl
#   rounds    every configuration up at once; ROUNDS x (wrk -c32 -d5s per configuration, interleaved), so
#             noise hits all alike -> OUTDIR/rounds.jsonl (CPU µs/req: take the best of the rounds)
#   seq       every configuration up at once; ROUNDS x (loadgen sequential -n SEQ_N (2000) per configuration,
#             interleaved) -> OUTDIR/seq-rounds.jsonl (llm-gateway-bench's "added latency": one request at
#             a time, through the gateway vs straight to the upstream)
#   ol        every configuration up at once; ROUNDS x (loadgen openloop -r OL_RATE (1000) -d OL_DUR (10),
#             interleaved) -> OUTDIR/ol-rounds.jsonl: how often each system holds the rate on this machine
#   slow      ROUNDS x, per configuration: a fresh process, warmed up (wrk -d2s), then loadgen slowstreams
#             -n SLOW_N (1000) --chunks SLOW_CHUNKS (20) --delay-ms SLOW_DELAY_MS (50): its idle RSS and peak
#             RSS (process tree), i.e. memory per concurrent stream -> OUTDIR/slow-rounds.jsonl; SLOW_RAMP (1): seconds
#             over which the stream starts are spread
#   seqprofile  py-spy over a whole `loadgen sequential -n SEQ_PROFILE_N` (3000) run through each of
#             PROFILE_TARGETS -> OUTDIR/seqprofile-<config>.{raw,threads.json,seq.json,summary.txt}
#   profile   py-spy (sampling, --nonblocking, PROFILE_RATE/s for PROFILE_S s) on the worker of each of
#             PROFILE_TARGETS (default keys) under wrk -c32 -> OUTDIR/profile-<config>$PROFILE_SUFFIX.{raw,
#             speedscope.json,threads.json,summary.txt}; PYSPY_ARGS (default --gil: sample only the thread holding
#             the GIL, i.e. Python's CPU; PYSPY_ARGS= samples every thread).
#             Summary by bench/profile_summary.py; per-thread CPU by bench/thread_cpu.py
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
BIN=$(dirname "$PY")
UPORT=${UPORT:-9100}
export UPORT
export BENCH_UPSTREAM="http://127.0.0.1:$UPORT/v1"
OUTDIR=${OUTDIR:-bench/results/sluicegate-$(date -u +%Y%m%d)}
STEPS=${STEPS:-"suite rounds seq profile"}
CONFIGS=${CONFIGS:-"relay open keys keys-pg"}
ROUNDS=${ROUNDS:-3}
PROFILE_S=${PROFILE_S:-10}
PROFILE_RATE=${PROFILE_RATE:-500}
export QUIET_ARGS=${QUIET_ARGS:-"--max-wait 3 --retries 0"}
KEY=sk-bench-phase2-0123456789abcdef0123
PGDB=${PGDB:-sluicegate_bench_$$}
PGURL="postgresql://postgres@127.0.0.1:5432/$PGDB"
NICE=${NICE:-chrt -r 1}
export NICE
mkdir -p "$OUTDIR"
# thousands of concurrent streams (SLOW_N=5000: a socket each for the client, the gateway's two sides and the
# upstream): raise the open-file limit for everything started from here
ulimit -n "${NOFILE:-65536}" 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
RUNDIR=$(mktemp -d /tmp/sluicegate-phase2-XXXX)
PIDS=()
RR_OLD=$(cat /proc/sys/kernel/sched_rr_timeslice_ms 2>/dev/null || echo "")
if [[ "${NICE}" == chrt* && -n "$RR_OLD" ]]; then echo 1 > /proc/sys/kernel/sched_rr_timeslice_ms || true; fi
cleanup() {
  [ -n "$RR_OLD" ] && echo "$RR_OLD" > /proc/sys/kernel/sched_rr_timeslice_ms 2>/dev/null || true
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  sleep 1
  psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS $PGDB" >/dev/null 2>&1 || true
  rm -rf "$RUNDIR"
}
trap cleanup EXIT

psql -h 127.0.0.1 -U postgres -qc "CREATE DATABASE $PGDB" >/dev/null

# The gateway runs from a snapshot of one commit (default HEAD; COMMIT= uses the working tree), so the
# figures belong to a commit even while others edit src/ in this working tree.
COMMIT=${COMMIT-HEAD}
if [ -n "$COMMIT" ]; then
  COMMIT=$(git rev-parse --short "$COMMIT")
  mkdir -p "$RUNDIR/src-$COMMIT"
  git archive "$COMMIT" src | tar -x -C "$RUNDIR/src-$COMMIT"
  export PYTHONPATH="$RUNDIR/src-$COMMIT/src${PYTHONPATH:+:$PYTHONPATH}"
  export BENCH_COMMIT=$COMMIT
fi
echo "{\"mode\": \"meta\", \"date\": \"$(date -u +%FT%TZ)\", \"commit\": \"${COMMIT:-worktree}\", \"steps\": \"$STEPS\", \"configs\": \"$CONFIGS\", \"load\": \"$(cut -d' ' -f1-3 /proc/loadavg)\"}" \
  | tee -a "$OUTDIR/meta.jsonl"

if ! ss -ltnH "sport = :$UPORT" | grep -q .; then
  ${UP_NICE:-chrt -r 2} taskset -c 1 "$PY" bench/upstream.py --port "$UPORT" &
  PIDS+=($!)
  sleep 1
fi
export BENCH_UPSTREAM_PID=$(ss -ltnpH "sport = :$UPORT" | grep -o 'pid=[0-9]*' | head -1 | cut -d= -f2)

extra_config() { # $1 = configuration name
  case "$1" in
    open) echo "database: \"sqlite:///$RUNDIR/open.db\"" ;;
    static) printf 'keys:\n  - {key: "%s", name: bench}\ndatabase: "sqlite:///%s/static.db"\n' "$KEY" "$RUNDIR" ;;
    keys) printf 'keys:\n  - {key: "%s", name: bench, rpm: 1000000000}\ndatabase: "sqlite:///%s/keys.db"\n' "$KEY" "$RUNDIR" ;;
    keys-pg) printf 'keys:\n  - {key: "%s", name: bench, rpm: 1000000000}\ndatabase: "%s"\n' "$KEY" "$PGURL" ;;
    keys-b) extra_config keys | sed "s/keys.db/keys-b.db/" ;;
    full-b) extra_config full | sed "s/full.db/full-b.db/" ;;
    full) printf 'keys:\n  - {key: "%s", name: bench, rpm: 1000000000, tpm: 1000000000000, concurrency: 100000, budget_tokens_day: 1000000000000000}\ndatabase: "sqlite:///%s/full.db"\n' "$KEY" "$RUNDIR" ;;
  esac
}
# LiteLLM 1.108 refuses to start without a master key; with no database it checks the bearer against it
LITELLM_KEY=sk-bench-litellm-9f3c2a7e5b1d48c6a0e2f7b9d3c5a1e8
bench_key() { case "$1" in open|openai-forward|portkey) echo x ;; litellm) echo "$LITELLM_KEY" ;; *) echo "$KEY" ;; esac; }
# extra request headers per configuration (bench/wrk/*.lua and loadgen read $BENCH_HEADERS): Portkey's gateway
# is told the provider and the upstream per request
bench_headers() { [ "$1" = portkey ] && echo "x-portkey-provider: openai|x-portkey-custom-host: $BENCH_UPSTREAM" || true; }
PORT_BASE=${PORT_BASE:-8190}  # the gateways listen on PORT_BASE..PORT_BASE+10 (another bench may hold 8190..)
port_of() { case "$1" in relay) echo $PORT_BASE ;; open) echo $((PORT_BASE + 1)) ;; keys) echo $((PORT_BASE + 2)) ;;
  keys-pg) echo $((PORT_BASE + 3)) ;; full) echo $((PORT_BASE + 4)) ;; openai-forward) echo $((PORT_BASE + 5)) ;;
  portkey) echo $((PORT_BASE + 6)) ;; litellm) echo $((PORT_BASE + 7)) ;; static) echo $((PORT_BASE + 8)) ;;
  keys-b) echo $((PORT_BASE + 9)) ;; full-b) echo $((PORT_BASE + 10)) ;; esac; }
# the peer gateways (bench/peers.sh installs them into PEERS_DIR); each forwards bench-model to the stand-in
PEERS_DIR=${PEERS_DIR:-$PWD/bench/.peers}

# RELAY_ARGS: extra Granian flags for the relay; GATEWAY_YAML: YAML appended to every sluicegate configuration. For
# more concurrent streams than Granian's default backpressure (the relay, ~1,000) or the gateway's
# server.max_concurrent_requests (4,096) admit at once: RELAY_ARGS="--backpressure 8192" and
# GATEWAY_YAML=$'server:\n  max_concurrent_requests: 8192'
RELAY_CMD="$BIN/granian --interface rsgi --host 127.0.0.1 --no-ws --log-level warning --runtime-mode mt --loop uvloop --http 1 ${RELAY_ARGS:-} bench.candidates.granian_aiohttp:app"

start_peer() { # $1 = peer, $2 = port; started in the background like the others (no PYTHONPATH of ours)
  local c=$1 port=$2 up=${BENCH_UPSTREAM%/v1}
  case "$c" in
    openai-forward)
      # 0.8.x is configured by environment (FORWARD_CONFIG: one route "/" to the upstream; no log, cache or
      # rate limit by default); run in an empty directory so no .env is read
      mkdir -p "$RUNDIR/openai-forward"
      (cd "$RUNDIR/openai-forward" && FORWARD_CONFIG="[{\"base_url\": \"$up\", \"route\": \"/\", \"type\": \"openai\"}]" \
        exec env -u PYTHONPATH $NICE taskset -c 0 "$PEERS_DIR/openai-forward/bin/aifd" run --port "$port" --workers 1) \
        >"$RUNDIR/$c.log" 2>&1 &
      ;;
    portkey)
      env -u PYTHONPATH $NICE taskset -c 0 node "$PEERS_DIR/portkey/node_modules/@portkey-ai/gateway/build/start-server.js" \
        --port="$port" --headless >"$RUNDIR/$c.log" 2>&1 &
      ;;
    litellm)
      # no database (no DATABASE_URL), the bundled model cost map (no fetch from GitHub at start), a master key
      printf 'model_list:\n  - model_name: bench-model\n    litellm_params:\n      model: openai/bench-model\n      api_base: "%s"\n      api_key: "x"\nlitellm_settings:\n  telemetry: false\ngeneral_settings:\n  master_key: "%s"\n' \
        "$BENCH_UPSTREAM" "$LITELLM_KEY" > "$RUNDIR/litellm.yaml"
      env -u PYTHONPATH LITELLM_LOCAL_MODEL_COST_MAP=True LITELLM_LOG=ERROR $NICE taskset -c 0 \
        "$PEERS_DIR/litellm/bin/litellm" --config "$RUNDIR/litellm.yaml" --host 127.0.0.1 --port "$port" \
        --num_workers 1 >"$RUNDIR/$c.log" 2>&1 &
      ;;
  esac
}
start() { # $1 = configuration; prints the SUT's root pid
  local c=$1 port
  port=$(port_of "$c")
  if [ "$c" = relay ]; then
    $NICE taskset -c 0 $RELAY_CMD --port "$port" >/dev/null 2>&1 &
  elif [[ " openai-forward portkey litellm " == *" $c "* ]]; then
    start_peer "$c" "$port"
  else
    { printf 'upstreams:\n  bench:\n    base_url: "%s"\n    api_key: "x"\nmodels:\n  bench-model: bench\n' "$BENCH_UPSTREAM"
      extra_config "$c"; printf '%s\n' "${GATEWAY_YAML:-}"; } > "$RUNDIR/$c.yaml"
    if [[ "$c" == *-b ]]; then
      [ -d "${AB_SRC:-}" ] || { echo "$c needs AB_SRC (another checkout's src/)" >&2; return 1; }
      PYTHONPATH="$AB_SRC" $NICE taskset -c 0 "$BIN/sluicegate" serve --config "$RUNDIR/$c.yaml" --port "$port" \
        >"$RUNDIR/$c.log" 2>&1 &
    else
      $NICE taskset -c 0 "$BIN/sluicegate" serve --config "$RUNDIR/$c.yaml" --port "$port" >"$RUNDIR/$c.log" 2>&1 &
    fi
  fi
  local pid=$!
  local hdrs=() h
  while IFS= read -r h; do [ -n "$h" ] && hdrs+=(-H "$h"); done < <(bench_headers "$c" | tr '|' '\n')
  for _ in $(seq 300); do
    code=$(curl -s -o /dev/null -w '%{http_code}' -XPOST "http://127.0.0.1:$port/v1/chat/completions" \
      -H "Authorization: Bearer $(bench_key "$c")" -H 'Content-Type: application/json' ${hdrs[@]+"${hdrs[@]}"} \
      -d '{"model":"bench-model","messages":[{"role":"user","content":"hi"}]}' || true)
    [ "$code" = 200 ] && break
    sleep 0.2
  done
  [ "$code" = 200 ] || { echo "$c did not answer 200 on :$port" >&2; kill "$pid"; return 1; }
  echo "$pid"
}
stop() { kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }
worker_of() { pgrep -P "$1" | head -1; }  # Granian's worker process (the serve process is its parent)

if [[ " $STEPS " == *" suite "* ]]; then
  for c in $CONFIGS; do
    echo "=== suite: $c" >&2
    if [ "$c" = relay ]; then
      pid=$(start relay); PIDS+=($pid)
      bench/suite.sh "http://127.0.0.1:$(port_of relay)/v1" "$pid" relay "$OUTDIR/relay.jsonl" >/dev/null
      stop "$pid"
    else
      LABEL=$c OUT="$OUTDIR/$c.jsonl" BENCH_KEY=$(bench_key "$c") EXTRA_CONFIG=$(extra_config "$c") \
        bench/run_gateway.sh "$(port_of "$c")" >/dev/null
    fi
    sleep 1
  done
fi

if [[ " $STEPS " == *" slow "* ]]; then
  # memory per concurrent stream: each configuration fresh (a process that served streams before keeps
  # the memory it grew), warmed up, then SLOW_N concurrent slow streams; peak RSS of its process tree
  for r in $(seq "$ROUNDS"); do
    for c in $CONFIGS; do
      pid=$(start "$c"); PIDS+=($pid)
      # loadgen asks max_tokens 16 and the stand-in ignores it: with a budget (full) the gateway ends any
      # stream past 16 answer tokens (budget_exceeded, usage counted by the tokenizer), so full gets 15
      ch=${SLOW_CHUNKS:-20}
      if [ "$c" = full ] && [ "$ch" -gt 15 ]; then ch=15; fi
      BENCH_HEADERS=$(bench_headers "$c") BENCH_KEY=$(bench_key "$c") BENCH_PATH=/v1/chat/completions $NICE taskset -c 1 wrk -t1 -c32 -d2s \
        -s bench/wrk/chat.lua "http://127.0.0.1:$(port_of "$c")/" >/dev/null 2>&1
      sleep 1
      BENCH_HEADERS=$(bench_headers "$c") $PY bench/quiet.py --pids "$pid,$BENCH_UPSTREAM_PID" $QUIET_ARGS -- \
        $NICE taskset -c 1 $PY bench/loadgen.py slowstreams --upstream "$BENCH_UPSTREAM" \
        --target "http://127.0.0.1:$(port_of "$c")/v1" -n "${SLOW_N:-1000}" --chunks "$ch" \
        --delay-ms "${SLOW_DELAY_MS:-50}" --ramp "${SLOW_RAMP:-1}" --pid "$pid" --key "$(bench_key "$c")" --label "$c" \
        | tail -1 | $PY -c "import json,sys; d=json.load(sys.stdin); d.update(round=$r); print(json.dumps(d))" \
        | tee -a "$OUTDIR/slow-rounds.jsonl"
      stop "$pid"
      sleep 1
    done
  done
fi

if [[ " $STEPS " == *" rounds "* || " $STEPS " == *" profile "* || " $STEPS " == *" seq "* || " $STEPS " == *" ol "* \
      || " $STEPS " == *" seqprofile "* ]]; then
  declare -A SUTPID
  for c in $CONFIGS; do SUTPID[$c]=$(start "$c"); PIDS+=(${SUTPID[$c]}); done
  ALL=$(IFS=,; echo "${SUTPID[*]},$BENCH_UPSTREAM_PID")
  W="$NICE taskset -c 1 wrk -t1 -c32"
  for c in $CONFIGS; do  # warm-up
    BENCH_HEADERS=$(bench_headers "$c") BENCH_KEY=$(bench_key "$c") BENCH_PATH=/v1/chat/completions $W -d2s -s bench/wrk/chat.lua \
      "http://127.0.0.1:$(port_of "$c")/" >/dev/null 2>&1
  done
  for c in $CONFIGS; do  # memory of each idle, warmed-up system (process tree; parent and worker)
    $PY - "${SUTPID[$c]}" "$c" <<'PYEOF' | tee -a "$OUTDIR/rounds.jsonl"
import json, os, sys
root, label = int(sys.argv[1]), sys.argv[2]
def rss(p):
    for line in open(f"/proc/{p}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
kids = [int(k) for k in open(f"/proc/{root}/task/{root}/children").read().split()]
print(json.dumps({"mode": "idle_rss", "label": label, "parent_mb": round(rss(root), 1),
                  "workers_mb": [round(rss(k), 1) for k in kids], "total_mb": round(rss(root) + sum(rss(k) for k in kids), 1)}))
PYEOF
  done
  if [[ " $STEPS " == *" rounds "* ]]; then
    for r in $(seq "$ROUNDS"); do
      for c in $CONFIGS; do
        others=$(echo "$ALL" | tr , '\n' | grep -vx "${SUTPID[$c]}" | paste -sd,)
        BENCH_HEADERS=$(bench_headers "$c") BENCH_KEY=$(bench_key "$c") BENCH_PATH=/v1/chat/completions \
          $PY bench/quiet.py --pids "${SUTPID[$c]},$others" $QUIET_ARGS -- \
          $W -d5s -s bench/wrk/chat.lua "http://127.0.0.1:$(port_of "$c")/" | tail -1 \
          | $PY -c "import json,sys; d=json.load(sys.stdin); d.update(mode='wrk', kind='chat', round=$r, label='$c'); print(json.dumps(d))" \
          | tee -a "$OUTDIR/rounds.jsonl"
      done
    done
  fi
  if [[ " $STEPS " == *" seq "* ]]; then
    # sequential added latency (llm-gateway-bench's method) in interleaved rounds, like the CPU rounds
    for r in $(seq "$ROUNDS"); do
      for c in $CONFIGS; do
        others=$(echo "$ALL" | tr , '\n' | grep -vx "${SUTPID[$c]}" | paste -sd,)
        BENCH_HEADERS=$(bench_headers "$c") $PY bench/quiet.py --pids "${SUTPID[$c]},$others" $QUIET_ARGS -- \
          $NICE taskset -c 1 $PY bench/loadgen.py sequential --upstream "$BENCH_UPSTREAM" \
          --target "http://127.0.0.1:$(port_of "$c")/v1" -n "${SEQ_N:-2000}" --key "$(bench_key "$c")" --label "$c" \
          | tail -1 | $PY -c "import json,sys; d=json.load(sys.stdin); d.update(round=$r); print(json.dumps(d))" \
          | tee -a "$OUTDIR/seq-rounds.jsonl"
      done
    done
  fi
  if [[ " $STEPS " == *" ol "* ]]; then
    # open loop at OL_RATE (1000) req/s in interleaved rounds: how often each system holds the rate
    for r in $(seq "$ROUNDS"); do
      for c in $CONFIGS; do
        others=$(echo "$ALL" | tr , '\n' | grep -vx "${SUTPID[$c]}" | paste -sd,)
        BENCH_HEADERS=$(bench_headers "$c") $PY bench/quiet.py --pids "${SUTPID[$c]},$others" $QUIET_ARGS -- \
          $NICE taskset -c 1 $PY bench/loadgen.py openloop --upstream "$BENCH_UPSTREAM" \
          --target "http://127.0.0.1:$(port_of "$c")/v1" -r "${OL_RATE:-1000}" -d "${OL_DUR:-10}" --key "$(bench_key "$c")" \
          --label "$c" | tail -1 | $PY -c "import json,sys; d=json.load(sys.stdin); d.update(round=$r); print(json.dumps(d))" \
          | tee -a "$OUTDIR/ol-rounds.jsonl"
        sleep 2
      done
    done
  fi
  if [[ " $STEPS " == *" seqprofile "* ]]; then
    # where one request's time goes when requests come one at a time (the sequential figure): py-spy
    # over a whole sequential run of SEQ_PROFILE_N requests through each of PROFILE_TARGETS
    for c in ${PROFILE_TARGETS:-keys}; do
      [ -n "${SUTPID[$c]:-}" ] || continue
      wpid=$(worker_of "${SUTPID[$c]}")
      P="$OUTDIR/seqprofile-$c"
      $NICE taskset -c 1 "$BIN/py-spy" record --pid "$wpid" --rate "$PROFILE_RATE" --duration 120 \
        --nonblocking --threads ${PYSPY_ARGS---gil} --format raw -o "$P.raw" >/dev/null 2>&1 &
      SPY=$!; PIDS+=($SPY)
      sleep 1
      $PY bench/thread_cpu.py "$wpid" > "$P.threads0.json"
      BENCH_HEADERS=$(bench_headers "$c") $NICE taskset -c 1 $PY bench/loadgen.py sequential --upstream "$BENCH_UPSTREAM" \
        --target "http://127.0.0.1:$(port_of "$c")/v1" -n "${SEQ_PROFILE_N:-3000}" --key "$(bench_key "$c")" \
        --label "$c" > "$P.seq.json"
      $PY bench/thread_cpu.py "$wpid" --since "$P.threads0.json" > "$P.threads.json"
      rm -f "$P.threads0.json"
      kill -INT "$SPY" 2>/dev/null || true
      wait "$SPY" 2>/dev/null || true
      { cat "$P.threads.json"; $PY bench/profile_summary.py "$P.raw"; } > "$P.summary.txt"
      head -12 "$P.summary.txt" >&2
    done
  fi
  if [[ " $STEPS " == *" profile "* ]]; then
    for c in ${PROFILE_TARGETS:-keys}; do
      [ -n "${SUTPID[$c]:-}" ] || continue
      wpid=$(worker_of "${SUTPID[$c]}")
      P="$OUTDIR/profile-$c${PROFILE_SUFFIX:-}"
      BENCH_HEADERS=$(bench_headers "$c") BENCH_KEY=$(bench_key "$c") BENCH_PATH=/v1/chat/completions $W -d$((PROFILE_S * 2 + 6))s -s bench/wrk/chat.lua \
        "http://127.0.0.1:$(port_of "$c")/" > "$P.wrk.txt" 2>&1 &
      WRK=$!; PIDS+=($WRK)
      sleep 2
      # CPU of each of the worker's threads over the raw recording (py-spy --nonblocking cannot tell a
      # thread blocked in native code from a running one, so its per-thread sample counts are not CPU)
      $PY bench/thread_cpu.py "$wpid" > "$P.threads0.json"
      # py-spy runs on core 1 (with the load generator, same priority): it samples the worker without
      # stopping it (--nonblocking); --threads keeps the event-loop thread apart from aiosqlite's thread
      $NICE taskset -c 1 "$BIN/py-spy" record --pid "$wpid" --rate "$PROFILE_RATE" --duration "$PROFILE_S" \
        --nonblocking --threads ${PYSPY_ARGS---gil} --format raw -o "$P.raw" >/dev/null 2>&1 || echo "py-spy failed" >&2
      $PY bench/thread_cpu.py "$wpid" --since "$P.threads0.json" > "$P.threads.json"
      rm -f "$P.threads0.json"
      $NICE taskset -c 1 "$BIN/py-spy" record --pid "$wpid" --rate "$PROFILE_RATE" --duration "$PROFILE_S" \
        --nonblocking --threads ${PYSPY_ARGS---gil} --format speedscope -o "$P.speedscope.json" >/dev/null 2>&1 || echo "py-spy failed" >&2
      wait "$WRK" || true
      { cat "$P.threads.json"; $PY bench/profile_summary.py "$P.raw"; } > "$P.summary.txt"
      head -30 "$P.summary.txt" >&2
    done
  fi
fi
echo "{\"mode\": \"meta\", \"end\": \"$(date -u +%FT%TZ)\", \"load\": \"$(cut -d' ' -f1-3 /proc/loadavg)\"}" >> "$OUTDIR/meta.jsonl"
echo "results: $OUTDIR" >&2
