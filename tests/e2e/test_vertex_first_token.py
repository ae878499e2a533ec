"""Vertex AI before its first OAuth token: the request waits for it without blocking the event loop.

The token is fetched by a thread at start-up; a request that arrives before it used to wait on a
threading.Event inside the event loop, freezing the whole worker (/healthz included) for up to 10 s.
Here the stand-in's token endpoint holds the first token (a slow OAuth server) while a chat request
is in flight, and /healthz must keep answering; once the token comes, the waiting request goes out.
"""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import httpx
import pytest
from support.gateway import start_gateway
from support.vertex_upstream import VertexUpstream, service_account, trusted_vertex_config

from sluicegate.protocol.errors import UpstreamUnavailable
from sluicegate.providers.google_tokens import GoogleTokens


def test_healthz_answers_while_a_request_waits_for_the_first_vertex_token() -> None:
    upstream = VertexUpstream()
    upstream.hold_tokens.set()
    vertex = trusted_vertex_config(upstream, "sg-vertex-slow-")
    gateway = start_gateway(
        {
            "upstreams": {"vertex": vertex},
            "models": {"gemini-2.5-pro": "vertex"},
            "timeouts": {"connect": 60, "first_byte": 30, "idle": 30, "total": 90},
        }
    )
    answers: list[httpx.Response] = []
    body = {"model": "gemini-2.5-pro", "messages": [{"role": "user", "content": "Hello"}]}
    waiting = threading.Thread(
        target=lambda: answers.append(
            httpx.post(f"{gateway.base_url}/chat/completions", json=body, timeout=90)
        )
    )
    try:
        deadline = time.monotonic() + 30
        while upstream.token_requests == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert upstream.token_requests >= 1, "the gateway never asked for a token"
        waiting.start()
        # For three seconds after the request went in (the old code froze the loop for ten), every
        # /healthz must answer within five: the waiting request must not hold the event loop.
        slowest = 0.0
        window = time.monotonic() + 3
        while time.monotonic() < window:
            started = time.monotonic()
            health = httpx.get(f"{gateway.url}/healthz", timeout=5)
            slowest = max(slowest, time.monotonic() - started)
            assert health.status_code == 200
        assert waiting.is_alive() and not answers, "the request did not wait for the held token"
        upstream.hold_tokens.clear()
        waiting.join(60)
        assert answers, "the waiting request never finished"
        assert answers[0].status_code == 200, answers[0].text
        assert answers[0].json()["choices"][0]["message"]["content"] == "Hello from Gemini."
        sent = [r for r in upstream.received if r.path.endswith(":generateContent")]
        assert sent and sent[-1].authorization.startswith("Bearer ya29.standin-")
        assert slowest < 5
    finally:
        upstream.hold_tokens.clear()
        if waiting.is_alive():
            waiting.join(60)
        gateway.stop()
        upstream.close()


def test_waiting_for_the_first_token_gives_up_after_its_bound(tmp_path: Path) -> None:
    upstream = VertexUpstream()
    upstream.hold_tokens.set()
    try:
        upstream.trust(service_account(tmp_path / "sa.json", upstream.token_uri).public_key())
        tokens = GoogleTokens(str(tmp_path / "sa.json"))
        pending = tokens.pending(0.3)
        assert pending is not None, "no token yet, so a request has something to wait for"
        with pytest.raises(UpstreamUnavailable) as refused:
            asyncio.run(_wait(pending))
        assert refused.value.code == "upstream_auth_pending"
        upstream.hold_tokens.clear()
        tokens.current(wait_s=20)
        assert tokens.pending(0.3) is None, "with a token there is nothing to await"
        tokens.close()
    finally:
        upstream.hold_tokens.clear()
        upstream.close()


async def _wait(pending: object) -> None:
    await pending  # type: ignore[misc]
