"""Helpers for the limiter tests that use Redis (a module with a unique name, so tests can import it).

`REDIS_URL` is the shared server (override with SLUICEGATE_TEST_REDIS_URL); `PrivateRedis` is a
redis-server of the test's own, for stopping, restarting and flushing without disturbing others.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from typing import Any

import redis

REDIS_URL = os.environ.get("SLUICEGATE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def delete_prefix(url: str, prefix: str) -> None:
    """Delete every key under `prefix` (a test's own namespace)."""
    client = redis.Redis.from_url(url)
    try:
        keys = list(client.scan_iter(match=prefix + "*", count=500))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PrivateRedis:
    """A redis-server of our own, to stop, restart and flush without disturbing anyone else."""

    def __init__(self, tmp: str) -> None:
        self.port = _free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._tmp = tmp
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
                "--dir",
                self._tmp,
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

    def stop(self) -> None:
        if self._proc is not None:
            self._proc.terminate()
            self._proc.wait(5)
            self._proc = None

    def command(self, *args: Any) -> Any:
        client = redis.Redis(port=self.port)
        try:
            return client.execute_command(*args)
        finally:
            client.close()
