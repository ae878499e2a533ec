"""The semantic stage's parts: what is embedded and what must match (pure), a partition's usearch
index, the per-route policy, and the stage itself over the memory store and over the real Redis
(two stages, as two gateways, following one stream). The embedding function here is a small
bag-of-words one: the stage takes any `embed` callable (the gateway's is server/semantic.py)."""

from __future__ import annotations

import hashlib
import re
import time
import uuid
from typing import Any

import numpy as np
import pytest

from sluicegate.cache.entry import CacheEntry, CacheRequest
from sluicegate.cache.key import exact_key
from sluicegate.cache.policy import CachePolicy
from sluicegate.cache.semantic.index import PartitionIndex, Partitions, missing_extra, normalised
from sluicegate.cache.semantic.prompt import partition_key, split_prompt
from sluicegate.cache.semantic.shared import SharedLog
from sluicegate.cache.semantic.stage import SemanticStage
from sluicegate.cache.stores import MemoryStore, RedisStore
from sluicegate.config.model import CacheConfig, Settings

CHAT = "/v1/chat/completions"
REDIS = "redis://127.0.0.1:6379/14"


def user(text: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": text}]


# -- what is embedded, and the partition ----------------------------------------------------------------


def test_chat_prompt_is_the_conversation_and_instructions_go_to_the_partition() -> None:
    payload = {
        "model": "m",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": [{"type": "text", "text": "hello"}]},
            {"role": "user", "content": "how are you"},
        ],
        "max_tokens": 9,
        "stream": True,
        "user": "u1",
    }
    split = split_prompt(CHAT, payload)
    assert split is not None
    text, rest = split
    assert text == "user: hi\nassistant: hello\nuser: how are you"
    assert rest["max_tokens"] == 9 and "stream" not in rest and "user" not in rest and "messages" not in rest
    assert rest["\x00instructions"] == [{"role": "system", "content": "Be brief."}]


def test_prompts_that_are_not_plain_text_are_not_compared() -> None:
    image = [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]
    calls = [
        {"role": "user", "content": "weather?"},
        {"role": "assistant", "content": None, "tool_calls": [{"id": "c", "type": "function"}]},
        {"role": "tool", "tool_call_id": "c", "content": "sunny"},
    ]
    assert split_prompt(CHAT, {"messages": image}) is None
    assert split_prompt(CHAT, {"messages": calls}) is None
    assert split_prompt(CHAT, {"messages": []}) is None
    assert split_prompt("/v1/embeddings", {"input": "x"}) is None
    assert split_prompt("/v1/responses", {"input": [{"type": "function_call_output", "output": "x"}]}) is None


def test_responses_and_messages_prompts() -> None:
    text, rest = split_prompt("/v1/responses", {"input": "hi", "instructions": "Be brief."}) or ("", {})
    assert text == "user: hi" and rest["instructions"] == "Be brief."
    items = [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]}]
    assert (split_prompt("/v1/responses", {"input": items}) or ("",))[0] == "user: hi"
    text, rest = split_prompt("/v1/messages", {"system": "Be brief.", "messages": user("hi")}) or ("", {})
    assert text == "user: hi" and rest["system"] == "Be brief."


def test_the_partition_holds_everything_but_the_prompt() -> None:
    def part(scope: str = "k:1", **extra: Any) -> str:
        _, rest = split_prompt(CHAT, {"model": "m", "messages": user("hi"), **extra}) or ("", {})
        return partition_key(scope, CHAT, "m", "emb", rest)

    base = part()
    assert part(stream=True, user="x") == base
    assert part(max_tokens=5) != base
    assert part(temperature=0.5) != base
    assert part("k:2") != base
    _, rest = split_prompt(CHAT, {"model": "m", "messages": user("other words")}) or ("", {})
    assert partition_key("k:1", CHAT, "m", "emb", rest) == base, "the prompt is not in the partition"
    assert partition_key("k:1", CHAT, "m", "other-embedder", rest) != base


# -- the policy ---------------------------------------------------------------------------------------------


def test_semantic_is_per_route_over_the_section() -> None:
    cfg = CacheConfig.model_validate(
        {
            "enabled": True,
            "semantic": {"embedding_model": "emb", "threshold": 0.9},
            "models": {
                "a": {"semantic": True},
                "b": {"semantic": {"threshold": 0.8, "max_entries": 5}},
                "c": {},
            },
        }
    )
    policy = CachePolicy(cfg)
    a, b = policy.route("a").semantic, policy.route("b").semantic
    assert a is not None and (a.embedding_model, a.threshold, a.max_entries) == ("emb", 0.9, 1000)
    assert b is not None and (b.threshold, b.max_entries) == (0.8, 5)
    assert policy.route("c").semantic is None and policy.route("other").semantic is None
    assert policy.any_semantic
    assert not CachePolicy(CacheConfig(enabled=True)).any_semantic
    everywhere = CachePolicy(
        CacheConfig.model_validate(
            {
                "enabled": True,
                "semantic": {"enabled": True, "embedding_model": "e"},
                "models": {"x": {"semantic": False}},
            }
        )
    )
    assert everywhere.route("any").semantic is not None and everywhere.route("x").semantic is None


def test_a_semantic_route_without_an_embedding_model_is_refused() -> None:
    with pytest.raises(ValueError, match="embedding_model"):
        Settings.model_validate({"cache": {"enabled": True, "models": {"a": {"semantic": True}}}})
    with pytest.raises(ValueError, match="embedding_model"):
        Settings.model_validate({"cache": {"semantic": {"enabled": True}}})


def test_the_extra_is_installed_here() -> None:
    assert missing_extra() == []  # the `test` extra installs `semantic`'s packages


# -- a partition's index -------------------------------------------------------------------------------------


def unit(*values: float) -> Any:
    return normalised(list(values))


def test_index_finds_the_nearest_above_the_threshold_only() -> None:
    index = PartitionIndex(3, max_entries=10)
    far = time.time() + 60
    index.add_many([("a", unit(1, 0, 0), far), ("b", unit(0, 1, 0), far)])
    match = index.nearest(unit(1, 0.1, 0), 0.9)
    assert match is not None and match.key == "a" and match.similarity == pytest.approx(0.995, abs=1e-3)
    assert index.nearest(unit(1, 1, 0), 0.9) is None  # 0.707 to both
    assert index.nearest(unit(0, 0, 1), 0.1) is None


def test_index_drops_the_least_recently_used_past_max_entries_and_expired_ones() -> None:
    index = PartitionIndex(2, max_entries=2)
    now = time.time()
    index.add_many([("a", unit(1, 0), now + 60), ("b", unit(0, 1), now + 60), ("c", unit(1, 1), now + 60)])
    assert len(index) == 2 and "a" not in index and "b" in index and "c" in index
    assert index.nearest(unit(1, 0), 0.99) is None  # "a" is gone
    index.add_many([("d", unit(1, 0), now - 1)])
    assert index.nearest(unit(1, 0), 0.99) is None and "d" not in index  # expired: dropped on sight
    index.add_many([("b", unit(1, 0), now + 60)])  # a key stored again replaces its vector
    assert (index.nearest(unit(1, 0), 0.99) or pytest.fail()).key == "b"
    # A prompt served is the last to go: "c" (stored before "b") is served, so "b" goes first.
    assert (index.nearest(unit(1, 1), 0.99) or pytest.fail()).key == "c"
    index.add_many([("e", unit(-1, 0), now + 60)])
    assert "c" in index and "b" not in index


def test_partitions_are_bounded_least_recently_used_first() -> None:
    parts = Partitions(max_partitions=2)
    parts.make("p1", 2, 5)
    parts.make("p2", 2, 5)
    assert parts.get("p1") is not None
    parts.make("p3", 2, 5)
    assert parts.get("p2") is None and parts.get("p1") is not None and len(parts) == 2
    assert parts.make("p1", 3, 5).ndim == 3  # another embedding size: a new index


def test_partitions_hold_vectors_of_at_most_max_bytes() -> None:
    parts = Partitions(max_partitions=100, max_bytes=3 * 4 * 4)  # three 4-dimension vectors
    far = time.time() + 60
    parts.make("p1", 4, 5).add_many([("a", unit(1, 0, 0, 0), far), ("b", unit(0, 1, 0, 0), far)])
    parts.make("p2", 4, 5).add_many([("c", unit(0, 0, 1, 0), far)])
    parts.trim()
    assert len(parts) == 2 and parts.nbytes == 48
    parts.make("p3", 4, 5).add_many([("d", unit(0, 0, 0, 1), far)])
    parts.trim()
    assert parts.get("p1") is None and parts.get("p3") is not None and parts.nbytes <= 48


# -- the stage --------------------------------------------------------------------------------------------------


def bag(text: str) -> list[float]:
    vector = [0.0] * 128
    for word in re.findall(r"[a-z0-9]+", text.lower()):
        vector[int.from_bytes(hashlib.sha256(word.encode()).digest()[:4], "big") % 128] += 1.0
    return vector


class Embedder:
    def __init__(self) -> None:
        self.texts: list[str] = []

    async def __call__(self, req: CacheRequest, model: str, text: str) -> list[float] | None:
        assert model == "emb"
        self.texts.append(text)
        return bag(text)


def policy(threshold: float = 0.9, max_entries: int = 1000) -> CachePolicy:
    return CachePolicy(
        CacheConfig.model_validate(
            {
                "enabled": True,
                "semantic": {"embedding_model": "emb", "threshold": threshold, "max_entries": max_entries},
                "models": {"m": {"semantic": True}},
            }
        )
    )


def request(text: str, scope: str = "k:1", model: str = "m", **params: Any) -> CacheRequest:
    payload = {"model": model, "messages": user(text), "temperature": 0, **params}
    return CacheRequest(CHAT, model, payload, scope, exact_key(scope, CHAT, model, payload), False, 60.0)


BASE = "please summarise the quarterly sales report for the northern region in three bullet points"
NEAR = BASE.replace("three", "three short")
FAR = "please summarise the yearly marketing plan for the southern office in five bullet points"


async def stored(store: Any, stage: SemanticStage, req: CacheRequest, answer: bytes) -> CacheEntry:
    entry = CacheEntry(CHAT, answer, prompt_tokens=3)
    await store.set(req.key, entry.dumps(), req.ttl_s)
    await stage.store(req, entry)
    return entry


async def test_stage_serves_a_near_prompt_within_its_scope_and_parameters() -> None:
    store, embed = MemoryStore(), Embedder()
    stage = SemanticStage(policy(), embed, lambda: store)
    await stored(store, stage, request(BASE), b'{"answer": 1}')
    hit = await stage.lookup(request(NEAR))
    assert hit is not None and hit.body == b'{"answer": 1}' and hit.similarity is not None
    assert 0.9 <= hit.similarity < 1
    assert await stage.lookup(request(FAR)) is None
    assert await stage.lookup(request(NEAR, scope="k:2")) is None
    assert await stage.lookup(request(NEAR, max_tokens=5)) is None
    assert await stage.lookup(request(NEAR, model="n")) is None  # no semantic stage on "n"
    assert embed.texts.count(f"user: {NEAR}") == 1, "a prompt is embedded once per worker"


async def test_an_embedding_that_does_not_come_in_time_is_a_miss() -> None:
    import asyncio

    never = asyncio.Event()

    async def stalled(req: CacheRequest, model: str, text: str) -> list[float] | None:
        await never.wait()
        return None

    store = MemoryStore()
    stage = SemanticStage(policy(), Embedder(), lambda: store)
    await stored(store, stage, request(BASE), b"{}")
    stage.embed, stage.timeout_s = stalled, 0.05
    assert await stage.lookup(request(NEAR)) is None


async def test_stage_forgets_a_match_whose_answer_is_gone() -> None:
    store = MemoryStore()
    stage = SemanticStage(policy(), Embedder(), lambda: store)
    req = request(BASE)
    await stage.store(req, CacheEntry(CHAT, b"{}"))  # the exact store never got it (or lost it)
    assert await stage.lookup(request(NEAR)) is None
    index = next(iter(stage.partitions._items.values()))
    assert req.key not in index


async def test_two_stages_share_prompts_through_the_real_redis() -> None:
    import redis.asyncio as aioredis

    client = aioredis.from_url(REDIS)
    try:
        await client.flushdb()
    except Exception as exc:
        pytest.skip(f"Redis is not usable: {exc}")
    try:
        store = RedisStore(client)
        one = SemanticStage(policy(), Embedder(), lambda: store, SharedLog(client))
        two = SemanticStage(policy(), Embedder(), lambda: store, SharedLog(client))
        scope = "k:" + uuid.uuid4().hex
        await stored(store, one, request(BASE, scope), b'{"from": "one"}')
        hit = await two.lookup(request(NEAR, scope))
        assert hit is not None and hit.body == b'{"from": "one"}'
        # Many prompts at once (read in pages, added off the event loop), bounded by max_entries.
        bounded = SemanticStage(policy(max_entries=300), Embedder(), lambda: store, SharedLog(client))
        for i in range(400):
            await stored(store, one, request(f"{BASE} item{i} extra{i} more{i}", scope), b'{"n": %d}' % i)
        found = await bounded.lookup(request(f"{BASE} item399 extra399 more399 please", scope))
        assert found is not None and found.body == b'{"n": 399}'
        part = next(iter(bounded.partitions._items.values()))
        assert len(part) == 300  # the stream holds 1000; this route keeps 300
        # Redis down: a lookup is a miss, never an error.
        dead = aioredis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2, socket_timeout=0.2)
        lost = SemanticStage(policy(), Embedder(), lambda: RedisStore(dead), SharedLog(dead))
        assert await lost.lookup(request(NEAR, scope)) is None
        await lost.store(request(NEAR, scope), CacheEntry(CHAT, b"{}"))
        await dead.aclose()
    finally:
        await client.flushdb()
        await client.aclose()


def test_normalised_rejects_zero_vectors() -> None:
    assert normalised([0.0, 0.0]) is None
    assert np.linalg.norm(normalised([3.0, 4.0])) == pytest.approx(1.0)


# -- start-up ----------------------------------------------------------------------------------------------------


def semantic_settings() -> Settings:
    return Settings.model_validate(
        {
            "upstreams": {"up": {"base_url": "http://127.0.0.1:9/v1", "api_key": "sk-x"}},
            "models": {"chat": "up", "embedder": "up"},
            "cache": {
                "enabled": True,
                "semantic": {"embedding_model": "embedder"},
                "models": {"chat": {"semantic": True}},
            },
        }
    )


def test_start_up_plugs_the_stage_in_when_configured() -> None:
    from sluicegate.server.app import Gateway
    from sluicegate.server.semantic import attach_semantic

    gw = Gateway(semantic_settings())
    attach_semantic(gw)
    assert isinstance(gw.cache.second_stage, SemanticStage)
    assert gw.cache.second_stage.shared is None  # memory backend: nothing shared
    plain = Gateway(Settings.model_validate({"cache": {"enabled": True}}))
    attach_semantic(plain)
    assert plain.cache.second_stage is None


def test_start_up_says_clearly_when_the_extra_is_missing(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import sluicegate.server.semantic as semantic
    from sluicegate.server.app import Gateway

    monkeypatch.setattr(semantic, "missing_extra", lambda: ["usearch"])
    gw = Gateway(semantic_settings())
    with caplog.at_level("ERROR", logger="sluicegate.cache"):
        semantic.attach_semantic(gw)
    assert gw.cache.second_stage is None
    assert "pip install 'sluicegate[semantic]'" in caplog.text and "usearch" in caplog.text
