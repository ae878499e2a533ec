"""The semantic response cache end to end (issue 17): a real gateway on PostgreSQL, the official SDKs,
and a stand-in upstream whose embeddings are bag-of-words vectors (support/semantic_upstream.py), so a
prompt one word longer is ~0.97 similar and one with several words changed is well below 0.9.

A near-identical prompt is served the stored answer (the upstream's chat endpoint called once); a
near-miss below the threshold, another key, another parameter or another system prompt goes upstream;
a semantic hit replays as a stream; a key over its request rate costs no embedding call; the embedding
call is logged for the key; and two gateways on one Redis share the prompts.
"""

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
from support.semantic_upstream import SemanticUpstream, cosine

ADMIN_KEY = "sk-admin-semantic-tests-0000"
KEY_A = "sk-semantic-team-a-0001"
KEY_B = "sk-semantic-team-b-0002"
KEY_RPM = "sk-semantic-rpm-two-0003"
CHAT, EMBED = "/v1/chat/completions", "/v1/embeddings"
THRESHOLD = 0.9
REDIS_DB = 13


def semantic_config(upstream: SemanticUpstream, database: str) -> dict[str, Any]:
    return {
        "database": database,
        "admin_key": ADMIN_KEY,
        "keys": [
            {"key": KEY_A, "name": "team-a"},
            {"key": KEY_B, "name": "team-b"},
            {"key": KEY_RPM, "name": "rpm-two", "rpm": 2},
        ],
        "upstreams": {"up": {"base_url": upstream.url, "api_key": "sk-provider"}},
        "models": {
            "gpt-4o-mini": "up",
            "exact-only": "up/gpt-4o-mini",
            "embedder": "up/text-embedding-3-small",
        },
        "prices": {
            "gpt-4o-mini": {"input": 1.0, "output": 2.0},
            "text-embedding-3-small": {"input": 0.5, "output": 0.0},
        },
        "metering": {"flush_interval_s": 0.2},
        "cache": {
            "enabled": True,
            "ttl_s": 600,
            "semantic": {"embedding_model": "embedder", "threshold": THRESHOLD},
            "models": {"gpt-4o-mini": {"semantic": True}},
        },
    }


@pytest.fixture(scope="module")
def database() -> Iterator[str]:
    with fresh_postgres_database("sg_semantic") as url:
        yield url


@pytest.fixture(scope="module")
def stand_in() -> Iterator[SemanticUpstream]:
    with SemanticUpstream() as up:
        yield up


@pytest.fixture(scope="module")
def gw(stand_in: SemanticUpstream, database: str) -> Iterator[Gateway]:
    gateway = start_gateway(semantic_config(stand_in, database))
    yield gateway
    gateway.stop()


@pytest.fixture
def upstream(stand_in: SemanticUpstream) -> SemanticUpstream:
    stand_in.reset()
    return stand_in


def prompts() -> tuple[str, str, str]:
    """A prompt, a near-identical one (one word added), and a near-miss (six words changed). Eight
    random words make each test's prompts far from every other test's."""
    tag = " ".join(uuid.uuid4().hex[i : i + 4] for i in range(0, 32, 4))
    base = f"Please summarise the quarterly sales report for the northern region in three bullet points {tag}"
    near = base.replace("three", "three short")
    far = f"Please summarise the yearly marketing plan for the southern office in five bullet points {tag}"
    return base, near, far


def chat(gw: Gateway, content: str, key: str = KEY_A, system: str | None = None, **kw: Any) -> Any:
    kw.setdefault("temperature", 0)
    messages = [{"role": "system", "content": system}] if system else []
    messages.append({"role": "user", "content": content})
    return openai.OpenAI(
        base_url=gw.base_url, api_key=key, max_retries=0, timeout=15
    ).chat.completions.with_raw_response.create(model=kw.pop("model", "gpt-4o-mini"), messages=messages, **kw)


def test_the_prompts_are_what_the_tests_say() -> None:
    base, near, far = prompts()
    assert cosine(f"user: {base}", f"user: {near}") > THRESHOLD
    assert cosine(f"user: {base}", f"user: {far}") < THRESHOLD


def test_a_near_identical_prompt_is_served_the_stored_answer(gw: Gateway, upstream: SemanticUpstream) -> None:
    base, near, _ = prompts()
    first = chat(gw, base)
    assert first.headers["x-sluicegate-cache"] == "miss"
    assert "x-sluicegate-cache-similarity" not in first.headers
    second = chat(gw, near)
    assert second.headers["x-sluicegate-cache"] == "hit"
    similarity = float(second.headers["x-sluicegate-cache-similarity"])
    assert THRESHOLD <= similarity < 1.0
    assert similarity == pytest.approx(cosine(f"user: {base}", f"user: {near}"), abs=1e-3)
    assert int(second.headers["age"]) >= 0
    assert second.parse().choices[0].message.content == first.parse().choices[0].message.content
    assert second.parse().choices[0].message.content.startswith(f"Echo: {base}")
    assert upstream.calls(CHAT) == 1, "a semantic hit went upstream"
    assert upstream.embedded() == [f"user: {base}", f"user: {near}"]
    # The exact prompt again is an exact hit: no embedding call, no similarity.
    third = chat(gw, base)
    assert third.headers["x-sluicegate-cache"] == "hit"
    assert "x-sluicegate-cache-similarity" not in third.headers
    assert upstream.calls(EMBED) == 2


def test_a_prompt_below_the_threshold_goes_upstream(gw: Gateway, upstream: SemanticUpstream) -> None:
    base, _, far = prompts()
    chat(gw, base)
    missed = chat(gw, far)
    assert missed.headers["x-sluicegate-cache"] == "miss"
    assert missed.parse().choices[0].message.content.startswith(f"Echo: {far}")
    assert upstream.calls(CHAT) == 2


def test_another_key_never_gets_a_semantic_hit(gw: Gateway, upstream: SemanticUpstream) -> None:
    base, near, _ = prompts()
    chat(gw, base, key=KEY_A)
    other = chat(gw, near, key=KEY_B)
    assert other.headers["x-sluicegate-cache"] == "miss"
    assert other.parse().choices[0].message.content.startswith(f"Echo: {near}")
    assert upstream.calls(CHAT) == 2
    # ...while the key that asked first is served.
    assert chat(gw, near, key=KEY_A).headers["x-sluicegate-cache"] == "hit"
    assert upstream.calls(CHAT) == 2


def test_other_parameters_or_instructions_never_hit(gw: Gateway, upstream: SemanticUpstream) -> None:
    base, near, _ = prompts()
    chat(gw, base, max_tokens=50)
    assert chat(gw, near).headers["x-sluicegate-cache"] == "miss"  # no max_tokens
    assert chat(gw, near, max_tokens=60).headers["x-sluicegate-cache"] == "miss"
    assert chat(gw, near, max_tokens=50, seed=3).headers["x-sluicegate-cache"] == "miss"
    assert upstream.calls(CHAT) == 4
    assert chat(gw, near + " again", max_tokens=50).headers["x-sluicegate-cache"] == "hit"
    # The system prompt must match exactly: it is not part of what is compared.
    chat(gw, base, system="Answer in French.")
    assert chat(gw, near, system="Answer in German.").headers["x-sluicegate-cache"] == "miss"
    assert chat(gw, near, system="Answer in French.").headers["x-sluicegate-cache"] == "hit"
    assert upstream.calls(CHAT) == 6


def test_request_headers_act_on_the_semantic_stage_too(gw: Gateway, upstream: SemanticUpstream) -> None:
    base, near, _ = prompts()
    chat(gw, base)
    off = chat(gw, near, extra_headers={"x-sluicegate-cache": "off"})
    assert off.headers["x-sluicegate-cache"] == "bypass"
    assert upstream.calls(EMBED) == 1, "a request with the cache off was embedded"
    refreshed = chat(gw, near, extra_headers={"Cache-Control": "no-cache"})
    assert refreshed.headers["x-sluicegate-cache"] == "miss"  # no lookup; its answer is stored
    assert upstream.calls(CHAT) == 3
    # Embedded to be stored, after the answer went out (so the client does not wait for it).
    assert upstream.wait_for(lambda: upstream.calls(EMBED) == 2)
    again = chat(gw, near)
    assert (
        again.headers["x-sluicegate-cache"] == "hit" and "x-sluicegate-cache-similarity" not in again.headers
    )
    assert upstream.calls(CHAT) == 3


def test_a_semantic_hit_replays_as_a_stream(gw: Gateway, upstream: SemanticUpstream) -> None:
    base, near, _ = prompts()
    answer = chat(gw, base).parse()
    raw = openai.OpenAI(
        base_url=gw.base_url, api_key=KEY_A, max_retries=0, timeout=15
    ).chat.completions.with_raw_response.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": near}],
        temperature=0,
        stream=True,
        stream_options={"include_usage": True},
    )
    assert raw.headers["x-sluicegate-cache"] == "hit"
    assert raw.headers["content-type"].startswith("text/event-stream")
    assert float(raw.headers["x-sluicegate-cache-similarity"]) >= THRESHOLD
    chunks = list(raw.parse())
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == answer.choices[0].message.content
    usage = next(c.usage for c in chunks if c.usage)
    assert usage.total_tokens == answer.usage.total_tokens
    assert upstream.calls(CHAT) == 1


def test_responses_and_anthropic_messages_hit_semantically(gw: Gateway, upstream: SemanticUpstream) -> None:
    base, near, _ = prompts()
    c = openai.OpenAI(base_url=gw.base_url, api_key=KEY_A, max_retries=0, timeout=15)
    first = c.responses.with_raw_response.create(model="gpt-4o-mini", input=base, temperature=0)
    second = c.responses.with_raw_response.create(model="gpt-4o-mini", input=near, temperature=0)
    assert second.headers["x-sluicegate-cache"] == "hit" and second.headers["x-sluicegate-cache-similarity"]
    assert second.parse().output_text == first.parse().output_text
    claude = anthropic.Anthropic(base_url=gw.url, api_key=KEY_A, max_retries=0, timeout=15)
    args: dict[str, Any] = {"model": "gpt-4o-mini", "max_tokens": 64, "extra_body": {"temperature": 0}}
    one = claude.messages.with_raw_response.create(**args, messages=[{"role": "user", "content": base}])
    assert one.headers["x-sluicegate-cache"] == "miss"  # another client API: its own partition
    with claude.messages.stream(**args, messages=[{"role": "user", "content": near}]) as stream:
        streamed = "".join(stream.text_stream)
    assert streamed == one.parse().content[0].text  # type: ignore[union-attr]
    assert upstream.calls(CHAT) == 2


def test_a_route_without_the_semantic_stage_makes_no_embedding_call(
    gw: Gateway, upstream: SemanticUpstream
) -> None:
    base, near, _ = prompts()
    chat(gw, base, model="exact-only")
    assert chat(gw, near, model="exact-only").headers["x-sluicegate-cache"] == "miss"
    assert chat(gw, near, model="exact-only").headers["x-sluicegate-cache"] == "hit"  # exact
    assert upstream.calls(EMBED) == 0
    # Requests that are not plain text are not compared semantically either.
    tools = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]
    assert chat(gw, base, tools=tools).headers["x-sluicegate-cache"] == "miss"
    assert upstream.calls(EMBED) == 1  # tools are a parameter: the prompt is still text
    messages = [
        {
            "role": "user",
            "content": [{"type": "image_url", "image_url": {"url": "data:image/png;base64,AA=="}}],
        }
    ]
    client = openai.OpenAI(base_url=gw.base_url, api_key=KEY_A, max_retries=0, timeout=15)
    client.chat.completions.create(model="gpt-4o-mini", messages=messages, temperature=0)  # type: ignore[arg-type]
    assert upstream.calls(EMBED) == 1


def test_a_key_over_its_request_rate_costs_no_embedding_call(gw: Gateway, upstream: SemanticUpstream) -> None:
    answers = [chat(gw, prompts()[0], key=KEY_RPM) for _ in range(2)]
    assert upstream.calls(EMBED) == 2
    # Admitted on its rate before the embedding call, on the rest after: counted once, told once.
    assert answers[0].headers.get_list("x-ratelimit-remaining-requests") == ["1"]
    assert answers[1].headers.get_list("x-ratelimit-remaining-requests") == ["0"]
    with pytest.raises(openai.RateLimitError):
        chat(gw, prompts()[0], key=KEY_RPM)
    assert upstream.calls(EMBED) == 2
    assert upstream.calls(CHAT) == 2


async def _rows(database: str, sql: str) -> list[Any]:
    conn = await asyncpg.connect(database)
    try:
        return list(await conn.fetch(sql))
    finally:
        await conn.close()


def test_the_hit_is_logged_as_a_hit_and_the_embedding_call_for_the_key(
    gw: Gateway, upstream: SemanticUpstream, database: str
) -> None:
    base, near, _ = prompts()
    chat(gw, base)
    hit = chat(gw, near)
    assert hit.headers["x-sluicegate-cache"] == "hit"
    rid = hit.headers["x-request-id"]
    rows: list[Any] = []
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        rows = asyncio.run(
            _rows(
                database,
                "SELECT request_id, key_name, endpoint, model_requested, cache_hit, tokens_saved, cost, "
                f"prompt_tokens, upstream FROM request_logs WHERE request_id IN ('{rid}', '{rid}-semantic')",
            )
        )
        if len(rows) == 2:
            break
        time.sleep(0.1)
    by_id = {r["request_id"]: r for r in rows}
    served, embedded = by_id[rid], by_id[f"{rid}-semantic"]
    assert served["cache_hit"] and served["cost"] == 0 and served["upstream"] is None
    assert served["tokens_saved"] > 0
    assert embedded["key_name"] == "team-a" and embedded["endpoint"] == EMBED
    assert embedded["model_requested"] == "embedder" and embedded["upstream"] == "up"
    assert embedded["prompt_tokens"] == len(f"user: {near}".split()) and embedded["cost"] > 0
    assert not embedded["cache_hit"]
    metrics = httpx.get(f"{gw.url}/metrics").text
    assert 'sluicegate_cache_semantic_hits_total{model="gpt-4o-mini"}' in metrics
    assert 'sluicegate_cache_lookups_total{model="gpt-4o-mini",result="hit"}' in metrics


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


def test_two_gateways_on_one_redis_share_the_prompts(upstream: SemanticUpstream, redis_url: str) -> None:
    import redis

    with fresh_postgres_database("sg_semantic_redis") as db:
        config = {**semantic_config(upstream, db), "redis": redis_url}
        one = start_gateway(config)
        try:
            two = start_gateway(config, port=free_port())
            try:
                r = redis.Redis.from_url(redis_url)

                def stored(count: int) -> bool:  # a prompt is appended just after its answer went out
                    logs = r.keys("sg:cache:s:*")
                    return len(logs) == 1 and r.xlen(logs[0]) == count

                base, near, far = prompts()
                first = chat(one, base)
                assert first.headers["x-sluicegate-cache"] == "miss"
                assert upstream.wait_for(lambda: stored(1))
                hit = chat(two, near)  # the other gateway: its index is read from Redis
                assert hit.headers["x-sluicegate-cache"] == "hit"
                assert float(hit.headers["x-sluicegate-cache-similarity"]) >= THRESHOLD
                assert hit.parse().choices[0].message.content == first.parse().choices[0].message.content
                assert upstream.calls(CHAT) == 1
                # ...and the other way round, after gateway two stored one of its own.
                assert chat(two, far).headers["x-sluicegate-cache"] == "miss"
                assert upstream.wait_for(lambda: stored(2))
                assert chat(one, far + " please").headers["x-sluicegate-cache"] == "hit"
                assert upstream.calls(CHAT) == 2
                # One partition (team-a's key, the model, the same parameters), its two prompts in one
                # stream, which expires with the entries.
                logs = r.keys("sg:cache:s:*")
                assert len(logs) == 1 and logs[0].endswith(b":log")
                assert r.xlen(logs[0]) == 2
                assert 0 < r.pttl(logs[0]) <= 600_000
                r.close()
            finally:
                two.stop()
        finally:
            one.stop()
