"""Kept Responses state across worker processes: a response is readable by the very next request,
whichever worker takes it (each request here opens its own connection, so the kernel spreads them)."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest
from support.agent_upstream import AgentUpstream
from support.gateway import Gateway, start_gateway
from support.schema import parse_sse

KEY = "sk-responses-workers-key-0b3d"


@pytest.fixture(scope="module")
def env() -> Iterator[tuple[Gateway, AgentUpstream]]:
    upstream = AgentUpstream()
    db = Path(tempfile.mkdtemp(prefix="sg-resp-workers-")) / "gw.db"
    gateway = start_gateway(
        {
            "database": f"sqlite:///{db}",
            "keys": [{"key": KEY, "name": "w"}],
            "upstreams": {"chat": {"base_url": upstream.url, "api_key": "sk-provider"}},
            "models": {"agent": "chat/agent-model"},
        },
        args=("--workers", "2"),
    )
    try:
        yield gateway, upstream
    finally:
        gateway.stop()
        upstream.close()


def post(gw: Gateway, body: dict[str, object]) -> httpx.Response:
    # A new connection per request: consecutive requests may land on either worker.
    return httpx.post(
        gw.url + "/v1/responses", json=body, headers={"authorization": f"Bearer {KEY}"}, timeout=30
    )


def test_every_response_can_be_continued_and_retrieved_at_once_on_any_worker(
    env: tuple[Gateway, AgentUpstream],
) -> None:
    gw, _ = env
    for i in range(12):
        stream = i % 2 == 1
        first = post(gw, {"model": "agent", "input": f"turn {i}", "stream": stream})
        assert first.status_code == 200, first.text
        if stream:
            rid = orjson.loads(parse_sse(first.content)[-1])["response"]["id"]
        else:
            rid = first.json()["id"]
        again = post(gw, {"model": "agent", "input": "next", "previous_response_id": rid})
        assert again.status_code == 200, f"round {i}: continuing {rid} failed: {again.text}"
        got = httpx.get(
            f"{gw.url}/v1/responses/{rid}", headers={"authorization": f"Bearer {KEY}"}, timeout=30
        )
        assert got.status_code == 200, f"round {i}: retrieving {rid} failed: {got.text}"


def test_a_deleted_response_is_gone_on_every_worker(env: tuple[Gateway, AgentUpstream]) -> None:
    gw, _ = env
    auth = {"authorization": f"Bearer {KEY}"}
    for i in range(8):
        made = post(gw, {"model": "agent", "input": f"delete me {i}"})
        assert made.status_code == 200, made.text
        rid = made.json()["id"]
        gone = httpx.delete(f"{gw.url}/v1/responses/{rid}", headers=auth, timeout=30)
        assert gone.status_code == 200, gone.text
        for _ in range(4):
            got = httpx.get(f"{gw.url}/v1/responses/{rid}", headers=auth, timeout=30)
            assert got.status_code == 404, f"round {i}: a deleted response was still served: {got.text[:200]}"
