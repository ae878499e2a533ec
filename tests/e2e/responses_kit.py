"""What the /v1/responses end-to-end modules share: one gateway per module in front of a chat-only
stand-in (translated), a stand-in serving the Responses API itself (`responses: native`), the general
echoing stand-in (for cut streams) and the built-in mock; two keys; the request log to read usage from.

Not a test module; each Responses test module binds its fixtures to module names, so each module gets
its own gateway (tests/e2e is on sys.path).
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import orjson
import pytest
from metering_kit import LogTable
from support.agent_upstream import AgentUpstream
from support.gateway import Gateway, start_gateway
from support.schema import SpecValidator, parse_sse
from support.upstream import Upstream

ALICE = "sk-responses-alice-key-7c1e"
BOB = "sk-responses-bob-key-2f9a"


@pytest.fixture(scope="module")
def env() -> Iterator[tuple[Gateway, AgentUpstream, AgentUpstream, LogTable]]:
    chat_only, native, echo = AgentUpstream(), AgentUpstream(native_responses=True), Upstream()
    db = Path(tempfile.mkdtemp(prefix="sg-responses-")) / "gw.db"
    gateway = start_gateway(
        {
            "database": f"sqlite:///{db}",
            "metering": {"flush_interval_s": 0.1},
            "passthrough": {"enabled": True, "upstream": "native"},
            "keys": [{"key": ALICE, "name": "alice"}, {"key": BOB, "name": "bob"}],
            "upstreams": {
                "chat": {"base_url": chat_only.url, "api_key": "sk-provider-chat"},
                "native": {"base_url": native.url, "api_key": "sk-provider-native", "responses": "native"},
                "echo": {"base_url": echo.url, "api_key": "sk-provider-echo"},
            },
            "models": {
                "agent": "chat/agent-model",
                "native-model": "native/upstream-native",
                "native-same": "native",
                "cut": "echo/behaviour=cut_stream,after=3",
                "demo": "mock/mock-gpt",
            },
        }
    )
    try:
        yield gateway, chat_only, native, LogTable(f"sqlite:///{db}")
    finally:
        gateway.stop()
        chat_only.close()
        native.close()
        echo.close()


@pytest.fixture
def gw(env: Any) -> Gateway:
    return env[0]


@pytest.fixture
def chat_up(env: Any) -> AgentUpstream:
    env[1].replies.clear()
    env[1].requests.clear()
    return env[1]


@pytest.fixture
def native_up(env: Any) -> AgentUpstream:
    env[2].requests.clear()
    return env[2]


@pytest.fixture
def log(env: Any) -> LogTable:
    return env[3]


def client(gw: Gateway, key: str = ALICE) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.url + "/v1", api_key=key, max_retries=0)


def raw(gw: Gateway, body: dict[str, Any], key: str = ALICE) -> httpx.Response:
    return httpx.post(
        gw.url + "/v1/responses", json=body, headers={"authorization": f"Bearer {key}"}, timeout=30
    )


def stream_events(response: httpx.Response, spec: SpecValidator) -> list[dict[str, Any]]:
    assert response.status_code == 200, response.text
    events = [orjson.loads(e) for e in parse_sse(response.content)]
    for i, ev in enumerate(events):
        spec.validate("ResponseStreamEvent", ev)
        assert ev["sequence_number"] == i
    return events
