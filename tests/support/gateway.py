"""The real gateway as a subprocess, and the real CLI.

`start_gateway(config)` writes the config to a temp dir, runs
`python -m sluicegate serve --config PATH --host 127.0.0.1 --port PORT` and returns once
`GET /healthz` answers 200; the test fails with the gateway's stderr if it exits early or is not
healthy within `ready_timeout` seconds. Output goes to files (not pipes), so a chatty gateway never
blocks and the logs stay readable after it stops (to assert that no secret leaked).
"""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import openai
import pytest
import yaml

# A gateway takes seconds to start: it migrates a fresh SQLite store and spawns a Granian
# worker: with the 2 cores shared by parallel test runs (load 15-20) it has been seen to take 30 s.
READY_TIMEOUT = float(os.environ.get("SLUICEGATE_E2E_READY_TIMEOUT", "60"))


def free_port() -> int:
    """A port free on 127.0.0.1 right now (the OS may hand it out again; good enough for tests)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def dump_config(config: Mapping[str, Any] | str) -> str:
    return config if isinstance(config, str) else yaml.safe_dump(dict(config), sort_keys=False)


def child_env(env: Mapping[str, str] | None = None, *, replace_env: bool = False) -> dict[str, str]:
    """The environment for a gateway or CLI child: ours (unless `replace_env`) plus `env`, with no
    SLUICEGATE_* settings leaking in from the developer's shell."""
    base = {} if replace_env else {k: v for k, v in os.environ.items() if not k.startswith("SLUICEGATE_")}
    if replace_env:
        for name in ("PATH", "HOME", "LANG", "LC_ALL", "SYSTEMROOT", "TMPDIR"):
            if name in os.environ:
                base[name] = os.environ[name]
    base["PYTHONUNBUFFERED"] = "1"
    base.update(env or {})
    return base


def http_get(host: str, port: int, path: str, timeout: float = 1.0) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


class Gateway:
    """A running gateway process. Use as a context manager, or call `.stop()`."""

    def __init__(
        self,
        process: subprocess.Popen[bytes],
        port: int,
        workdir: Path,
        config_path: Path,
        host: str = "127.0.0.1",
    ) -> None:
        self.process = process
        self.port = port
        self.host = host
        self.workdir = workdir
        self.config_path = config_path
        self.returncode: int | None = None

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"

    def stdout_text(self) -> str:
        return (self.workdir / "stdout.log").read_text(errors="replace")

    def stderr_text(self) -> str:
        return (self.workdir / "stderr.log").read_text(errors="replace")

    def logs(self) -> str:
        """stdout and stderr together (where a log line lands is the gateway's choice)."""
        return self.stdout_text() + self.stderr_text()

    def running(self) -> bool:
        return self.process.poll() is None

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> int:
        """Send `sig`, wait up to `timeout` seconds, then kill. Returns the exit code.

        Workers still alive once the parent is gone (a SIGKILLed parent cannot stop them) are killed too,
        so no test leaves a gateway running behind it."""
        workers = _descendants(self.process.pid) if self.process.poll() is None else []
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        for pid in workers + _descendants(self.process.pid):
            with contextlib.suppress(OSError):
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    if b"sluicegate" in f.read():
                        os.kill(pid, signal.SIGKILL)
        self.returncode = self.process.returncode
        return self.returncode

    def __enter__(self) -> Gateway:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<Gateway pid={self.pid} {self.url}>"


def _descendants(pid: int) -> list[int]:
    """The processes below `pid` (Linux /proc), deepest last; empty where /proc cannot tell."""
    found: list[int] = []
    todo = [pid]
    while todo:
        parent = todo.pop()
        try:
            with open(f"/proc/{parent}/task/{parent}/children") as f:
                kids = [int(k) for k in f.read().split()]
        except OSError:
            continue
        found += kids
        todo += kids
    return found


def start_gateway(
    config: Mapping[str, Any] | str,
    *,
    port: int | None = None,
    host: str = "127.0.0.1",
    env: Mapping[str, str] | None = None,
    args: Sequence[str] = (),
    ready_timeout: float = READY_TIMEOUT,
    wait_ready: bool = True,
) -> Gateway:
    """Start `python -m sluicegate serve` on `config` (a dict or YAML text) and wait until healthy."""
    workdir = Path(tempfile.mkdtemp(prefix="sluicegate-e2e-"))
    config_path = workdir / "sluicegate.yaml"
    config_path.write_text(dump_config(config))
    port = port or free_port()
    command = [
        sys.executable,
        "-m",
        "sluicegate",
        "serve",
        "--config",
        str(config_path),
        "--host",
        host,
        "--port",
        str(port),
        *args,
    ]
    with open(workdir / "stdout.log", "wb") as out, open(workdir / "stderr.log", "wb") as err:
        process = subprocess.Popen(
            command, stdout=out, stderr=err, stdin=subprocess.DEVNULL, cwd=workdir, env=child_env(env)
        )
    probe_host = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    gateway = Gateway(process, port, workdir, config_path, host=probe_host)
    if wait_ready:
        wait_healthy(gateway, ready_timeout)
    return gateway


def wait_healthy(gateway: Gateway, timeout: float = READY_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    last_error = "no answer"
    while time.monotonic() < deadline:
        if gateway.process.poll() is not None:
            pytest.fail(
                f"the gateway exited with code {gateway.process.returncode} before it was healthy\n"
                f"--- stderr ---\n{gateway.stderr_text()[-4000:]}\n"
                f"--- stdout ---\n{gateway.stdout_text()[-2000:]}",
                pytrace=False,
            )
        try:
            status, body = http_get(gateway.host, gateway.port, "/healthz", timeout=1.0)
            if status == 200:
                return
            last_error = f"GET /healthz answered {status}: {body[:200]!r}"
        except OSError as exc:
            last_error = f"{type(exc).__name__}: {exc}"
        time.sleep(0.05)
    gateway.stop(signal.SIGKILL)
    pytest.fail(
        f"the gateway was not healthy within {timeout} s ({last_error})\n"
        f"--- stderr ---\n{gateway.stderr_text()[-4000:]}",
        pytrace=False,
    )


def run_cli(
    *args: str,
    env: Mapping[str, str] | None = None,
    timeout: float = 30.0,
    input: str | None = None,
    cwd: str | Path | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run `python -m sluicegate ARGS...` to completion; text stdout/stderr captured."""
    return subprocess.run(
        [sys.executable, "-m", "sluicegate", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        input=input,
        env=child_env(env),
        cwd=cwd,
    )


def make_openai_client(gateway: Gateway, key: str = "sk-no-key", **kwargs: Any) -> openai.OpenAI:
    """An official SDK client for `gateway`: no retries (a retry would hide what the gateway did),
    a short timeout."""
    kwargs.setdefault("max_retries", 0)
    kwargs.setdefault("timeout", 15.0)
    return openai.OpenAI(base_url=gateway.base_url, api_key=key, **kwargs)


# -- a typical configuration over one stand-in upstream -----------------------------------------------

CLIENT_KEY = "sk-team-a-client-key-0001"
OTHER_CLIENT_KEY = "sk-team-b-client-key-0002"
PROVIDER_KEY = "sk-upstream-secret-provider-7f3a9c"
ALLOWED_ORIGIN = "https://chat.example.com"


# Channels for failure tests: each test that makes an upstream fail uses its own, so that the
# gateway's reaction (a breaker opening on a 401, a cool-down honouring Retry-After) cannot leak into
# the next test. Name -> public model "<name>-model" routed to upstream "<name>" on the stand-in.
FAILURE_CHANNELS = (
    "refused",
    "badreq",
    "limited",
    "limited2",
    "locked",
    "broken",
    "cut",
    "cut2",
    "nodone",
    "logs401",
    "logscut",
    "htmlerr",
    "cutsdk",
)


def core_config(
    upstream_url: str, upstream_root: str, *, dead_url: str | None = None, keys: bool = True, **sections: Any
) -> dict[str, Any]:
    """The gateway core's configuration, all routes on one stand-in upstream under several names,
    so that each kind of failure hits its own channel (see FAILURE_CHANNELS):

    - `up`: normal traffic; `slowpoke`: first_byte timeout of 0.5 s; `sleepy`: idle timeout of 1 s;
      `hasty`: total timeout of 1.5 s; `dead`: a port nobody listens
      on; `az`: the Azure preset on the same stand-in; one upstream per failure channel.
    `sections` replace top-level sections (server=..., timeouts=...).
    """
    upstreams: dict[str, Any] = {
        "up": {"base_url": upstream_url, "api_key": PROVIDER_KEY},
        "slowpoke": {"base_url": upstream_url, "api_key": PROVIDER_KEY, "timeouts": {"first_byte": 0.5}},
        "sleepy": {"base_url": upstream_url, "api_key": PROVIDER_KEY, "timeouts": {"idle": 1}},
        "hasty": {
            "base_url": upstream_url,
            "api_key": PROVIDER_KEY,
            "timeouts": {"connect": 0.5, "first_byte": 0.5, "total": 1.5},
        },
        "dead": {"base_url": dead_url or f"http://127.0.0.1:{free_port()}/v1", "api_key": PROVIDER_KEY},
        "az": {
            "preset": "azure",
            "base_url": upstream_root,
            "api_key": PROVIDER_KEY,
            "api_version": "2024-10-21",
        },
    }
    models: dict[str, Any] = {
        "gpt-4o-mini": "up",
        "renamed": "up/real-model-name",
        "gpt-3.5-turbo-instruct": "up",
        "text-embedding-3-small": "up",
        "whisper-1": "up",
        "dall-e-3": "up",
        "omni-moderation-latest": "up",
        "slow-model": "slowpoke/gpt-4o-mini",
        "sleepy-model": "sleepy/gpt-4o-mini",
        "hasty-model": "hasty/gpt-4o-mini",
        "dead-model": "dead/gpt-4o-mini",
        "azure-model": "az/my-deployment",
    }
    for name in FAILURE_CHANNELS:
        upstreams[name] = {"base_url": upstream_url, "api_key": PROVIDER_KEY}
        models[f"{name}-model"] = f"{name}/gpt-4o-mini"
    config: dict[str, Any] = {
        "keys": [{"key": CLIENT_KEY, "name": "team-a"}, {"key": OTHER_CLIENT_KEY, "name": "team-b"}]
        if keys
        else [],
        "upstreams": upstreams,
        "models": models,
        "server": {"max_body_bytes": 1_048_576, "cors": {"allow_origins": [ALLOWED_ORIGIN]}},
        "timeouts": {"connect": 2, "first_byte": 5, "idle": 5, "total": 30},
        "routing": {"breaker": {"failures": 1000, "cooldown_s": 0.1, "max_cooldown_s": 0.1}},
    }
    config.update(sections)
    return config


@dataclass
class Core:
    """A running gateway on `core_config` and the stand-in upstream behind it (see the `core` fixture)."""

    gateway: Gateway
    upstream: Any  # support.upstream.Upstream
    key: str = CLIENT_KEY

    def client(self, key: str | None = None, **kwargs: Any) -> openai.OpenAI:
        return make_openai_client(self.gateway, self.key if key is None else key, **kwargs)

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}
