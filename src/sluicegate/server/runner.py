"""Starting Granian with the gateway: workers, the event loop, the listening socket."""

from __future__ import annotations

import logging
import os

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
    if not s.keys and not _is_loopback(s.server.host) and not _store_has_keys(s):
        problems.append(
            f"refusing to listen on {s.server.host} without any API key: anyone who can reach it could spend "
            "your provider credit. Add keys to the config (keys: [{key: ..., name: ...}]) or create one with "
            "`sluicegate keys create`, or listen on 127.0.0.1.")
    return problems


def _store_has_keys(s: Settings) -> bool:
    """Managed keys count too; a store that cannot be read counts as none (refuse rather than open)."""
    try:
        import asyncio

        from sluicegate.config import default_database_url
        from sluicegate.store import Store

        async def count() -> int:
            store = await Store.open(default_database_url(s))
            try:
                return len(await store.keys.list())
            finally:
                await store.close()

        return asyncio.run(count()) > 0
    except Exception:  # noqa: BLE001
        return False


def run(s: Settings) -> None:
    from granian import Granian
    from granian.constants import Interfaces, Loops

    if not s.keys and _is_loopback(s.server.host):
        log.warning("NO API KEYS CONFIGURED: the gateway is OPEN to anyone on this machine (loopback only). "
                    "Add keys before exposing it.")
        print("WARNING: no API keys configured: serving WITHOUT authentication, on loopback only.",
              file=__import__("sys").stderr, flush=True)
    try:
        import uvloop  # noqa: F401

        loop = Loops.uvloop
    except ImportError:  # pragma: no cover
        loop = Loops.asyncio
    server = Granian(
        "sluicegate.server.factory:create_from_env",
        factory=True,
        address=s.server.host,
        port=s.server.port,
        interface=Interfaces.RSGI,
        workers=s.server.workers,
        loop=loop,
        log_enabled=True,
        workers_kill_timeout=int(s.server.shutdown_grace_s) or None,
        env_files=None,
    )
    os.environ.setdefault("SLUICEGATE_WORKERS", str(s.server.workers))
    server.serve()
