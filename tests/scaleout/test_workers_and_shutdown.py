"""Starting several workers, and stopping: what `--workers N` refuses, and what SIGTERM does to a stream
in flight. Granian's main process stops accepting; each worker drains (server/app.py `_drain`): requests
run on for `server.shutdown_grace_s` while the log is flushed, and a second before Granian's kill
(`workers_kill_timeout`, the grace rounded up) whatever still runs is ended in band and recorded.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import yaml
from scaleout_kit import CHAT, READY_TIMEOUT, scaleout_config
from support.gateway import Gateway, child_env, free_port, run_cli, start_gateway
from support.upstream import Upstream

KEY = "sk-scaleout-shutdown-key-0001"


# -- --workers N without Redis ---------------------------------------------------------------------------


def serve_workers(config: dict[str, Any], tmp_path: Path, workers: int) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "sluicegate.yaml"
    path.write_text(yaml.safe_dump(config))
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "sluicegate",
            "serve",
            "--config",
            str(path),
            "--port",
            str(free_port()),
            "--workers",
            str(workers),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env=child_env(),
        stdin=subprocess.DEVNULL,
        check=False,
    )


def test_two_workers_without_redis_and_a_key_limit_in_the_config_refuse_to_start(tmp_path: Path) -> None:
    config = {
        "database": f"sqlite:///{tmp_path}/store.db",
        "keys": [{"key": KEY, "name": "limited", "rpm": 40}],
        "upstreams": {"up": {"base_url": "http://127.0.0.1:9/v1", "api_key": "x"}},
        "models": {"gpt-4o-mini": "up"},
    }

    result = serve_workers(config, tmp_path, 2)

    assert result.returncode == 2, result.stdout + result.stderr
    assert "refusing to start 2 workers without Redis" in result.stderr
    assert "rpm 30 could make 30 requests per worker" in result.stderr, "it says why"
    assert "redis: redis://" in result.stderr, "and what to write instead"
    assert "Listening" not in result.stdout


def test_two_workers_without_redis_refuse_when_only_a_managed_key_has_limits(tmp_path: Path) -> None:
    config = {
        "database": f"sqlite:///{tmp_path}/store.db",
        "upstreams": {"up": {"base_url": "http://127.0.0.1:9/v1", "api_key": "x"}},
        "models": {"gpt-4o-mini": "up"},
    }
    (tmp_path / "sluicegate.yaml").write_text(yaml.safe_dump(config))
    made = run_cli(
        "keys", "create", "--config", str(tmp_path / "sluicegate.yaml"), "--name", "m", "--rpm", "40"
    )
    assert made.returncode == 0, made.stderr

    result = serve_workers(config, tmp_path, 2)

    assert result.returncode == 2, result.stdout + result.stderr
    assert "refusing to start 2 workers without Redis" in result.stderr


# -- SIGTERM with a stream in flight ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def stand_in() -> Iterator[Upstream]:
    with Upstream() as up:
        yield up


async def _log_rows(pg_url: str, key_name: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(pg_url)
    try:
        return await conn.fetch(
            "SELECT status, error_type, completion_tokens, stream FROM request_logs WHERE key_name = $1",
            key_name,
        )
    finally:
        await conn.close()


def log_rows(pg_url: str, key_name: str) -> list[asyncpg.Record]:
    """The request log rows of one key (each shutdown test's gateway has a key of its own: request ids
    come from the upstream and repeat across the session's stand-ins)."""
    return asyncio.run(_log_rows(pg_url, key_name))


class StreamWatch:
    """Reads one streamed chat completion, sending SIGTERM to the gateway after `term_after` events."""

    def __init__(self, gateway: Gateway, term_after: int) -> None:
        self.gateway = gateway
        self.term_after = term_after
        self.events: list[str] = []
        self.error: str | None = None
        self.request_id: str | None = None
        self.term_at = 0.0
        self.ended_at = 0.0
        self.new_connection_after_term: str | None = None

    def run(self) -> StreamWatch:
        with (
            httpx.Client(timeout=60) as client,
            client.stream(
                "POST",
                f"{self.gateway.base_url}/chat/completions",
                json={**CHAT, "stream": True},
                headers={"Authorization": f"Bearer {KEY}"},
            ) as response,
        ):
            assert response.status_code == 200
            self.request_id = response.headers["x-request-id"]
            try:
                for line in response.iter_lines():
                    if not line.startswith("data:"):
                        continue
                    self.events.append(line[5:].strip())
                    if len(self.events) == self.term_after:
                        self.gateway.process.send_signal(signal.SIGTERM)
                        self.term_at = time.monotonic()
                        self.new_connection_after_term = self._try_new_connection()
            except httpx.HTTPError as exc:
                self.error = f"{type(exc).__name__}: {exc}"
        self.ended_at = time.monotonic()
        return self

    def _try_new_connection(self) -> str:
        time.sleep(0.3)  # Granian's main process closes the listener on the signal
        try:
            r = httpx.get(f"{self.gateway.url}/healthz", timeout=2)
            return f"answered {r.status_code}"
        except httpx.HTTPError as exc:
            return type(exc).__name__


def shutdown_gateway(stand_in: Upstream, pg_url: str, grace: float) -> tuple[Gateway, str]:
    """A gateway with `grace` seconds of shutdown grace, and the name of its one key."""
    name = f"term-{uuid.uuid4().hex[:8]}"
    config = scaleout_config(
        stand_in.url,
        database=pg_url,
        redis=None,
        keys=[{"key": KEY, "name": name}],
        server={"shutdown_grace_s": grace},
    )
    return start_gateway(config, ready_timeout=READY_TIMEOUT), name


def test_sigterm_lets_a_stream_in_flight_finish_and_flushes_its_log_record(
    stand_in: Upstream, pg_url: str
) -> None:
    gw, key_name = shutdown_gateway(stand_in, pg_url, grace=15)
    stand_in.behaviour = "slow_stream delay=0.3 chunks=10"  # about 3 s
    try:
        watch = StreamWatch(gw, term_after=2).run()
        exit_code = gw.process.wait(30)
        exited_at = time.monotonic()
    finally:
        stand_in.behaviour = "ok"
        gw.stop(signal.SIGKILL)

    print(
        f"\nSIGTERM after event 2: stream ended {watch.ended_at - watch.term_at:.2f} s later with "
        f"{len(watch.events)} events, process exited {exited_at - watch.ended_at:.2f} s after the stream, "
        f"a new connection meanwhile: {watch.new_connection_after_term}"
    )
    assert watch.error is None
    assert watch.events[-1] == "[DONE]", "the stream ran to its end"
    assert len(watch.events) == 10 + 1 + 1 + 1, "role chunk... every chunk, the usage chunk and [DONE]"
    assert exit_code == 0
    # The worker answers until its drain is over (so a kept-alive connection's next request gets a clear
    # 503, not a reset: tests/e2e/test_security.py), and a new connection is told the same, never served.
    assert watch.new_connection_after_term == "answered 503", "no new request is served while draining"
    assert watch.request_id is not None
    rows = log_rows(pg_url, key_name)
    assert [(r["status"], r["stream"]) for r in rows] == [(200, True)], "the record was flushed before exit"
    assert rows[0]["completion_tokens"] > 0


def test_sigterm_past_the_grace_period_ends_the_stream_in_band_stops_the_upstream_and_keeps_its_record(
    stand_in: Upstream, pg_url: str
) -> None:
    """A stream that outlives the grace is ended by the gateway just before Granian's kill: an error event
    (gateway_shutdown) and [DONE], so SDKs see a clean end; the upstream request is cancelled; the
    request is recorded as gateway_shutdown."""
    gw, key_name = shutdown_gateway(stand_in, pg_url, grace=2)
    stand_in.behaviour = "slow_stream delay=0.5 chunks=30"  # about 15 s: far past the grace
    before = len(stand_in.requests)
    try:
        watch = StreamWatch(gw, term_after=2).run()
        exit_code = gw.process.wait(30)
    finally:
        stand_in.behaviour = "ok"
        gw.stop(signal.SIGKILL)

    ended_after = watch.ended_at - watch.term_at
    print(
        f"\ngrace 2 s: stream ended {ended_after:.2f} s after SIGTERM after {len(watch.events)} events "
        f"({watch.error or 'clean'}); last event before [DONE]: {watch.events[-2][:100]}"
    )
    assert watch.error is None, watch.error
    assert watch.events[-1] == "[DONE]"
    assert '"code":"gateway_shutdown"' in watch.events[-2], watch.events[-2]
    assert ended_after <= 6.0, "ended at the end of the grace, not at the end of the stream"
    assert exit_code == 0
    upstream_request = stand_in.requests[before]
    assert upstream_request.cancelled and not upstream_request.completed, "the upstream stops generating"
    rows = log_rows(pg_url, key_name)
    assert [r["error_type"] for r in rows] == ["gateway_shutdown"], rows


def test_a_grace_under_one_second_still_ends_streams_soon(stand_in: Upstream, pg_url: str) -> None:
    """Granian takes whole seconds and reads 0 as "wait forever": 0.5 must not become forever."""
    gw, _ = shutdown_gateway(stand_in, pg_url, grace=0.5)
    stand_in.behaviour = "slow_stream delay=0.5 chunks=30"  # about 15 s
    try:
        watch = StreamWatch(gw, term_after=2).run()
        exit_code = gw.process.wait(30)
    finally:
        stand_in.behaviour = "ok"
        gw.stop(signal.SIGKILL)

    assert watch.ended_at - watch.term_at <= 5.0, "ended after about a second, not at the stream's end"
    assert watch.events[-1] == "[DONE]" and '"code":"gateway_shutdown"' in watch.events[-2]
    assert exit_code == 0
