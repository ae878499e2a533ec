"""Starting Granian with the gateway: workers, the event loop, the listening socket."""

from __future__ import annotations

import logging
import math
import os
import sys

from sluicegate.config.model import Settings

log = logging.getLogger("sluicegate")


def _is_loopback(host: str) -> bool:
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def preflight_checks(s: Settings) -> list[str]:
    """Reasons not to start at all. Without keys, the gateway is open: only on loopback."""
    problems: list[str] = []
    if s.passthrough.enabled and not s.passthrough.public and not _is_loopback(s.server.host):
        # Pass-through has no gateway key: anyone who can reach it may relay through it (with their own
        # provider key, against the operator's network, rate limits and log), so it is an open route.
        problems.append(
            f"refusing to listen on {s.server.host} with pass-through enabled: its route takes no gateway "
            "key, so anyone who can reach it may relay through it. Set `passthrough.public: true` to mean "
            "it, or listen on 127.0.0.1."
        )
    if not s.keys and not _is_loopback(s.server.host) and not _store_has_keys(s):
        problems.append(
            f"refusing to listen on {s.server.host} without any API key: anyone who can reach it could spend "
            "your provider credit. Add keys to the config (keys: [{key: ..., name: ...}]) or create one with "
            "`sluicegate keys create`, or listen on 127.0.0.1."
        )
    if s.server.workers > 1 and not s.redis and _has_limits(s):
        problems.append(
            f"refusing to start {s.server.workers} workers without Redis: limits are configured, and each worker "
            "would hold its own counters, so a key with rpm 30 could make 30 requests per worker. Set "
            "`redis: redis://127.0.0.1:6379/0` to share counters (see docs/deployment.md), or run one worker."
        )
    return problems


def _has_limits(s: Settings) -> bool:
    if any(
        any(
            getattr(k, f)
            for f in (
                "rpm",
                "rpd",
                "tpm",
                "concurrency",
                "budget_tokens_day",
                "budget_tokens_month",
                "budget_tokens_total",
                "budget_usd_day",
                "budget_usd_month",
                "budget_usd_total",
            )
        )
        for k in s.keys
    ):
        return True
    if s.limits.models or any(u.rpm or u.tpm for u in s.upstreams.values()):
        return True
    return _store_has_keys(s, with_limits=True)


def _store_has_keys(s: Settings, with_limits: bool = False) -> bool:
    """Managed keys count too; a store that cannot be read counts as none (refuse rather than open)."""
    try:
        import asyncio

        from sluicegate.config import default_database_url
        from sluicegate.store import Store

        async def count() -> int:
            store = await Store.open(default_database_url(s))
            try:
                keys = await store.keys.list()
                return len([k for k in keys if not with_limits or not k.limits.is_empty()])
            finally:
                await store.close()

        return asyncio.run(count()) > 0
    except Exception:
        return False


def run(s: Settings, state_path: str | None = None) -> None:
    """Start serving: the environment the workers read, then this process becomes Granian's launcher
    (server/launch.py); it returns only when serving is over. `state_path`, the URL noted for the CLI,
    is removed when serving ends."""
    from sluicegate.server.launch import exec_launcher, launch_options

    if not s.keys and _is_loopback(s.server.host) and not _store_has_keys(s):
        log.warning(
            "NO API KEYS CONFIGURED: the gateway is OPEN to anyone on this machine (loopback only). "
            "Add keys before exposing it."
        )
        from sluicegate.cli.lang import t

        print(
            t(
                "WARNING: no API keys configured: serving WITHOUT authentication, on loopback only.",
                "警告：未配置任何 API 密钥，网关在无认证状态下运行（仅限本机回环地址）。",
            ),
            file=sys.stderr,
            flush=True,
        )
    if not _is_loopback(s.server.host):
        # Off loopback, a gateway whose last managed key is revoked must refuse everyone, not open up.
        os.environ["SLUICEGATE_REQUIRE_AUTH"] = "1"
    _metrics_dir(s.server.workers)
    import tempfile

    # Each worker leaves a marker here as it starts, so a respawned one knows to count itself.
    os.environ["SLUICEGATE_RUN_DIR"] = tempfile.mkdtemp(prefix="sluicegate-run-")
    os.environ.setdefault("SLUICEGATE_WORKERS", str(s.server.workers))
    exec_launcher(
        launch_options(
            host=s.server.host,
            port=s.server.port,
            workers=s.server.workers,
            backpressure=s.server.max_concurrent_requests,
            json_logs=s.logging.json_format,
            # Granian takes whole seconds and reads 0 as "never kill": round up, and at least 1 s, so a
            # grace of 0 or 0.5 cuts streams soon instead of waiting for them forever.
            kill_timeout=max(1, math.ceil(s.server.shutdown_grace_s)),
            state_path=state_path,
        )
    )


def _metrics_dir(workers: int) -> str | None:
    """Several workers write their metrics to files that /metrics (in any worker) adds up."""
    if workers <= 1:
        return None
    import tempfile

    from sluicegate.metering.metrics import prepare_multiprocess_dir

    path = os.environ.get("SLUICEGATE_METRICS_DIR") or tempfile.mkdtemp(prefix="sluicegate-metrics-")
    prepare_multiprocess_dir(path)
    os.environ["SLUICEGATE_METRICS_DIR"] = path
    return path
