"""Keys and the three limits (who may call, what they may call, how much) through the real gateway.

Every test runs on a gateway whose store is SQLite and on one whose store is PostgreSQL. Keys are
made while the gateway runs, with the CLI or the admin API, each test with keys of its own, so no
test sees another's counters. Refusals are checked as a client sees them: status, OpenAI error code,
and the x-ratelimit / Retry-After headers clients use to back off.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import openai
import pytest
from support.deployment import CHAT_MESSAGES, PROVIDER_KEY, Deployment, deploy, wait_until
from support.gateway import make_openai_client

STATIC_RPM = "sk-static-rpm-limited-000000001"
STATIC_EMBED = "sk-static-embeddings-only-00002"
STATIC_EXPIRED = "sk-static-expired-00000000003"
STATIC_MODELS = "sk-static-gpt4o-only-000000004"
STATIC_KEYS = [
    {"key": STATIC_RPM, "name": "static-rpm", "rpm": 2},
    {"key": STATIC_EMBED, "name": "static-embed", "endpoints": ["embeddings"]},
    {"key": STATIC_EXPIRED, "name": "static-expired", "expires": "2020-01-01T00:00:00Z"},
    {"key": STATIC_MODELS, "name": "static-models", "models": ["gpt-4o*"]},
]
MODEL_RPM = 3  # o1-mini, all keys together

CHAT = {"model": "gpt-4o-mini", "messages": CHAT_MESSAGES}
# The stand-in's usage for CHAT: prompt = words + 3 = 4, completion = one token per chunk = 4.
TOKENS_PER_CHAT = 8
USD_PER_MTOK = 100_000.0  # priced-model: $0.10 a token, so a chat costs $0.80
USD_PER_CHAT = TOKENS_PER_CHAT * USD_PER_MTOK / 1e6


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def dep(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    deployment = deploy(
        request.param,
        tmp_path_factory.mktemp(request.param),
        keys=STATIC_KEYS,
        limits={"models": {"o1-mini": {"rpm": MODEL_RPM}}},
        extra_models={"priced-model": "up/house-model"},
        prices={"house-model": {"input": USD_PER_MTOK, "output": USD_PER_MTOK}},
    )
    yield deployment
    deployment.close()


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def chat(
    dep: Deployment, key: str, body: dict[str, Any] | None = None, headers: dict[str, str] | None = None
) -> httpx.Response:
    return httpx.post(
        f"{dep.gateway.base_url}/chat/completions",
        json=body or CHAT,
        headers={**auth(key), **(headers or {})},
        timeout=15,
    )


def assert_refused(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """An OpenAI-shaped refusal with this status and code, naming no secret."""
    assert response.status_code == status, (
        f"expected {status} {code}, got {response.status_code}: {response.text}"
    )
    error = response.json()["error"]
    assert error["code"] == code, error
    assert set(error) >= {"message", "type", "param", "code"}
    assert PROVIDER_KEY not in response.text
    return error


def one_header(response: httpx.Response, name: str) -> str:
    """The header's value, asserting it was sent exactly once (a client reads one number)."""
    values = response.headers.get_list(name)
    assert len(values) == 1, f"{name} sent {len(values)} times: {values}"
    return values[0]


# -- keys appear and disappear on a running gateway ------------------------------------------------


def test_key_created_with_the_cli_works_within_one_second(dep: Deployment) -> None:
    created = dep.cli("create", "--name", "cli-made", "--rpm", "100")
    wait_until(
        lambda: chat(dep, created["key"]).status_code == 200,
        timeout=1.0,
        what="a key created with the CLI did not work within 1 s",
    )


def test_key_created_with_the_admin_api_works_at_once_with_the_sdk(dep: Deployment) -> None:
    created = dep.create_key(models=["gpt-4o*"])
    with make_openai_client(dep.gateway, created["key"]) as client:
        answer = client.chat.completions.create(**CHAT)
    assert answer.choices[0].message.content == "Echo: hi #1 #2 #3"


def test_key_revoked_with_the_cli_is_refused_within_two_seconds(dep: Deployment) -> None:
    created = dep.create_key()
    assert chat(dep, created["key"]).status_code == 200
    dep.cli("revoke", created["id"])
    wait_until(
        lambda: chat(dep, created["key"]).status_code == 401,
        timeout=2.0,
        what="a key revoked with the CLI still worked 2 s later",
    )
    assert_refused(chat(dep, created["key"]), 401, "invalid_api_key")


def test_key_revoked_with_the_admin_api_is_refused_at_once(dep: Deployment) -> None:
    created = dep.create_key()
    assert chat(dep, created["key"]).status_code == 200
    assert dep.admin("DELETE", f"/admin/keys/{created['id']}").status_code == 200
    with make_openai_client(dep.gateway, created["key"]) as client, pytest.raises(openai.AuthenticationError):
        client.chat.completions.create(**CHAT)


def test_disabled_key_is_401_key_disabled_and_works_again_when_enabled(dep: Deployment) -> None:
    created = dep.create_key()
    assert dep.admin("PATCH", f"/admin/keys/{created['id']}", json={"enabled": False}).status_code == 200
    assert_refused(chat(dep, created["key"]), 401, "key_disabled")
    assert dep.admin("PATCH", f"/admin/keys/{created['id']}", json={"enabled": True}).status_code == 200
    assert chat(dep, created["key"]).status_code == 200


def _iso_in(seconds: float) -> str:
    return datetime.fromtimestamp(time.time() + seconds, UTC).isoformat(timespec="seconds")


def test_key_expiring_in_seconds_works_then_is_401_key_expired(dep: Deployment) -> None:
    expires = _iso_in(2.5)
    created = dep.create_key(expires=expires)
    assert chat(dep, created["key"]).status_code == 200
    time.sleep(max(0.0, datetime.fromisoformat(expires).timestamp() - time.time()) + 0.1)
    assert_refused(chat(dep, created["key"]), 401, "key_expired")


def test_expired_key_still_says_key_expired_after_other_keys_change(dep: Deployment) -> None:
    """The answer to an expired key must not depend on whether someone else changed a key since."""
    expires = _iso_in(2)
    created = dep.create_key(expires=expires)
    time.sleep(max(0.0, datetime.fromisoformat(expires).timestamp() - time.time()) + 0.1)
    dep.create_key()  # any change makes every gateway reload its keys
    assert_refused(chat(dep, created["key"]), 401, "key_expired")


def test_unknown_key_is_401_invalid_api_key(dep: Deployment) -> None:
    assert_refused(chat(dep, "sk-sg-not-a-key-anybody-issued-0000"), 401, "invalid_api_key")
    with (
        make_openai_client(dep.gateway, "sk-sg-not-a-key-anybody-issued-0000") as client,
        pytest.raises(openai.AuthenticationError),
    ):
        client.models.list()


# -- what a key may call ---------------------------------------------------------------------------


def test_model_outside_the_keys_globs_is_403_model_not_allowed(dep: Deployment) -> None:
    key = dep.create_key(models=["gpt-4o*"])["key"]
    assert chat(dep, key, {**CHAT, "model": "gpt-4o"}).status_code == 200
    error = assert_refused(chat(dep, key, {**CHAT, "model": "o1-mini"}), 403, "model_not_allowed")
    assert error["type"] == "permission_error"
    assert dep.upstream.wait_for(lambda: all(r.model == "gpt-4o-mini" for r in dep.upstream.requests))


def test_model_not_allowed_raises_permission_denied_in_the_sdk(dep: Deployment) -> None:
    key = dep.create_key(models=["gpt-4o*"])["key"]
    with (
        make_openai_client(dep.gateway, key) as client,
        pytest.raises(openai.PermissionDeniedError) as caught,
    ):
        client.chat.completions.create(**{**CHAT, "model": "o1-mini"})
    assert caught.value.code == "model_not_allowed"


def test_embeddings_only_key_calling_chat_is_403_endpoint_not_allowed(dep: Deployment) -> None:
    key = dep.create_key(endpoints=["embeddings"])["key"]
    embedded = httpx.post(
        f"{dep.gateway.base_url}/embeddings",
        headers=auth(key),
        timeout=15,
        json={"model": "text-embedding-3-small", "input": "hello"},
    )
    assert embedded.status_code == 200, embedded.text
    assert_refused(chat(dep, key), 403, "endpoint_not_allowed")


def test_key_for_another_network_is_403_network_not_allowed_from_loopback(dep: Deployment) -> None:
    key = dep.create_key(networks=["10.0.0.0/8"])["key"]
    assert_refused(chat(dep, key), 403, "network_not_allowed")


def test_spoofed_forwarded_for_does_not_pass_a_network_rule(dep: Deployment) -> None:
    key = dep.create_key(networks=["10.0.0.0/8"])["key"]
    assert_refused(chat(dep, key, headers={"X-Forwarded-For": "10.1.2.3"}), 403, "network_not_allowed")


def test_models_list_shows_only_what_the_key_may_use(dep: Deployment) -> None:
    key = dep.create_key(models=["gpt-4o*"])["key"]
    with make_openai_client(dep.gateway, key) as client:
        names = sorted(m.id for m in client.models.list())
        assert names == ["gpt-4o", "gpt-4o-mini"]
        with pytest.raises(openai.NotFoundError):
            client.models.retrieve("o1-mini")


# -- how much: rates ------------------------------------------------------------------------------


def test_successful_answer_carries_the_keys_request_rate_headers(dep: Deployment) -> None:
    key = dep.create_key(rpm=5)["key"]
    response = chat(dep, key)
    assert response.status_code == 200
    assert one_header(response, "x-ratelimit-limit-requests") == "5"
    assert one_header(response, "x-ratelimit-remaining-requests") == "4"
    assert one_header(response, "x-ratelimit-reset-requests").endswith(("ms", "s"))


def test_successful_answer_carries_the_keys_token_rate_headers(dep: Deployment) -> None:
    key = dep.create_key(tpm=50_000)["key"]
    response = chat(dep, key)
    assert response.status_code == 200
    assert one_header(response, "x-ratelimit-limit-tokens") == "50000"
    assert 0 < int(one_header(response, "x-ratelimit-remaining-tokens")) < 50_000
    assert one_header(response, "x-ratelimit-reset-tokens")


def test_keys_own_limits_replace_the_provider_accounts_rate_headers(dep: Deployment) -> None:
    """The stand-in sends its account's x-ratelimit-*-tokens (2,000,000); a key held to its own rpm
    must not be shown the provider account's token limit beside its own request limit."""
    key = dep.create_key(rpm=5)["key"]
    response = chat(dep, key)
    assert response.status_code == 200
    assert one_header(response, "x-ratelimit-limit-requests") == "5"
    assert "x-ratelimit-limit-tokens" not in response.headers, response.headers.get_list(
        "x-ratelimit-limit-tokens"
    )
    assert "x-ratelimit-remaining-tokens" not in response.headers


def test_relayed_upstream_error_carries_the_keys_rate_headers_once(dep: Deployment) -> None:
    key = dep.create_key(rpm=5)["key"]
    dep.upstream.script("status 400")
    response = chat(dep, key)
    assert response.status_code == 400, response.text
    assert one_header(response, "x-ratelimit-limit-requests") == "5"
    assert one_header(response, "x-ratelimit-remaining-requests") == "4"


def test_rpm_refusal_is_429_with_retry_after_and_rate_headers(dep: Deployment) -> None:
    key = dep.create_key(rpm=2)["key"]
    assert [chat(dep, key).status_code for _ in range(2)] == [200, 200]
    refused = chat(dep, key)
    error = assert_refused(refused, 429, "rate_limit_exceeded")
    assert error["type"] == "rate_limit_error"
    assert 1 <= int(refused.headers["retry-after"]) <= 30
    assert one_header(refused, "x-ratelimit-limit-requests") == "2"
    assert one_header(refused, "x-ratelimit-remaining-requests") == "0"
    assert one_header(refused, "x-ratelimit-reset-requests")


def test_rpm_refusal_raises_rate_limit_error_in_the_sdk(dep: Deployment) -> None:
    key = dep.create_key(rpm=1)["key"]
    with make_openai_client(dep.gateway, key) as client:
        client.chat.completions.create(**CHAT)
        with pytest.raises(openai.RateLimitError) as caught:
            client.chat.completions.create(**CHAT)
    assert caught.value.code == "rate_limit_exceeded"
    assert caught.value.response.headers["retry-after"]


async def test_rpm_30_with_100_concurrent_requests_admits_exactly_30(dep: Deployment) -> None:
    key = dep.create_key(rpm=30)["key"]
    limits = httpx.Limits(max_connections=100, max_keepalive_connections=100)
    async with httpx.AsyncClient(
        base_url=dep.gateway.base_url, headers=auth(key), timeout=30, limits=limits
    ) as client:
        responses = await asyncio.gather(*(client.post("/chat/completions", json=CHAT) for _ in range(100)))
    statuses = [r.status_code for r in responses]
    assert statuses.count(200) == 30, f"200s: {statuses.count(200)}, 429s: {statuses.count(429)}"
    assert statuses.count(429) == 70
    assert all(r.headers.get("retry-after") for r in responses if r.status_code == 429)


def test_model_limit_counts_all_keys_together(dep: Deployment) -> None:
    first, second = dep.create_key()["key"], dep.create_key()["key"]
    body = {**CHAT, "model": "o1-mini"}
    assert [chat(dep, k, body).status_code for k in (first, second, first)] == [200] * MODEL_RPM
    for key in (first, second):
        refused = chat(dep, key, body)
        error = assert_refused(refused, 429, "rate_limit_exceeded")
        assert "o1-mini" in error["message"]
        assert refused.headers.get("retry-after")
    assert chat(dep, second).status_code == 200, "another model is not held to o1-mini's limit"


# -- how much: budgets and concurrency ---------------------------------------------------------------


def stream_chat(dep: Deployment, key: str, body: dict[str, Any]) -> tuple[int, bytes]:
    with httpx.stream(
        "POST", f"{dep.gateway.base_url}/chat/completions", json=body, headers=auth(key), timeout=15
    ) as response:
        return response.status_code, response.read()


def test_token_budget_with_streams_runs_out_and_never_overspends(dep: Deployment) -> None:
    budget = 200
    key = dep.create_key(budget_tokens=budget)
    body = {**CHAT, "stream": True, "max_tokens": 4}
    served = 0
    status, text = stream_chat(dep, key["key"], body)
    while status == 200 and served < 100:
        assert text.rstrip().endswith(b"data: [DONE]")
        served += 1
        status, text = stream_chat(dep, key["key"], body)
    assert status == 429, text
    refused = httpx.post(
        f"{dep.gateway.base_url}/chat/completions", json=body, headers=auth(key["key"]), timeout=15
    )
    assert_refused(refused, 429, "insufficient_quota")
    assert refused.json()["error"]["type"] == "insufficient_quota"
    spent = served * TOKENS_PER_CHAT
    assert spent <= budget, f"{served} streams spent {spent} tokens of a {budget} budget"
    # The gateway reserves at most the body's length plus max_tokens for a request; it may stop
    # early by that one reservation, not more.
    reservation = len(httpx.Request("POST", "/", json=body).content) + body["max_tokens"]
    assert budget - spent < reservation + TOKENS_PER_CHAT, (
        f"the budget stopped after {served} streams ({spent} of {budget} tokens): stream usage not counted?"
    )


def test_usd_budget_runs_out_and_never_overspends(dep: Deployment) -> None:
    budget = 5.0
    key = dep.create_key(budget_usd=budget)["key"]
    body = {**CHAT, "model": "priced-model", "max_tokens": 4}
    served = 0
    while (answer := chat(dep, key, body)).status_code == 200 and served < 50:
        served += 1
    assert_refused(answer, 429, "insufficient_quota")
    spent = served * USD_PER_CHAT
    assert spent <= budget, f"{served} requests spent ${spent:.2f} of a ${budget:.2f} budget"
    reservation = (
        (len(httpx.Request("POST", "/", json=body).content) + body["max_tokens"]) * USD_PER_MTOK / 1e6
    )
    assert budget - spent < reservation + USD_PER_CHAT, (
        f"the budget stopped after {served} requests (${spent:.2f})"
    )


def test_tpm_refusal_is_429_with_token_rate_headers(dep: Deployment) -> None:
    tpm = 100
    key = dep.create_key(tpm=tpm)["key"]
    body = {**CHAT, "max_tokens": 4}
    served = 0
    while (answer := chat(dep, key, body)).status_code == 200 and served < 50:
        served += 1
    error = assert_refused(answer, 429, "rate_limit_exceeded")
    assert "token" in error["message"]
    assert 0 < served * TOKENS_PER_CHAT <= tpm
    assert one_header(answer, "x-ratelimit-limit-tokens") == str(tpm)
    assert int(one_header(answer, "x-ratelimit-remaining-tokens")) < tpm
    assert answer.headers["retry-after"]


async def test_concurrent_requests_overspend_a_token_budget_by_at_most_one_reservation(
    dep: Deployment,
) -> None:
    budget = 3000
    key = dep.create_key(budget_tokens=budget)["key"]
    # 1,000 one-letter words: the stand-in counts 1,003 prompt tokens (as a real tokenizer would count
    # about 1,000). With a budget, the gateway reserves the body's ~2,080 bytes (a token is at least a
    # byte) plus max_tokens, a true upper bound. Slow streams keep all six in flight at once.
    words = 1000
    body = {
        "model": "slow-model",
        "messages": [{"role": "user", "content": " ".join(["a"] * words)}],
        "max_tokens": 4,
        "stream": True,
    }
    used = words + 3 + 4  # the stand-in's usage for one of them
    reservation = len(httpx.Request("POST", "/", json=body).content) + body["max_tokens"]
    async with httpx.AsyncClient(base_url=dep.gateway.base_url, headers=auth(key), timeout=30) as client:
        responses = await asyncio.gather(*(client.post("/chat/completions", json=body) for _ in range(6)))
    spent = used * sum(r.status_code == 200 for r in responses)
    assert spent <= budget + reservation, (
        f"spent {spent} tokens of a {budget} budget (one reservation: {reservation})"
    )


async def test_concurrency_2_refuses_a_third_slow_stream_at_once_and_frees_a_slot_when_one_ends(
    dep: Deployment,
) -> None:
    key = dep.create_key(concurrency=2)["key"]
    body = {"model": "slow-model", "messages": CHAT_MESSAGES, "stream": True}
    async with httpx.AsyncClient(base_url=dep.gateway.base_url, headers=auth(key), timeout=30) as client:
        async with (
            client.stream("POST", "/chat/completions", json=body) as one,
            client.stream("POST", "/chat/completions", json=body) as two,
        ):
            assert (one.status_code, two.status_code) == (200, 200)
            lines = [one.aiter_lines(), two.aiter_lines()]
            assert [await anext(lines[0]), await anext(lines[1])] != []  # both are mid-stream now
            started = time.monotonic()
            third = await client.post("/chat/completions", json=body)
            assert time.monotonic() - started < 1.0, "the third stream was not refused at once"
            assert_refused(third, 429, "rate_limit_exceeded")
            assert third.headers.get("retry-after")
            async for _ in lines[0]:
                pass  # the first stream runs to its end and gives back its slot
        # (the second ends with the block too)
        fourth = await client.post("/chat/completions", json={**body, "stream": False})
        assert fourth.status_code == 200, fourth.text


def test_concurrency_slot_frees_when_a_stream_ends_while_another_is_open(dep: Deployment) -> None:
    key = dep.create_key(concurrency=1)["key"]
    body = {"model": "slow-model", "messages": CHAT_MESSAGES, "stream": True}
    with httpx.stream(
        "POST", f"{dep.gateway.base_url}/chat/completions", json=body, headers=auth(key), timeout=15
    ) as first:
        assert first.status_code == 200
        first.read()
    wait_until(
        lambda: chat(dep, key).status_code == 200,
        timeout=1.0,
        what="the slot did not come back when the stream ended",
    )


def test_concurrency_slot_comes_back_when_the_client_leaves_mid_stream(dep: Deployment) -> None:
    key = dep.create_key(concurrency=1)["key"]
    body = {"model": "slow-model", "messages": CHAT_MESSAGES, "stream": True}
    # Closing a response before its end closes the connection: the client is gone.
    with (
        httpx.Client(timeout=15) as client,
        client.stream(
            "POST", f"{dep.gateway.base_url}/chat/completions", json=body, headers=auth(key)
        ) as leaving,
    ):
        assert leaving.status_code == 200
        next(leaving.iter_lines())
    wait_until(
        lambda: chat(dep, key).status_code == 200,
        timeout=2.0,
        what="a stream whose client left kept its concurrency slot",
    )


def test_concurrency_slot_comes_back_after_an_upstream_error(dep: Deployment) -> None:
    key = dep.create_key(concurrency=1)["key"]
    dep.upstream.script("status 400")
    assert chat(dep, key).status_code == 400
    assert chat(dep, key).status_code == 200


def test_streamed_answer_carries_the_keys_rate_headers(dep: Deployment) -> None:
    key = dep.create_key(rpm=4)["key"]
    with httpx.stream(
        "POST",
        f"{dep.gateway.base_url}/chat/completions",
        json={**CHAT, "stream": True},
        headers=auth(key),
        timeout=15,
    ) as response:
        assert response.status_code == 200
        assert one_header(response, "x-ratelimit-limit-requests") == "4"
        assert one_header(response, "x-ratelimit-remaining-requests") == "3"
        response.read()


async def test_concurrent_streams_never_overspend_a_token_budget(dep: Deployment) -> None:
    budget = 100
    key = dep.create_key(budget_tokens=budget)["key"]
    body = {**CHAT, "stream": True, "max_tokens": 4}
    async with httpx.AsyncClient(base_url=dep.gateway.base_url, headers=auth(key), timeout=30) as client:
        responses = await asyncio.gather(*(client.post("/chat/completions", json=body) for _ in range(20)))
    served = [r for r in responses if r.status_code == 200]
    refused = [r for r in responses if r.status_code != 200]
    assert served, "no stream was admitted"
    assert len(served) * TOKENS_PER_CHAT <= budget
    assert refused and all(
        r.status_code == 429 and r.json()["error"]["code"] == "insufficient_quota" for r in refused
    )


# -- static keys from the file --------------------------------------------------------------------


def test_static_key_with_rpm_is_limited_like_a_managed_one(dep: Deployment) -> None:
    assert [chat(dep, STATIC_RPM).status_code for _ in range(2)] == [200, 200]
    refused = chat(dep, STATIC_RPM)
    assert_refused(refused, 429, "rate_limit_exceeded")
    assert one_header(refused, "x-ratelimit-limit-requests") == "2"
    assert refused.headers["retry-after"]


def test_static_embeddings_only_key_calling_chat_is_403(dep: Deployment) -> None:
    assert_refused(chat(dep, STATIC_EMBED), 403, "endpoint_not_allowed")


def test_static_key_past_its_expiry_is_401_key_expired(dep: Deployment) -> None:
    assert_refused(chat(dep, STATIC_EXPIRED), 401, "key_expired")


def test_static_key_models_list_and_refusal_follow_its_globs(dep: Deployment) -> None:
    with make_openai_client(dep.gateway, STATIC_MODELS) as client:
        assert sorted(m.id for m in client.models.list()) == ["gpt-4o", "gpt-4o-mini"]
    assert_refused(chat(dep, STATIC_MODELS, {**CHAT, "model": "o1-mini"}), 403, "model_not_allowed")


# -- secrets ------------------------------------------------------------------------------------------


def test_issued_keys_are_stored_hashed(dep: Deployment) -> None:
    created = dep.create_key(name="hashed")
    rows = {row["id"]: row for row in dep.api_key_rows()}
    row = rows[created["id"]]
    assert row["key_hash"] == hashlib.sha256(created["key"].encode()).hexdigest()
    for other in rows.values():
        assert all(created["key"] not in str(value) for value in other.values()), "a secret is in the table"


def test_secrets_are_absent_from_cli_and_admin_listings(dep: Deployment) -> None:
    created = dep.create_key(name="listed")
    digest = hashlib.sha256(created["key"].encode()).hexdigest()
    outputs = {
        "keys list --json": str(dep.cli("list", "--all")),
        "keys show --json": str(dep.cli("show", created["id"])),
        "GET /admin/keys": dep.admin("GET", "/admin/keys?all=1").text,
        "GET /admin/keys/{id}": dep.admin("GET", f"/admin/keys/{created['id']}").text,
    }
    assert created["id"] in outputs["keys list --json"]
    for where, text in outputs.items():
        assert created["key"] not in text, f"{where} shows a key's secret"
        assert digest not in text, f"{where} shows a key's hash"
        assert PROVIDER_KEY not in text, f"{where} shows the provider key"


def test_secrets_are_absent_from_error_bodies(dep: Deployment) -> None:
    key = dep.create_key(models=["gpt-4o*"], rpm=1)["key"]
    answers = [
        chat(dep, key, {**CHAT, "model": "o1-mini"}),
        chat(dep, key),
        chat(dep, key),
        chat(dep, key + "x"),
        chat(dep, key, {**CHAT, "model": "nope"}),
    ]
    assert [a.status_code for a in answers] == [403, 200, 429, 401, 403]
    for answer in answers[2:] + answers[:1]:
        assert key not in answer.text and PROVIDER_KEY not in answer.text
        assert all(key not in v and PROVIDER_KEY not in v for v in answer.headers.values())


def test_gateway_logs_never_contain_a_secret(dep: Deployment) -> None:
    """Runs last in the module: every key issued above, and the provider key, are absent."""
    assert dep.issued, "no key was issued in this module"
    logs = dep.gateway.logs()
    assert "admin: created key" in logs, "the gateway's log is not where this test looks"
    for secret in [*dep.issued, PROVIDER_KEY, STATIC_RPM, STATIC_EMBED, STATIC_MODELS]:
        assert secret not in logs, "a secret appears in the gateway's stdout/stderr"


# -- behind a trusted proxy ------------------------------------------------------------------------------


NETWORK_KEY = "sk-static-ten-net-only-00000005"


@pytest.fixture(scope="module")
def proxied(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    deployment = deploy(
        "sqlite",
        tmp_path_factory.mktemp("proxied"),
        server={"trusted_proxies": ["127.0.0.0/8"]},
        keys=[{"key": NETWORK_KEY, "name": "ten-net", "networks": ["10.0.0.0/8"]}],
    )
    yield deployment
    deployment.close()


def test_forwarded_address_from_a_trusted_proxy_passes_a_network_rule(proxied: Deployment) -> None:
    answer = chat(proxied, NETWORK_KEY, headers={"X-Forwarded-For": "10.1.2.3"})
    assert answer.status_code == 200, answer.text


def test_trusted_proxy_without_forwarded_for_is_judged_by_its_own_address(proxied: Deployment) -> None:
    assert_refused(chat(proxied, NETWORK_KEY), 403, "network_not_allowed")


def test_forwarded_address_outside_the_network_is_refused_behind_a_trusted_proxy(proxied: Deployment) -> None:
    assert_refused(
        chat(proxied, NETWORK_KEY, headers={"X-Forwarded-For": "192.0.2.7"}), 403, "network_not_allowed"
    )


def test_client_cannot_prepend_an_address_behind_a_trusted_proxy(proxied: Deployment) -> None:
    """A client's own X-Forwarded-For entry comes first; the proxy appends the real address."""
    assert_refused(
        chat(proxied, NETWORK_KEY, headers={"X-Forwarded-For": "10.1.2.3, 192.0.2.7"}),
        403,
        "network_not_allowed",
    )
