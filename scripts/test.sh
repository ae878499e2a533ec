#!/usr/bin/env bash
# Install everything the tests need into .venv and run them. The README's second command; .ci/run calls it.
# Starts PostgreSQL and Redis on loopback if they are not running (the tests use the real ones).
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip >/dev/null 2>&1 || true
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[test]' 2>&1 | grep -v "^WARNING: Location" || true

if command -v pg_isready >/dev/null 2>&1 && ! pg_isready -h 127.0.0.1 -p 5432 -q; then
  echo "starting PostgreSQL"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
  for _ in $(seq 1 30); do pg_isready -h 127.0.0.1 -p 5432 -q && break; sleep 1; done
fi
if command -v redis-cli >/dev/null 2>&1 && ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  echo "starting Redis"
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log
  for _ in $(seq 1 30); do redis-cli -h 127.0.0.1 ping >/dev/null 2>&1 && break; sleep 0.5; done
fi

# Lint, format and types first: cheap, and a red one fails CI before the slow part.
.venv/bin/ruff check src tests bench
.venv/bin/ruff format --check -q src tests bench
.venv/bin/mypy

# A real browser for the dashboard's browser tests (tests/browser) and the CORS test: Debian's Chromium,
# driven by Playwright (never `playwright install`), and a CJK font so Chinese pages render real glyphs.
if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ] \
   && { [ ! -x /usr/bin/chromium ] || [ ! -d /usr/share/fonts/truetype/wqy ]; }; then
  echo "installing chromium and a CJK font"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq chromium fonts-wqy-zenhei >/dev/null 2>&1 \
    || { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq chromium fonts-wqy-zenhei >/dev/null 2>&1; } \
    || echo "warning: chromium not installed"
fi

# Real client programs from npm (Claude Code, for tests/e2e/test_claude_code.py), pinned, installed once
# into a cache shared across runs (SLUICEGATE_NPM_CLIENTS, default ~/.cache/sluicegate/npm-clients).
if command -v npm >/dev/null 2>&1; then
  .venv/bin/python tests/support/npm_clients.py
fi

exec .venv/bin/python -m pytest -q -p no:cacheprovider "$@"
