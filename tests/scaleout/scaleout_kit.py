"""Helpers for the scale-out tests (a module with a unique name, so tests can import it).

Configurations of several gateways on one PostgreSQL and one Redis, keys made with the real CLI, a
burst of requests spread over several gateways, a redis-server of the test's own, and Granian's
worker processes (children of the `sluicegate serve` process).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

import httpx
import orjson
import yaml
from support.gateway import PROVIDER_KEY, Gateway, free_port, run_cli, start_gateway, wait_healthy

MODEL = "gpt-4o-mini"
CHAT = {"model": MODEL, "messages": [{"role": "user", "content": "hello"}]}


def scaleout_config(
    upstream_url: str,
    *,
    database: str,
    redis: str | None,
    lease_ttl_s: float = 3.0,
    on_backend_error: str = "closed",
    **sections: Any,
) -> dict[str, Any]:
    """One stand-in upstream, no keys in the file (managed keys only), the given store and Redis."""
    config: dict[str, Any] = {
        "database": database,
        "upstreams": {"up": {"base_url": upstream_url, "api_key": PROVIDER_KEY}},
        "models": {MODEL: "up"},
        "timeouts": {"connect": 2, "first_byte": 10, "idle": 10, "total": 60},
        "limits": {"lease_ttl_s": lease_ttl_s, "on_backend_error": on_backend_error},
        "metering": {"flush_interval_s": 0.2},
    }
    if redis is not None:
        config["redis"] = redis
    config.update(sections)
    return config


def write_config(config: dict[str, Any]) -> Path:
    """The config as a file the CLI can read (gateways write their own copy)."""
    path = Path(tempfile.mkdtemp(prefix="sluicegate-scaleout-")) / "sluicegate.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


@dataclass
class ManagedKey:
    id: str
    secret: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.secret}"}


def create_key(config_path: Path, *options: str) -> ManagedKey:
    """`sluicegate keys create --name ... OPTIONS --json` against the config's database."""
    name = f"scaleout-{time.monotonic_ns()}"
    result = run_cli("keys", "create", "--config", str(config_path), "--name", name, *options, "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    data = orjson.loads(result.stdout)
    return ManagedKey(data["id"], data["key"])


# Two or three gateways start at once here, on 2 cores other test runs share: allow them more time.
READY_TIMEOUT = float(os.environ.get("SLUICEGATE_E2E_READY_TIMEOUT", "90"))
ADMIN_KEY = "sg-admin-scaleout-0123456789"


def admin_create_key(gateway: Gateway, **fields: Any) -> ManagedKey:
    """POST /admin/keys on `gateway` (fast: no CLI process to start on a busy machine)."""
    body = {"name": f"scaleout-{time.monotonic_ns()}", **fields}
    r = httpx.post(
        f"{gateway.url}/admin/keys", json=body, headers={"Authorization": f"Bearer {ADMIN_KEY}"}, timeout=10
    )
    assert r.status_code == 201, r.text
    return ManagedKey(r.json()["id"], r.json()["key"])


def start_gateways(config: dict[str, Any] | str, count: int, **kwargs: Any) -> list[Gateway]:
    """`count` gateways started at once (on a fresh database they race to migrate it: they must not
    trip over each other), each waited for until healthy."""
    gateways = [start_gateway(config, wait_ready=False, **kwargs) for _ in range(count)]
    try:
        for gw in gateways:
            wait_healthy(gw, READY_TIMEOUT)
    except BaseException:
        for gw in gateways:
            gw.stop(signal.SIGKILL)
        raise
    return gateways


def stop_all(gateways: Sequence[Gateway], sig: int = signal.SIGTERM) -> None:
    """Signal every gateway first, then wait for each: stopping them one after another costs minutes."""
    for gw in gateways:
        if gw.running():
            gw.process.send_signal(sig)
    for gw in gateways:
        gw.stop(signal.SIGKILL if sig == signal.SIGKILL else sig, timeout=40)


def chat(gateway: Gateway, key: ManagedKey, *, timeout: float = 10.0, **body: Any) -> httpx.Response:
    return httpx.post(
        f"{gateway.base_url}/chat/completions", json={**CHAT, **body}, headers=key.auth, timeout=timeout
    )


def wait_for_status(gateway: Gateway, key: ManagedKey, status: int, within: float) -> float:
    """Seconds until a chat request through `gateway` answers `status`; fails after `within`."""
    start = time.monotonic()
    last = None
    while time.monotonic() - start < within:
        last = chat(gateway, key).status_code
        if last == status:
            return time.monotonic() - start
        time.sleep(0.05)
    raise AssertionError(f"{gateway} did not answer {status} within {within} s (last: {last})")


@dataclass
class Burst:
    """What a burst of requests got back: statuses and error codes per gateway, and how long it took."""

    statuses: list[tuple[int, int]] = field(default_factory=list)  # (gateway index, status)
    codes: list[str | None] = field(default_factory=list)
    elapsed: float = 0.0

    def passed(self, gateway: int | None = None) -> int:
        return sum(1 for g, s in self.statuses if s == 200 and (gateway is None or g == gateway))

    def refused(self) -> int:
        return sum(1 for _, s in self.statuses if s == 429)

    def refill_during(self, rpm: int) -> int:
        """Requests GCRA may grant back during the burst: one every 60/rpm seconds (burst = rpm)."""
        return int(self.elapsed // (60.0 / rpm))


def burst(gateways: Sequence[Gateway], key: ManagedKey, total: int, *, threads: int = 1) -> Burst:
    """`total` chat requests, request i through gateways[i % len]; `threads` clients at once (1: turns)."""
    result = Burst()
    lock = threading.Lock()
    counter = iter(range(total))
    clients = [httpx.Client(timeout=10.0) for _ in range(threads)]

    def run(client: httpx.Client) -> None:
        while True:
            with lock:
                i = next(counter, None)
            if i is None:
                return
            g = i % len(gateways)
            r = client.post(f"{gateways[g].base_url}/chat/completions", json=CHAT, headers=key.auth)
            code = None
            if r.status_code != 200:
                try:
                    code = r.json()["error"]["code"]
                except (ValueError, KeyError, TypeError):
                    code = f"{r.status_code}: {r.text[:200]}"  # not an OpenAI error body: show it
            with lock:
                result.statuses.append((g, r.status_code))
                result.codes.append(code)

    # connections opened first, so the burst measures requests and not TCP handshakes
    for client, gw in zip(clients, list(gateways) * threads):
        client.get(f"{gw.url}/healthz")
    workers = [threading.Thread(target=run, args=(c,)) for c in clients]
    start = time.monotonic()
    for w in workers:
        w.start()
    for w in workers:
        w.join(60)
    result.elapsed = time.monotonic() - start
    for c in clients:
        c.close()
    return result


# -- Granian's process tree ------------------------------------------------------------------------------


def worker_pids(gateway: Gateway) -> list[int]:
    """Pids of the Granian workers: the children of the `sluicegate serve` process."""
    try:
        text = Path(f"/proc/{gateway.pid}/task/{gateway.pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


def wait_for_workers(gateway: Gateway, count: int, within: float = 10.0) -> list[int]:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        pids = worker_pids(gateway)
        if len(pids) == count:
            return pids
        time.sleep(0.05)
    raise AssertionError(f"{gateway} has workers {worker_pids(gateway)}, expected {count}")


# -- a redis-server of our own ------------------------------------------------------------------------------


class PrivateRedis:
    """A redis-server process of the test's own (no persistence), on a fixed port across restarts."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._dir = tempfile.mkdtemp(prefix="sluicegate-redis-")
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self._proc = subprocess.Popen(
            [
                shutil.which("redis-server") or "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "no",
                "--dir",
                self._dir,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.1):
                    return
            except OSError:
                time.sleep(0.01)
        raise RuntimeError("private redis-server did not start")

    def kill(self) -> None:
        if self._proc is not None:
            self._proc.kill()
            self._proc.wait(5)
            self._proc = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.kill()
        shutil.rmtree(self._dir, ignore_errors=True)
