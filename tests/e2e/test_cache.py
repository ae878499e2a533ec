"""The response cache end to end (issue 17): a real gateway on PostgreSQL, the official SDKs, and the
stand-in upstream counting what reaches it. Hits, misses and bypasses; streams both ways; Responses;
Anthropic Messages; embeddings batches partly cached; TTL; scope isolation; the log and /metrics."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from typing import Any

import anthropic
import asyncpg
import httpx
import openai
import pytest
from support.gateway import Gateway, free_port, start_gateway
from support.pg import fresh_postgres_database
from support.upstream import Upstream

ADMIN_KEY = "sk-admin-cache-tests-0000"
KEY_A = "sk-cache-team-a-0001"
KEY_B = "sk-cache-team-b-0002"
KEY_OFF = "sk-cache-keyoff-0003"
KEY_RPM = "sk-cache-rpm-limited-0004"
KEY_BUDGET = "sk-cache-budgeted-0005"
KEY_ROOMY = "sk-cache-budget-roomy-0008"
KEY_X1 = "sk-cache-team-x-one-0006"
KEY_X2 = "sk-cache-team-x-two-0007"


def cache_config(upstream: Upstream, database: str, **cache: Any) -> dict[str, Any]:
    return {
        "database": database,
        "admin_key": ADMIN_KEY,
        "keys": [
            {"key": KEY_A, "name": "team-a"},
            {"key": KEY_B, "name": "team-b"},
            {"key": KEY_OFF, "name": "no-cache", "cache": "off"},
            {"key": KEY_RPM, "name": "rpm-limited", "rpm": 3},
            {"key": KEY_BUDGET, "name": "budgeted", "budget_tokens_day": 400},
            {"key": KEY_ROOMY, "name": "roomy", "budget_tokens_day": 3000},
            {"key": KEY_X1, "name": "x-one", "owner": "team-x"},
            {"key": KEY_X2, "name": "x-two", "owner": "team-x"},
        ],
        "upstreams": {"up": {"base_url": upstream.url, "api_key": "sk-provider"}},
        "models": {
            "gpt-4o-mini": "up",
            "brief": "up/gpt-4o-mini",
            "anything": "up/gpt-4o-mini",
            "text-embedding-3-small": "up",
            "spender": "up/behaviour=ok,chunks=380",
            "teamwide": "up/gpt-4o-mini",
            "everyone": "up/gpt-4o-mini",  # answers of 380 tokens: spends a budget at once
        },
        "prices": {
            "gpt-4o-mini": {"input": 1.0, "output": 2.0},
            "text-embedding-3-small": {"input": 0.5, "output": 0.0},
        },
        "metering": {"flush_interval_s": 0.2},
        "cache": {
            "enabled": True,
            "ttl_s": 600,
            "models": {
                "brief": {"ttl_s": 1},
                "anything": {"deterministic_only": False},
                "teamwide": {"scope": "owner"},
                "everyone": {"scope": "global"},
            },
            **cache,
        },
    }


@pytest.fixture(scope="module")
def database() -> Iterator[str]:
    with fresh_postgres_database("sg_cache") as url:
        yield url


@pytest.fixture(scope="module")
def stand_in() -> Iterator[Upstream]:
    with Upstream() as up:
        yield up


@pytest.fixture(scope="module")
def gw(stand_in: Upstream, database: str) -> Iterator[Gateway]:
    gateway = start_gateway(cache_config(stand_in, database))
    yield gateway
    gateway.stop()


@pytest.fixture
def upstream(stand_in: Upstream) -> Upstream:
    stand_in.reset()
    return stand_in


def client(gw: Gateway, key: str = KEY_A) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.base_url, api_key=key, max_retries=0, timeout=15)


def unique(text: str) -> str:
    return f"{text} {uuid.uuid4().hex[:8]}"


def chat(
    gw: Gateway, content: str, key: str = KEY_A, headers: dict[str, str] | None = None, **kw: Any
) -> Any:
    kw.setdefault("temperature", 0)
    return client(gw, key).chat.completions.with_raw_response.create(
        model=kw.pop("model", "gpt-4o-mini"),
        messages=[{"role": "user", "content": content}],
        extra_headers=headers or {},
        **kw,
    )


def test_chat_miss_then_hit_with_age_and_the_same_answer(gw: Gateway, upstream: Upstream) -> None:
    prompt = unique("what is a sluice")
    first = chat(gw, prompt)
    assert first.headers["x-sluicegate-cache"] == "miss"
    second = chat(gw, prompt)
    assert second.headers["x-sluicegate-cache"] == "hit"
    assert int(second.headers["age"]) >= 0
    assert len(upstream.requests) == 1, "a hit went upstream"
    a, b = first.parse(), second.parse()
    assert b.choices[0].message.content == a.choices[0].message.content
    assert b.usage is not None and b.usage.total_tokens == a.usage.total_tokens  # type: ignore[union-attr]
    # `user` does not change the answer: the same entry serves it.
    third = chat(gw, prompt, user="someone-else")
    assert third.headers["x-sluicegate-cache"] == "hit"
    assert len(upstream.requests) == 1


def test_parameters_that_change_the_answer_change_the_key(gw: Gateway, upstream: Upstream) -> None:
    prompt = unique("keyed")
    chat(gw, prompt)
    assert chat(gw, prompt, max_tokens=7).headers["x-sluicegate-cache"] == "miss"
    assert chat(gw, prompt, model="anything").headers["x-sluicegate-cache"] == "miss"
    assert len(upstream.requests) == 3


def test_nondeterministic_requests_bypass_unless_the_route_says_otherwise(
    gw: Gateway, upstream: Upstream
) -> None:
    prompt = unique("be creative")
    for _ in range(2):
        assert chat(gw, prompt, temperature=0.9).headers["x-sluicegate-cache"] == "bypass"
    assert len(upstream.requests) == 2
    assert chat(gw, prompt, temperature=0.9, model="anything").headers["x-sluicegate-cache"] == "miss"
    assert chat(gw, prompt, temperature=0.9, model="anything").headers["x-sluicegate-cache"] == "hit"
    assert len(upstream.requests) == 3
    # A seed is deterministic enough.
    assert chat(gw, prompt, temperature=0.9, seed=7).headers["x-sluicegate-cache"] == "miss"
    assert chat(gw, prompt, temperature=0.9, seed=7).headers["x-sluicegate-cache"] == "hit"


def test_request_headers_refresh_skip_and_turn_off(gw: Gateway, upstream: Upstream) -> None:
    prompt = unique("directives")
    chat(gw, prompt)
    refreshed = chat(gw, prompt, headers={"Cache-Control": "no-cache"})
    assert refreshed.headers["x-sluicegate-cache"] == "miss"
    assert chat(gw, prompt, headers={"x-sluicegate-cache": "refresh"}).headers["x-sluicegate-cache"] == "miss"
    assert chat(gw, prompt, headers={"x-sluicegate-cache": "off"}).headers["x-sluicegate-cache"] == "bypass"
    assert len(upstream.requests) == 4
    assert chat(gw, prompt).headers["x-sluicegate-cache"] == "hit"
    other = unique("not stored")
    assert chat(gw, other, headers={"Cache-Control": "no-store"}).headers["x-sluicegate-cache"] == "miss"
    assert chat(gw, other).headers["x-sluicegate-cache"] == "miss", "a no-store answer was stored"


def test_a_key_with_cache_off_is_never_cached(gw: Gateway, upstream: Upstream) -> None:
    prompt = unique("key off")
    for _ in range(2):
        assert chat(gw, prompt, key=KEY_OFF).headers["x-sluicegate-cache"] == "bypass"
    assert len(upstream.requests) == 2


def test_a_managed_keys_cache_setting_takes_effect(gw: Gateway, upstream: Upstream) -> None:
    admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
    made = httpx.post(f"{gw.url}/admin/keys", headers=admin, json={"name": unique("managed"), "cache": "off"})
    assert made.status_code == 201, made.text
    assert made.json()["cache"] == "off"
    secret, key_id = made.json()["key"], made.json()["id"]
    prompt = unique("managed key")

    def state() -> str:
        deadline = time.monotonic() + 5  # a key change reaches the gateway within a poll
        while True:
            try:
                return str(chat(gw, prompt, key=secret).headers["x-sluicegate-cache"])
            except openai.AuthenticationError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    assert state() == "bypass"
    changed = httpx.patch(f"{gw.url}/admin/keys/{key_id}", headers=admin, json={"cache": None})
    assert changed.status_code == 200 and changed.json()["cache"] is None
    deadline = time.monotonic() + 5
    while state() == "bypass" and time.monotonic() < deadline:
        time.sleep(0.2)
    assert state() == "hit"


def test_scope_isolation_between_keys(gw: Gateway, upstream: Upstream) -> None:
    prompt = unique("private answer")
    chat(gw, prompt, key=KEY_A)
    assert chat(gw, prompt, key=KEY_B).headers["x-sluicegate-cache"] == "miss"
    assert chat(gw, prompt, key=KEY_A).headers["x-sluicegate-cache"] == "hit"
    assert chat(gw, prompt, key=KEY_B).headers["x-sluicegate-cache"] == "hit"
    assert len(upstream.requests) == 2


def test_owner_and_global_scopes(gw: Gateway, upstream: Upstream) -> None:
    prompt = unique("team answer")
    assert chat(gw, prompt, key=KEY_X1, model="teamwide").headers["x-sluicegate-cache"] == "miss"
    assert chat(gw, prompt, key=KEY_X2, model="teamwide").headers["x-sluicegate-cache"] == "hit"
    assert chat(gw, prompt, key=KEY_A, model="teamwide").headers["x-sluicegate-cache"] == "miss"  # no owner
    assert len(upstream.requests) == 2
    assert chat(gw, prompt, key=KEY_A, model="everyone").headers["x-sluicegate-cache"] == "miss"
    assert chat(gw, prompt, key=KEY_B, model="everyone").headers["x-sluicegate-cache"] == "hit"
    assert chat(gw, prompt, key=KEY_X1, model="everyone").headers["x-sluicegate-cache"] == "hit"
    assert len(upstream.requests) == 3


def test_ttl_expiry(gw: Gateway, upstream: Upstream) -> None:
    prompt = unique("short lived")
    chat(gw, prompt, model="brief")
    assert chat(gw, prompt, model="brief").headers["x-sluicegate-cache"] == "hit"
    time.sleep(1.3)
    assert chat(gw, prompt, model="brief").headers["x-sluicegate-cache"] == "miss"
    assert len(upstream.requests) == 2


def stream_chat(gw: Gateway, prompt: str, include_usage: bool) -> tuple[str, str, Any, list[Any]]:
    opts = {"stream_options": {"include_usage": True}} if include_usage else {}
    raw = client(gw).chat.completions.with_raw_response.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": prompt}],
        temperature=0,
        stream=True,
        **opts,
    )
    chunks = list(raw.parse())
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    usage = next((c.usage for c in chunks if c.usage), None)
    return raw.headers["x-sluicegate-cache"], text, usage, chunks


def test_a_stream_is_cached_whole_and_served_as_json(gw: Gateway, upstream: Upstream) -> None:
    prompt = unique("stream first")
    state, text, _usage, chunks = stream_chat(gw, prompt, include_usage=False)
    assert state == "miss" and text
    hit = chat(gw, prompt)
    assert hit.headers["x-sluicegate-cache"] == "hit"
    answer = hit.parse()
    assert answer.choices[0].message.content == text
    assert answer.choices[0].finish_reason == "stop"
    assert answer.usage is not None and answer.usage.completion_tokens > 0
    assert len(upstream.requests) == 1


def test_a_json_answer_is_replayed_as_a_stream_with_usage_and_done(gw: Gateway, upstream: Upstream) -> None:
    prompt = unique("json first")
    whole = chat(gw, prompt).parse()
    state, text, usage, chunks = stream_chat(gw, prompt, include_usage=True)
    assert state == "hit"
    assert text == whole.choices[0].message.content
    assert usage is not None and usage.total_tokens == whole.usage.total_tokens  # type: ignore[union-attr]
    assert chunks[-1].choices == [] and chunks[-2].choices[0].finish_reason == "stop"
    state, _text, usage, _chunks = stream_chat(gw, prompt, include_usage=False)
    assert state == "hit" and usage is None
    raw = httpx.post(
        f"{gw.base_url}/chat/completions",
        headers={"Authorization": f"Bearer {KEY_A}"},
        json={
            "model": "gpt-4o-mini",
            "messages": [{"role": "user", "content": prompt}],
            "temperature": 0,
            "stream": True,
        },
    )
    assert raw.headers["content-type"].startswith("text/event-stream")
    assert raw.text.rstrip().endswith("data: [DONE]")
    assert len(upstream.requests) == 1


def test_responses_api_hits_whole_and_streamed(gw: Gateway, upstream: Upstream) -> None:
    prompt = unique("responses")
    c = client(gw)
    first = c.responses.with_raw_response.create(model="gpt-4o-mini", input=prompt, temperature=0)
    assert first.headers["x-sluicegate-cache"] == "miss"
    second = c.responses.with_raw_response.create(model="gpt-4o-mini", input=prompt, temperature=0)
    assert second.headers["x-sluicegate-cache"] == "hit"
    assert second.parse().output_text == first.parse().output_text
    with c.responses.stream(model="gpt-4o-mini", input=prompt, temperature=0) as stream:
        deltas = "".join(e.delta for e in stream if e.type == "response.output_text.delta")
        final = stream.get_final_response()
    assert deltas == first.parse().output_text == final.output_text
    assert len(upstream.requests) == 1
    # A streamed miss is kept whole too.
    other = unique("responses streamed first")
    with c.responses.stream(model="gpt-4o-mini", input=other, temperature=0) as stream:
        streamed = stream.get_final_response().output_text
    again = c.responses.with_raw_response.create(model="gpt-4o-mini", input=other, temperature=0)
    assert again.headers["x-sluicegate-cache"] == "hit" and again.parse().output_text == streamed
    assert len(upstream.requests) == 2


def test_anthropic_messages_hits_whole_and_streamed(gw: Gateway, upstream: Upstream) -> None:
    prompt = unique("messages")
    c = anthropic.Anthropic(base_url=gw.url, api_key=KEY_A, max_retries=0, timeout=15)
    args: dict[str, Any] = {
        "model": "gpt-4o-mini",
        "max_tokens": 64,
        "extra_body": {"temperature": 0},  # this SDK's create() has no temperature parameter
        "messages": [{"role": "user", "content": prompt}],
    }
    first = c.messages.with_raw_response.create(**args)
    assert first.headers["x-sluicegate-cache"] == "miss"
    second = c.messages.with_raw_response.create(**args)
    assert second.headers["x-sluicegate-cache"] == "hit"
    text = first.parse().content[0].text  # type: ignore[union-attr]
    assert second.parse().content[0].text == text  # type: ignore[union-attr]
    with c.messages.stream(**args) as stream:
        streamed = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert streamed == text and final.stop_reason == "end_turn"
    assert len(upstream.requests) == 1
    other = {**args, "messages": [{"role": "user", "content": unique("messages streamed first")}]}
    with c.messages.stream(**other) as stream:
        streamed = "".join(stream.text_stream)
    again = c.messages.with_raw_response.create(**other)
    assert again.headers["x-sluicegate-cache"] == "hit"
    assert again.parse().content[0].text == streamed  # type: ignore[union-attr]
    assert len(upstream.requests) == 2


def test_embeddings_partial_batch_sends_only_new_inputs(gw: Gateway, upstream: Upstream) -> None:
    a, b, c_ = unique("alpha"), unique("beta"), unique("gamma")
    cl = client(gw)
    first = cl.embeddings.with_raw_response.create(model="text-embedding-3-small", input=[a, b])
    assert first.headers["x-sluicegate-cache"] == "miss"
    vectors = {item_text: d.embedding for item_text, d in zip([a, b], first.parse().data, strict=True)}
    mixed = cl.embeddings.with_raw_response.create(model="text-embedding-3-small", input=[b, c_, a])
    assert mixed.headers["x-sluicegate-cache"] == "miss"
    assert mixed.headers["x-sluicegate-cache-inputs-hit"] == "2"
    assert upstream.requests[-1].json["input"] == [c_], "cached inputs went upstream again"
    data = mixed.parse().data
    assert [d.index for d in data] == [0, 1, 2]
    assert data[0].embedding == vectors[b] and data[2].embedding == vectors[a]
    whole = cl.embeddings.with_raw_response.create(model="text-embedding-3-small", input=[c_, a])
    assert whole.headers["x-sluicegate-cache"] == "hit"
    assert whole.parse().data[0].embedding == data[1].embedding
    one = cl.embeddings.with_raw_response.create(model="text-embedding-3-small", input=a)
    assert one.headers["x-sluicegate-cache"] == "hit" and one.parse().data[0].embedding == vectors[a]
    assert len(upstream.requests) == 2


def test_hits_count_against_rpm(gw: Gateway, upstream: Upstream) -> None:
    prompt = unique("rate limited")
    states = [chat(gw, prompt, key=KEY_RPM).headers["x-sluicegate-cache"] for _ in range(3)]
    assert states == ["miss", "hit", "hit"]
    with pytest.raises(openai.RateLimitError):
        chat(gw, prompt, key=KEY_RPM)
    assert len(upstream.requests) == 1


def test_hits_are_served_when_the_budget_is_spent(gw: Gateway, upstream: Upstream) -> None:
    prompt = unique("budget")
    first = chat(
        gw, prompt, key=KEY_BUDGET, model="spender", max_tokens=200
    )  # within the budget: not lowered
    assert first.headers["x-sluicegate-cache"] == "miss"
    with pytest.raises(openai.RateLimitError):  # the budget is spent: a new prompt is refused
        chat(gw, unique("another"), key=KEY_BUDGET, model="spender", max_tokens=200)
    again = chat(gw, prompt, key=KEY_BUDGET, model="spender", max_tokens=200)
    assert again.headers["x-sluicegate-cache"] == "hit"
    assert len(upstream.requests) == 1


def test_an_answer_a_budget_cut_short_is_not_cached(gw: Gateway, upstream: Upstream) -> None:
    prompt = unique("clamped")
    for _ in range(2):  # max_tokens 5000 is lowered to what the budget has left: not the answer asked for
        answer = chat(gw, prompt, key=KEY_ROOMY, max_tokens=5000)
        assert answer.headers["x-sluicegate-max-tokens-clamped"]
        assert answer.headers["x-sluicegate-cache"] == "miss"
    assert chat(gw, prompt, key=KEY_ROOMY, max_tokens=100).headers["x-sluicegate-cache"] == "miss"
    assert chat(gw, prompt, key=KEY_ROOMY, max_tokens=100).headers["x-sluicegate-cache"] == "hit"
    assert len(upstream.requests) == 3


async def _rows(database: str, sql: str) -> list[Any]:
    conn = await asyncpg.connect(database)
    try:
        return list(await conn.fetch(sql))
    finally:
        await conn.close()


def test_hits_are_logged_free_with_what_they_saved_and_counted_in_metrics(
    gw: Gateway, upstream: Upstream, database: str
) -> None:
    prompt = unique("metered")
    miss = chat(gw, prompt)
    hit = chat(gw, prompt)
    ids = (miss.headers["x-request-id"], hit.headers["x-request-id"])
    deadline = time.monotonic() + 10
    rows: list[Any] = []
    while time.monotonic() < deadline:
        rows = asyncio.run(
            _rows(
                database,
                "SELECT request_id, cache_hit, tokens_saved, cost_saved, cost, prompt_tokens, upstream "
                f"FROM request_logs WHERE request_id IN ('{ids[0]}', '{ids[1]}')",
            )
        )
        if len(rows) == 2:
            break
        time.sleep(0.1)
    by_id = {r["request_id"]: r for r in rows}
    missed, hitted = by_id[ids[0]], by_id[ids[1]]
    assert not missed["cache_hit"] and missed["cost"] > 0
    assert hitted["cache_hit"] and hitted["cost"] == 0 and hitted["prompt_tokens"] == 0
    assert hitted["upstream"] is None
    assert hitted["tokens_saved"] == miss.parse().usage.total_tokens  # type: ignore[union-attr]
    assert hitted["cost_saved"] == pytest.approx(missed["cost"])
    daily = asyncio.run(
        _rows(database, "SELECT sum(cache_hits) AS hits, sum(tokens_saved) AS saved FROM usage_daily")
    )
    assert daily[0]["hits"] >= 1 and daily[0]["saved"] >= hitted["tokens_saved"]
    report = httpx.get(
        f"{gw.url}/admin/usage?since=today&by=key", headers={"Authorization": f"Bearer {ADMIN_KEY}"}
    ).json()["data"]
    team_a = next(r for r in report if r["key_name"] == "team-a" and r["currency"] == "USD")
    assert team_a["cache_hits"] >= 1 and team_a["tokens_saved"] > 0 and team_a["cost_saved"] > 0
    metrics = httpx.get(f"{gw.url}/metrics").text
    assert 'sluicegate_cache_lookups_total{model="gpt-4o-mini",result="hit"}' in metrics
    assert "sluicegate_cache_tokens_saved_total" in metrics
    assert 'sluicegate_cache_cost_saved_total{currency="USD"}' in metrics


REDIS_DB = 11


@pytest.fixture
def redis_url() -> Iterator[str]:
    import redis

    url = f"redis://127.0.0.1:6379/{REDIS_DB}"
    r = redis.Redis.from_url(url)
    try:
        r.flushdb()
    except redis.RedisError as exc:
        pytest.skip(f"Redis is not usable: {exc}")
    yield url
    r.flushdb()
    r.close()


def test_two_gateways_share_a_redis_cache(upstream: Upstream, redis_url: str) -> None:
    with fresh_postgres_database("sg_cache_redis") as db:
        config = {**cache_config(upstream, db), "redis": redis_url}
        one = start_gateway(config)
        try:
            two = start_gateway(config, port=free_port())
            try:
                prompt = unique("shared")
                assert chat(one, prompt).headers["x-sluicegate-cache"] == "miss"
                hit = chat(two, prompt)
                assert hit.headers["x-sluicegate-cache"] == "hit"
                assert len(upstream.requests) == 1
                # ...and entries expire in Redis too.
                chat(one, prompt, model="brief")
                assert chat(two, prompt, model="brief").headers["x-sluicegate-cache"] == "hit"
                time.sleep(1.3)
                assert chat(two, prompt, model="brief").headers["x-sluicegate-cache"] == "miss"
            finally:
                two.stop()
        finally:
            one.stop()
