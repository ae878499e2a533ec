"""What the upstream sees when the gateway or its client gives up before the answer's headers, with
each upstream client (`server.upstream_client`, docs/configuration.md).

aiohttp closes the upstream connection the moment the waiting task is cancelled, so a self-hosted
server stops generating at once. pyreqwest 0.15 cannot abort a request before its headers: the request
runs until the upstream answers (the answer is then dropped) or until reqwest's read timeout,
max(first_byte, idle) + 50 ms. With both, the client's answer, the record (499 client_disconnected,
504 upstream_first_byte_timeout) and the routing (no further attempt for a client that left) are the
same; these tests pin each client's side of the difference.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from metering_kit import LogTable, wait_until
from support.gateway import Gateway, start_gateway
from support.upstream import Upstream

KEY = "sk-cancel-test-client-key-7c41d0"
MESSAGES = [{"role": "user", "content": "Say hello"}]
FIRST_BYTE_S = 0.5
IDLE_S = 3.0


def answered(up: Upstream) -> bool:
    """The stand-in's last request was answered to its end (not cut off by the gateway)."""
    return bool(up.requests) and up.requests[-1].completed


@dataclass
class Rig:
    client: str
    gateway: Gateway
    ups: dict[str, Upstream]
    table: LogTable
    http: httpx.Client

    def rows(self, model: str) -> list[dict[str, Any]]:
        return self.table.rows("model_requested = ?", model)


@pytest.fixture(scope="module", params=["aiohttp", "pyreqwest"])
def rig(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    names = ("main", "hang", "slow", "last")
    ups = {name: Upstream() for name in names}
    try:
        ups["hang"].behaviour = "hang"
        ups["slow"].behaviour = "slow delay=5"
        database = f"sqlite:///{tmp_path_factory.mktemp('cancel') / 'gate.db'}"
        config = {
            "database": database,
            "server": {"upstream_client": request.param},
            "keys": [{"key": KEY, "name": "canceller"}],
            "upstreams": {
                "main": {"base_url": ups["main"].url, "api_key": "sk-provider"},
                # the gateway gives up on the first byte after 0.5 s; reqwest's read timeout is the idle's
                "short": {
                    "base_url": ups["main"].url,
                    "api_key": "sk-provider",
                    "timeouts": {"first_byte": FIRST_BYTE_S, "idle": IDLE_S},
                },
                "leave-hang": {
                    "base_url": ups["hang"].url,
                    "api_key": "sk-provider",
                    "timeouts": {"first_byte": FIRST_BYTE_S},
                },
                "leave-slow": {"base_url": ups["slow"].url, "api_key": "sk-provider"},
                "leave-last": {"base_url": ups["last"].url, "api_key": "sk-provider"},
            },
            "models": {
                "plain": "main/gpt-4o-mini",
                "short": "short/gpt-4o-mini",
                "leaving": [
                    {"upstream": "leave-hang"},
                    {"upstream": "leave-slow", "priority": 1},
                    {"upstream": "leave-last", "priority": 2},
                ],
            },
            "metering": {"flush_interval_s": 0.2},
            "timeouts": {"connect": 1, "first_byte": 10, "idle": 10, "total": 30},
            "routing": {
                "max_attempts": 3,
                "breaker": {"failures": 1000, "cooldown_s": 0.1, "max_cooldown_s": 0.1},
            },
        }
        gateway = start_gateway(config)
        with httpx.Client(
            base_url=gateway.url, headers={"Authorization": f"Bearer {KEY}"}, timeout=15
        ) as http:
            yield Rig(request.param, gateway, ups, LogTable(database), http)
        gateway.stop()
    finally:
        for up in ups.values():
            up.close()


@pytest.fixture
def fresh(rig: Rig) -> Rig:
    for name, up in rig.ups.items():
        up.reset()
        up.behaviour = {"hang": "hang", "slow": "slow delay=5"}.get(name, "ok")
    return rig


def test_a_client_leaving_before_the_headers(fresh: Rig) -> None:
    main = fresh.ups["main"]
    main.behaviour = "slow delay=3"
    with pytest.raises(httpx.ReadTimeout):
        fresh.http.post("/v1/chat/completions", json={"model": "plain", "messages": MESSAGES}, timeout=0.5)
    left_at = time.monotonic()
    rows = wait_until(lambda: fresh.rows("plain"), timeout=10)
    assert [(r["status"], r["error_type"]) for r in rows] == [(499, "client_disconnected")], rows
    if fresh.client == "aiohttp":
        assert main.wait_for(lambda: main.cancelled == 1, timeout=2), (
            "the upstream never saw the cancellation"
        )
        cancelled_at = main.last.cancelled_at
        assert cancelled_at is not None and cancelled_at - left_at < 1.0, cancelled_at
    else:
        # pyreqwest: the request runs on until the upstream answers (at 3 s); the answer is dropped then.
        assert main.wait_for(lambda: answered(main), timeout=5)
        assert main.cancelled == 0
    assert len(main.requests) == 1


def test_the_gateway_giving_up_on_a_hanging_upstream(fresh: Rig) -> None:
    main = fresh.ups["main"]
    main.behaviour = "hang"
    started = time.monotonic()
    response = fresh.http.post("/v1/chat/completions", json={"model": "short", "messages": MESSAGES})
    assert response.status_code == 504, response.text
    assert response.json()["error"]["code"] == "upstream_first_byte_timeout"
    assert time.monotonic() - started < FIRST_BYTE_S * 3 + 1.5  # up to 3 attempts of 0.5 s
    if fresh.client == "aiohttp":
        assert main.wait_for(lambda: main.cancelled == len(main.requests), timeout=2), (
            "the gateway kept the hanging upstream request open after answering 504"
        )
    else:
        # pyreqwest: each attempt's connection closes at reqwest's read timeout, max(first_byte, idle)
        # + 50 ms after it started: not before the idle timeout, and surely within a second of it.
        assert main.cancelled == 0
        assert main.wait_for(lambda: main.cancelled == len(main.requests), timeout=IDLE_S + 2), (
            "reqwest's read timeout did not close the abandoned request"
        )
        assert time.monotonic() - started >= IDLE_S - 0.1


def test_a_client_leaving_during_a_retry(fresh: Rig) -> None:
    # leave-hang never answers (first byte 0.5 s): the gateway retries on leave-slow (answers after 5 s);
    # the client gives up at 1.5 s, during that retry.
    slow, last = fresh.ups["slow"], fresh.ups["last"]
    with pytest.raises(httpx.TimeoutException):
        fresh.http.post("/v1/chat/completions", json={"model": "leaving", "messages": MESSAGES}, timeout=1.5)
    assert len(fresh.ups["hang"].requests) == 1
    assert slow.wait_for(lambda: len(slow.requests) == 1, timeout=2)
    if fresh.client == "aiohttp":
        assert slow.wait_for(lambda: slow.cancelled == 1, timeout=3), (
            "the retry went on after the client left"
        )
    else:
        # pyreqwest: the retry's request runs until leave-slow answers, 5 s after it was asked.
        assert slow.wait_for(lambda: answered(slow), timeout=6)
    time.sleep(FIRST_BYTE_S + 0.3)  # long enough for a third attempt to have started, were there one
    assert len(last.requests) == 0, "a further attempt started for a client that had left"
    rows = wait_until(lambda: fresh.rows("leaving"), timeout=10)
    assert [(r["status"], r["error_type"]) for r in rows] == [(499, "client_disconnected")], rows
    channels = {c["upstream"]: c for c in fresh.http.get("/readyz").json()["channels"]}
    assert channels["leave-slow"]["in_flight"] == 0 and channels["leave-hang"]["in_flight"] == 0, channels
    assert channels["leave-slow"]["consecutive_failures"] == 0, (
        "the client leaving counted against the channel"
    )


def test_answers_and_streams_come_through_either_client(fresh: Rig) -> None:
    whole = fresh.http.post("/v1/chat/completions", json={"model": "plain", "messages": MESSAGES})
    assert whole.status_code == 200, whole.text
    assert whole.json()["choices"][0]["message"]["content"]
    with fresh.http.stream(
        "POST", "/v1/chat/completions", json={"model": "plain", "messages": MESSAGES, "stream": True}
    ) as stream:
        assert stream.status_code == 200
        assert stream.headers["content-type"].startswith("text/event-stream")
        body = b"".join(stream.iter_bytes())
    assert body.rstrip().endswith(b"data: [DONE]"), body[-200:]
    assert body.count(b"data: ") > 3
    ok = wait_until(lambda: len([r for r in fresh.rows("plain") if r["status"] == 200]) >= 2, timeout=10)
    assert ok, fresh.rows("plain")
    assert [r["stream"] for r in fresh.rows("plain") if r["status"] == 200] == [0, 1]
