#!/usr/bin/env bash
# The issue-16 side-by-side table in one command: the bare relay, Sluicegate (static key; managed key with
# every limit and metering to SQLite) and three peer gateways, on one pinned core, against the stand-in upstream.
#
#   bench/peers.sh                      (results in bench/results/peers-DATE/, table in .../peers.md)
#   ROUNDS=5 SYSTEMS="relay keys portkey" bench/peers.sh
#
# First run only: installs the peers from the package registries into bench/.peers/ (git-ignored), pinned:
#   openai-forward  $OPENAI_FORWARD_VERSION (0.8.1), own venv; pyyaml added (0.8.1 imports yaml, does not declare it)
#   LiteLLM         $LITELLM_VERSION (1.108.7) with the [proxy] extra, own venv; run with no database
#   Portkey gateway $PORTKEY_VERSION (1.15.2), npm @portkey-ai/gateway, run with --port=N --headless
# After that nothing reaches beyond loopback: each peer forwards model bench-model to the stand-in upstream
# (openai-forward: FORWARD_CONFIG; LiteLLM: a model_list entry openai/bench-model with api_base, and
# LITELLM_LOCAL_MODEL_COST_MAP=True so it does not fetch its cost map from GitHub; Portkey: the request headers
# x-portkey-provider: openai and x-portkey-custom-host: <upstream>/v1). See bench/phase2.sh, start_peer.
#
# Systems: relay (candidates/granian_aiohttp.py), static (Sluicegate, one static key, no limit), full (Sluicegate,
# the key with rpm, tpm, concurrency and a daily token budget, each checked and settled per request; metering and the
# request log to SQLite), openai-forward, portkey, litellm; also keys (static key with rpm only) from phase2.sh.
# The measuring is bench/phase2.sh's: every system up at once on core 0 (SCHED_RR), the upstream and the load on
# core 1; STEPS "rounds" (wrk -c32 -d5s per system, interleaved, ROUNDS times: req/s and the SUT's CPU µs/request)
# and "seq" (loadgen sequential -n SEQ_N per system, interleaved: added latency p50/p99 against the direct upstream).
# The Sluicegate rows run from a `git archive` of COMMIT (default HEAD).
# Knobs: SYSTEMS ("relay static full openai-forward portkey litellm"), ROUNDS (3), SEQ_N (1000), STEPS ("rounds seq"),
# UPORT (9250), PORT_BASE (8390: the systems listen on PORT_BASE..PORT_BASE+8), OUTDIR, PEERS_DIR (bench/.peers).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
export PEERS_DIR=${PEERS_DIR:-$PWD/bench/.peers}
OPENAI_FORWARD_VERSION=${OPENAI_FORWARD_VERSION:-0.8.1}
LITELLM_VERSION=${LITELLM_VERSION:-1.108.7}
PORTKEY_VERSION=${PORTKEY_VERSION:-1.15.2}
SYSTEMS=${SYSTEMS:-"relay static full openai-forward portkey litellm"}
export OUTDIR=${OUTDIR:-bench/results/peers-$(date -u +%Y%m%d-%H%M)}
export UPORT=${UPORT:-9250} PORT_BASE=${PORT_BASE:-8390}
export ROUNDS=${ROUNDS:-3} SEQ_N=${SEQ_N:-1000}

has() { [[ " $SYSTEMS " == *" $1 "* ]]; }

# ---- install (once; a marker file per peer says the pinned version installed completely)
mkdir -p "$PEERS_DIR"
venv_install() { # $1 = dir, $2... = pip requirements
  local d=$PEERS_DIR/$1; shift
  local mark; mark="$d/.installed-$(echo "$*" | tr -c 'A-Za-z0-9.=_-' _)"
  [ -f "$mark" ] && return 0
  echo "installing into $d: $*" >&2
  rm -rf "$d"
  python3 -m venv "$d"
  "$d/bin/pip" install -q "$@" >&2
  touch "$mark"
}
if has openai-forward; then venv_install openai-forward "openai-forward==$OPENAI_FORWARD_VERSION" pyyaml; fi
if has litellm; then venv_install litellm "litellm[proxy]==$LITELLM_VERSION"; fi
if has portkey && [ ! -f "$PEERS_DIR/portkey/.installed-$PORTKEY_VERSION" ]; then
  echo "installing @portkey-ai/gateway@$PORTKEY_VERSION into $PEERS_DIR/portkey" >&2
  rm -rf "$PEERS_DIR/portkey"; mkdir -p "$PEERS_DIR/portkey"
  (cd "$PEERS_DIR/portkey" && npm init -y >/dev/null && npm install --no-audit --no-fund "@portkey-ai/gateway@$PORTKEY_VERSION" >&2)
  touch "$PEERS_DIR/portkey/.installed-$PORTKEY_VERSION"
fi

# ---- versions of what runs, for the table
mkdir -p "$OUTDIR"
ver() { "$PY" -c "import json,sys; print(json.dumps({'mode': 'version', 'label': sys.argv[1], 'version': sys.argv[2]}))" "$1" "$2" \
  >> "$OUTDIR/meta.jsonl"; }
if has openai-forward; then ver openai-forward "$("$PEERS_DIR/openai-forward/bin/python" -c 'import importlib.metadata as m; print(m.version("openai-forward"))')"; fi
if has litellm; then ver litellm "$("$PEERS_DIR/litellm/bin/python" -c 'import importlib.metadata as m; print(m.version("litellm"))')"; fi
if has portkey; then ver portkey "$(node -p "require('$PEERS_DIR/portkey/node_modules/@portkey-ai/gateway/package.json').version")"; fi

# ---- measure (bench/phase2.sh: start every system pinned to core 0, interleaved rounds)
CONFIGS="$SYSTEMS" STEPS=${STEPS:-"rounds seq"} bash bench/phase2.sh
{
  echo "Load average at the end: $(cut -d' ' -f1-3 /proc/loadavg); $(date -u +%FT%TZ)"
  echo
  "$PY" bench/speed_summary.py --peers "$OUTDIR"
} | tee "$OUTDIR/peers.md"
