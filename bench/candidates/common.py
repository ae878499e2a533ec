"""What every candidate shares: where the upstream is, and which response headers to relay."""

from __future__ import annotations

import os


def upstream_base() -> str:
    """Upstream base URL (".../v1"), from BENCH_UPSTREAM; read once at app start-up, not per request."""
    return os.environ.get("BENCH_UPSTREAM", "http://127.0.0.1:9000/v1").rstrip("/")


# request headers forwarded; everything else is dropped (a real gateway rewrites auth anyway)
FORWARD = ("content-type", "x-bench-chunks", "x-bench-delay-ms")
