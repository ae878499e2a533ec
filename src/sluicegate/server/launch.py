"""The serving process: Granian and nothing else.

`sluicegate serve` reads the configuration, checks it, prints the banner and then replaces itself
(`os.execv`, same pid, same stdio, same signals) with `python -m sluicegate.server.launch`, which starts
Granian from the few values it needs. Granian's parent process only watches its workers, so it has no
use for the configuration models, the store, SQLAlchemy or the CLI the `serve` command imported: the
parent stays at the size of the interpreter and Granian (~30 MB instead of ~85), and workers forked from
it start from that instead of inheriting the CLI's heap. Each worker builds the gateway itself
(server/factory.py).

Keep this module's imports to the standard library and Granian.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from typing import Any

# Environment variable carrying the launch options (JSON) from `serve` to the launcher.
LAUNCH_ENV = "SLUICEGATE_LAUNCH"


def launch_options(
    *,
    host: str,
    port: int,
    workers: int,
    backpressure: int,
    json_logs: bool,
    kill_timeout: int,
    state_path: str | None,
) -> dict[str, Any]:
    """What the launcher needs, as plain JSON-able values (see `serve_granian`)."""
    return {
        "host": host,
        "port": port,
        "workers": workers,
        "backpressure": backpressure,
        "json_logs": json_logs,
        "kill_timeout": kill_timeout,
        "state_path": state_path,
    }


def exec_launcher(options: dict[str, Any]) -> None:
    """Replace this process with the launcher; returns only if that is impossible (then serve here)."""
    env = dict(os.environ)
    env[LAUNCH_ENV] = json.dumps(options)
    # The launcher must import this very copy of the package (a source checkout on PYTHONPATH, say).
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    path = env.get("PYTHONPATH", "")
    if root not in path.split(os.pathsep):
        env["PYTHONPATH"] = root + (os.pathsep + path if path else "")
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    try:
        os.execve(sys.executable, [sys.executable, "-m", "sluicegate.server.launch"], env)
    except OSError:  # no exec here (an unusual platform or sandbox): serve in this process instead
        serve_granian(options)


def serve_granian(options: dict[str, Any]) -> None:
    """Run Granian with the gateway's workers until it stops; then forget the URL `serve` noted."""
    from importlib.util import find_spec

    from granian import Granian
    from granian.constants import HTTPModes, Interfaces, Loops, RuntimeModes

    try:
        server = Granian(
            "sluicegate.server.factory:create_from_env",
            factory=True,
            address=options["host"],
            port=options["port"],
            interface=Interfaces.RSGI,
            workers=options["workers"],
            # A worker that dies (a crash, the OOM killer) is replaced instead of taking the gateway down;
            # Granian still exits on a crash loop (a new worker dying within seconds of its start).
            respawn_failed_workers=True,
            loop=Loops.uvloop if find_spec("uvloop") is not None else Loops.asyncio,
            # Measured (bench/README.md): one Rust runtime thread per worker in mt mode had the lowest
            # latency; HTTP/1.1 only (what every SDK speaks; "auto" queued at 2,500 req/s); no websockets;
            # backpressure well above the concurrent streams a worker should hold (Granian's default ties
            # it to the blocking-thread count, which would cap concurrent requests).
            runtime_mode=RuntimeModes.mt,
            runtime_threads=1,
            http=HTTPModes.http1,
            websockets=False,
            backpressure=options["backpressure"],
            log_enabled=True,
            log_dictconfig=granian_json_logging() if options["json_logs"] else None,
            workers_kill_timeout=options["kill_timeout"],
            env_files=None,
        )
        server.serve()
    finally:
        state = options.get("state_path")
        if state:
            with contextlib.suppress(OSError):
                os.unlink(state)


def granian_json_logging() -> dict[str, object]:
    """Granian's own log lines (start, workers, shutdown) as JSON too: `logging.json` promises that
    every stdout line is a JSON object. Granian merges this over its default config per top-level
    key, so both of its formatters are given."""
    json_formatter = {"()": "sluicegate.metering.jsonlog.JsonFormatter"}
    return {"formatters": {"generic": json_formatter, "access": dict(json_formatter)}}


def main() -> None:
    raw = os.environ.pop(LAUNCH_ENV, None)
    if not raw:
        sys.exit("sluicegate.server.launch is started by `sluicegate serve`; run that instead.")
    serve_granian(json.loads(raw))


if __name__ == "__main__":
    main()
