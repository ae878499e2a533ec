"""How a worker process learns it replaces one that died, so `/metrics` can count respawns.

Granian respawns a crashed worker (`respawn_failed_workers`), but its own counters live in the parent
process, which the gateway cannot read. So the parent makes a run directory and each worker, as it
starts, leaves a marker there named for its pid: the first `workers` markers are the first workers, and
every marker beyond those is a restart. The new worker counts what it finds; nothing else is shared.
"""

from __future__ import annotations

import os
from pathlib import Path


def register_worker(run_dir: str, workers: int, *, shared_metrics: bool) -> int:
    """Leave this worker's marker; the restarts this process should add to its metrics.

    With shared (multiprocess) metrics each restarted worker adds one, and the files of dead workers
    keep their counts; otherwise the process's counter starts at zero, so it takes the whole count.
    """
    directory = Path(run_dir)
    if not directory.is_dir():
        return 0
    (directory / f"worker-{os.getpid()}").touch(exist_ok=True)
    started = sum(1 for _ in directory.glob("worker-*"))
    if shared_metrics:
        return 1 if started > workers else 0
    return max(0, started - workers)
