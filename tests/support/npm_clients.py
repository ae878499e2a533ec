"""Real client programs from the npm registry (Claude Code, ...), installed once and reused.

The packages ship their native binaries inside them, so an install is the only download. They go
into one cache folder shared by every run and every worktree (`SLUICEGATE_NPM_CLIENTS`, default
`~/.cache/sluicegate/npm-clients`); an install is skipped when the pinned version is already there,
and a file lock keeps parallel test sessions from installing at the same time. scripts/test.sh
runs `python tests/support/npm_clients.py` first so that CI pays for the install outside the tests.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

# Pinned: a newer version may send different requests, which the tests would then report.
CLAUDE_CODE = ("@anthropic-ai/claude-code", "2.1.197")
PACKAGES = (CLAUDE_CODE,)


def clients_dir() -> Path:
    found = os.environ.get("SLUICEGATE_NPM_CLIENTS")
    return Path(found) if found else Path.home() / ".cache" / "sluicegate" / "npm-clients"


def _installed_version(root: Path, name: str) -> str | None:
    try:
        return str(json.loads((root / "node_modules" / name / "package.json").read_text())["version"])
    except (OSError, ValueError, KeyError):
        return None


def ensure_installed(package: tuple[str, str], timeout: float = 600.0) -> Path:
    """Install `package` (name, version) into the cache if it is not there; the folder's root.

    Raises RuntimeError with npm's output when the install fails, and FileNotFoundError when npm
    itself is missing.
    """
    name, version = package
    root = clients_dir()
    if _installed_version(root, name) == version:
        return root
    npm = shutil.which("npm")
    if npm is None:
        raise FileNotFoundError("npm is not installed (apt-get install nodejs npm)")
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".install.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _installed_version(root, name) == version:
            return root
        if not (root / "package.json").exists():
            (root / "package.json").write_text('{"name": "sluicegate-test-clients", "private": true}\n')
        done = subprocess.run(
            [npm, "install", "--no-audit", "--no-fund", "--loglevel=error", f"{name}@{version}"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if done.returncode != 0 or _installed_version(root, name) != version:
            raise RuntimeError(f"npm install {name}@{version} failed:\n{done.stdout}\n{done.stderr}")
    return root


def claude_code() -> Path:
    """The `claude` executable of the pinned Claude Code."""
    return ensure_installed(CLAUDE_CODE) / "node_modules" / ".bin" / "claude"


if __name__ == "__main__":  # scripts/test.sh: install ahead of the tests, quietly
    for pkg in PACKAGES:
        try:
            ensure_installed(pkg)
        except (OSError, RuntimeError, subprocess.TimeoutExpired) as exc:
            print(f"warning: {exc}", file=sys.stderr)
