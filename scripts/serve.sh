#!/usr/bin/env bash
# Install Sluicegate into .venv and start it on the embedded default (SQLite, in-memory limits).
# It reads ./sluicegate.yaml when present (else serves the built-in mock models); `--config` points elsewhere.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -e . 2>&1 | grep -v "^WARNING: Location" || true
if [ -z "${VIRTUAL_ENV:-}" ]; then
  echo "The sluicegate command is in .venv: in another terminal run 'source .venv/bin/activate' (or use .venv/bin/sluicegate)." >&2
  echo "sluicegate 命令位于 .venv 中：在另一个终端运行 'source .venv/bin/activate'（或使用 .venv/bin/sluicegate）。" >&2
fi
exec .venv/bin/sluicegate serve "$@"
