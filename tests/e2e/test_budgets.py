"""Budgets that are exact and usable, through the real gateway: a budget with something left serves the
request with max_tokens lowered to what fits, a stream that passes its reservation is ended, and what is
charged follows how the request ended. The stand-in upstream ignores max_tokens, as careless ones do.

Each test runs on the memory limiter and on the Redis one (the clamp is decided inside acquire.lua).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest
from support.deployment import CHAT_MESSAGES, Deployment, deploy, wait_until

CHAT = {"model": "gpt-4o-mini", "messages": CHAT_MESSAGES}
USD_PER_TOKEN = 0.1  # priced-model: $0.10 a token in and out
CLAMP = "x-sluicegate-max-tokens-clamped"


@pytest.fixture(scope="module", params=["memory", "redis"])
def dep(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    sections: dict[str, Any] = {"redis": "redis://127.0.0.1:6379/11"} if request.param == "redis" else {}
    deployment = deploy(
        "sqlite",
        tmp_path_factory.mktemp(f"budgets-{request.param}"),
        extra_models={"priced-model": "up/house-model", "claude-compatible": "up/gpt-4o-mini"},
        prices={"house-model": {"input": USD_PER_TOKEN * 1e6, "output": USD_PER_TOKEN * 1e6}},
        **sections,
    )
    yield deployment
    deployment.close()


@pytest.fixture(autouse=True)
def fresh_upstream(dep: Deployment) -> None:
    dep.upstream.reset()


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def body_len(body: dict[str, Any]) -> int:
    """The bytes the gateway receives: with a budget it reserves them as the prompt's upper bound."""
    return len(httpx.Request("POST", "/", json=body).content)


def post(dep: Deployment, key: str, body: dict[str, Any], path: str = "/chat/completions") -> httpx.Response:
    return httpx.post(f"{dep.gateway.base_url}{path}", json=body, headers=auth(key), timeout=15)


def stream_events(dep: Deployment, key: str, body: dict[str, Any]) -> tuple[httpx.Response, list[bytes]]:
    with httpx.stream(
        "POST", f"{dep.gateway.base_url}/chat/completions", json=body, headers=auth(key), timeout=15
    ) as response:
        raw = response.read()
    return response, [e.removeprefix(b"data: ") for e in raw.split(b"\n\n") if e.strip()]


def settled(dep: Deployment, key_id: str, count: int = 1) -> None:
    """Wait until `count` requests of this key are logged: a record is queued after its limits settled
    (app.complete), so the next request sees what the previous one was charged, on Redis too."""

    def logged() -> bool:
        rows = dep.admin("GET", "/admin/logs?tail=500").json()["data"]
        return sum(r["key_id"] == key_id for r in rows) >= count

    assert wait_until(logged, timeout=10) is not None, f"{count} request(s) of the key were not logged"


def content_events(events: list[bytes]) -> list[str]:
    out = []
    for data in events:
        if data == b"[DONE]":
            continue
        doc = orjson.loads(data)
        for choice in doc.get("choices") or []:
            if choice.get("delta", {}).get("content"):
                out.append(choice["delta"]["content"])
    return out


# -- the clamp ---------------------------------------------------------------------------------------


def test_a_fresh_1000_token_budget_serves_a_request_without_max_tokens_clamped_to_what_is_left(
    dep: Deployment,
) -> None:
    key = dep.create_key(budget_tokens=1000)["key"]
    answer = post(dep, key, CHAT)
    assert answer.status_code == 200, answer.text
    fits = 1000 - body_len(CHAT)
    assert answer.headers[CLAMP] == str(fits)
    assert dep.upstream.last.json["max_tokens"] == fits


def test_a_request_that_fits_keeps_its_max_tokens_and_gets_no_clamp_header(dep: Deployment) -> None:
    key = dep.create_key(budget_tokens=100_000)["key"]
    answer = post(dep, key, {**CHAT, "max_tokens": 50})
    assert answer.status_code == 200, answer.text
    assert CLAMP not in answer.headers
    assert dep.upstream.last.json["max_tokens"] == 50


def test_max_completion_tokens_is_the_field_lowered_when_the_client_used_it(dep: Deployment) -> None:
    key = dep.create_key(budget_tokens=1000)["key"]
    body = {**CHAT, "max_completion_tokens": 5000}
    answer = post(dep, key, body)
    assert answer.status_code == 200, answer.text
    sent = dep.upstream.last.json
    assert sent["max_completion_tokens"] == 1000 - body_len(body) == int(answer.headers[CLAMP])
    assert "max_tokens" not in sent


def test_a_money_budget_clamps_through_the_price_table(dep: Deployment) -> None:
    body = {"model": "priced-model", "messages": CHAT_MESSAGES, "max_tokens": 1000}
    key = dep.create_key(budget_usd=USD_PER_TOKEN * (body_len(body) + 25.5))["key"]
    answer = post(dep, key, body)
    assert answer.status_code == 200, answer.text
    assert answer.headers[CLAMP] == "25"
    assert dep.upstream.last.json["max_tokens"] == 25


def test_the_tighter_of_a_token_and_a_money_budget_sets_the_clamp(dep: Deployment) -> None:
    body = {"model": "priced-model", "messages": CHAT_MESSAGES, "max_tokens": 1000}
    n = body_len(body)
    key = dep.create_key(budget_tokens=n + 40, budget_usd=USD_PER_TOKEN * (n + 25.5))["key"]
    assert post(dep, key, body).headers[CLAMP] == "25"
    other = dep.create_key(budget_tokens=n + 15, budget_usd=USD_PER_TOKEN * (n + 25.5))["key"]
    assert post(dep, other, body).headers[CLAMP] == "15"


def test_completions_with_a_list_of_prompts_reserve_for_every_prompt_and_choice(dep: Deployment) -> None:
    body = {"model": "gpt-4o-mini", "prompt": ["a", "b", "c"], "n": 2, "max_tokens": 100}
    key = dep.create_key(budget_tokens=body_len(body) + 300)["key"]
    answer = post(dep, key, body, "/completions")
    assert answer.status_code == 200, answer.text
    assert answer.headers[CLAMP] == "50"  # 300 tokens left over six answers
    assert dep.upstream.last.json["max_tokens"] == 50


def test_anthropic_messages_max_tokens_is_lowered_to_the_budget(dep: Deployment) -> None:
    key = dep.create_key(budget_tokens=1000)["key"]
    answer = httpx.post(
        f"{dep.gateway.url}/v1/messages",
        headers={"x-api-key": key},
        json={"model": "claude-compatible", "max_tokens": 4096, "messages": CHAT_MESSAGES},
        timeout=15,
    )
    assert answer.status_code == 200, answer.text
    clamp = int(answer.headers[CLAMP])
    assert 0 < clamp < 1000
    assert dep.upstream.last.json["max_tokens"] == clamp
    assert answer.json()["type"] == "message"


# -- refusals say what is left ---------------------------------------------------------------------------


def test_a_refusal_says_what_is_left_and_what_the_request_needs(dep: Deployment) -> None:
    n = body_len(CHAT)
    created = dep.create_key(budget_tokens=n + 5)
    key = created["key"]
    assert post(dep, key, CHAT).status_code == 200  # the stand-in used 4 + 4 = 8 tokens
    settled(dep, created["id"])
    refused = post(dep, key, CHAT)
    assert refused.status_code == 429, refused.text
    error = refused.json()["error"]
    assert error["code"] == "insufficient_quota"
    assert f"has {n - 3} tokens left" in error["message"]
    assert f"needs at least {n + 1} tokens" in error["message"]


def test_an_answer_over_its_clamp_is_charged_what_it_used_and_the_refusal_says_so(dep: Deployment) -> None:
    created = dep.create_key(budget_tokens=3000)
    key = created["key"]
    dep.upstream.script("ok chunks=5000")  # ignores max_tokens: 5,000 completion tokens reported
    answer = post(dep, key, {**CHAT, "max_tokens": 10})
    assert answer.status_code == 200, answer.text
    assert answer.json()["usage"]["completion_tokens"] == 5000
    settled(dep, created["id"])
    refused = post(dep, key, CHAT)
    assert refused.status_code == 429
    assert "is spent: 5004 tokens used" in refused.json()["error"]["message"]


# -- streams end at their reservation -----------------------------------------------------------------------


def test_a_stream_past_its_reservation_ends_with_budget_exceeded_and_done(dep: Deployment) -> None:
    n = body_len({**CHAT, "stream": True, "max_tokens": 5})
    created = dep.create_key(budget_tokens=n + 60)
    key = created["key"]
    dep.upstream.script("ok chunks=40")
    response, events = stream_events(dep, key, {**CHAT, "stream": True, "max_tokens": 5})
    assert response.status_code == 200
    assert events[-1] == b"[DONE]"
    error = orjson.loads(events[-2])["error"]
    assert error["code"] == "budget_exceeded"
    relayed = content_events(events)
    assert 1 <= len(relayed) <= 5, relayed
    # Charged what it relayed, not refunded: what the next request is given shows what is left.
    settled(dep, created["id"])
    after = post(dep, key, CHAT)
    charged = n + 60 - body_len(CHAT) - int(after.headers[CLAMP])
    assert 1 <= charged < 40, charged


def test_an_endless_stream_is_ended_at_what_the_budget_had_left(dep: Deployment) -> None:
    created = dep.create_key(budget_tokens=800)
    key = created["key"]
    dep.upstream.script("endless")
    body = {**CHAT, "stream": True}
    response, events = stream_events(dep, key, body)
    assert response.status_code == 200
    cap = int(response.headers[CLAMP])
    assert cap == 800 - body_len(body)
    assert orjson.loads(events[-2])["error"]["code"] == "budget_exceeded"
    assert len(content_events(events)) <= cap
    assert dep.upstream.wait_for(lambda: dep.upstream.cancelled == 1), "the endless upstream was not dropped"
    settled(dep, created["id"])
    assert post(dep, key, CHAT).status_code == 429  # what was relayed used the budget up


def test_an_anthropic_stream_past_its_reservation_ends_with_an_error_event(dep: Deployment) -> None:
    key = dep.create_key(budget_tokens=100_000)["key"]
    dep.upstream.script("ok chunks=40")
    with httpx.stream(
        "POST",
        f"{dep.gateway.url}/v1/messages",
        headers={"x-api-key": key},
        json={"model": "claude-compatible", "max_tokens": 5, "stream": True, "messages": CHAT_MESSAGES},
        timeout=15,
    ) as response:
        raw = response.read().decode()
    names = re.findall(r"^event: (\S+)", raw, re.MULTILINE)
    assert names[-1] == "error", names
    assert "message_stop" not in names
    assert "budget" in raw.rsplit("event: error", 1)[1]


# -- an abandoned stream is charged what was relayed ---------------------------------------------------------


def test_a_stream_the_client_abandons_is_charged_what_was_relayed(dep: Deployment) -> None:
    body = {"model": "slow-model", "messages": CHAT_MESSAGES, "stream": True, "max_tokens": 100}
    n = body_len(body)
    created = dep.create_key(budget_tokens=n + 200)
    key = created["key"]
    with (
        httpx.Client(timeout=15) as client,
        client.stream("POST", f"{dep.gateway.base_url}/chat/completions", json=body, headers=auth(key)) as r,
    ):
        assert r.status_code == 200
        lines = r.iter_lines()
        seen = 0
        for line in lines:
            if '"content":"Echo' in line:
                seen += 1
                break
        assert seen == 1
    assert dep.slow_upstream.wait_for(lambda: dep.slow_upstream.cancelled == 1), (
        "the client's leaving was not seen"
    )
    settled(dep, created["id"])
    after = post(dep, key, CHAT)
    assert after.status_code == 200, after.text
    charged = n + 200 - body_len(CHAT) - int(after.headers[CLAMP])
    # A refund would leave all of it (0 charged); the prompt and the text relayed were charged.
    assert 1 <= charged <= 60, charged


def test_a_key_without_a_budget_sends_the_body_as_it_was(dep: Deployment) -> None:
    key = dep.create_key(tpm=100_000)["key"]
    answer = post(dep, key, CHAT)
    assert answer.status_code == 200, answer.text
    assert CLAMP not in answer.headers
    assert "max_tokens" not in dep.upstream.last.json
