#!/usr/bin/env bash
# Install Sluicegate into .venv and start it on the embedded default (SQLite, in-memory limits).
# Without a config it serves the built-in mock models; pass `--config sluicegate.yaml` for real providers.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -e . 2>&1 | grep -v "^WARNING: Location" || true
exec .venv/bin/sluicegate serve "$@"
