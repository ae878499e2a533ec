"""The cache's pure parts without a socket: keys, policy, stores, stream assembly and replay, embeddings."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sluicegate.cache.assemble import chat_answer, messages_answer, responses_answer
from sluicegate.cache.embeddings import inputs_of, merged_answer, split_answer
from sluicegate.cache.entry import CacheEntry
from sluicegate.cache.key import exact_key
from sluicegate.cache.policy import CachePolicy, scope_of
from sluicegate.cache.replay import chat_stream, messages_stream, responses_stream
from sluicegate.cache.stores import MemoryStore
from sluicegate.config.model import CacheConfig
from sluicegate.policy.keys import KeyEntry
from sluicegate.store.records import KeyRecord

CHAT = "/v1/chat/completions"


def key(id_: str, owner: str = "") -> KeyEntry:
    return KeyEntry(KeyRecord(id=id_, name=id_, key_hash="", prefix="", owner=owner))


def test_key_ignores_delivery_and_user_fields_but_not_answer_fields() -> None:
    base = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "temperature": 0}
    k = exact_key("k:1", CHAT, "m", base)
    assert (
        exact_key("k:1", CHAT, "m", {**base, "stream": True, "stream_options": {"include_usage": True}}) == k
    )
    assert exact_key("k:1", CHAT, "m", {**base, "user": "u"}) == k
    assert exact_key("k:1", CHAT, "m", dict(reversed(list(base.items())))) == k
    assert exact_key("k:1", CHAT, "m", {**base, "max_tokens": 5}) != k
    assert exact_key("k:1", CHAT, "m", {**base, "tools": [{"type": "function"}]}) != k
    assert exact_key("k:2", CHAT, "m", base) != k
    assert exact_key("k:1", "/v1/messages", "m", base) != k


def test_scopes_keep_keys_apart_by_default() -> None:
    assert scope_of("key", key("a", "team")) != scope_of("key", key("b", "team"))
    assert scope_of("owner", key("a", "team")) == scope_of("owner", key("b", "team"))
    assert scope_of("owner", key("a")) != scope_of("owner", key("b"))  # no owner: alone
    assert scope_of("global", key("a")) == scope_of("global", key("b"))


class Headers(dict[str, str]):
    pass


def test_policy_directives_and_overrides() -> None:
    cfg = CacheConfig(
        enabled=True, models={"free": {"deterministic_only": False}, "never": {"enabled": False}}
    )
    p = CachePolicy(cfg)
    cold = {"temperature": 0}
    d = p.decide(CHAT, "m", cold, None, Headers())
    assert d is not None and d.lookup and d.store
    d = p.decide(CHAT, "m", {"temperature": 1}, None, Headers())
    assert d is not None and not (d.lookup or d.store)
    d = p.decide(CHAT, "free", {"temperature": 1}, None, Headers())
    assert d is not None and d.lookup and d.store
    for model, setting in (("never", None), ("never", "on"), ("m", "off")):
        d = p.decide(CHAT, model, cold, setting, Headers())
        assert d is not None and not (d.lookup or d.store), (model, setting)
    d = p.decide(CHAT, "m", cold, None, Headers({"cache-control": "no-cache"}))
    assert d is not None and not d.lookup and d.store
    d = p.decide(CHAT, "m", cold, None, Headers({"cache-control": "no-store, max-age=0"}))
    assert d is not None and d.lookup and not d.store
    d = p.decide(CHAT, "m", cold, None, Headers({"x-sluicegate-cache": "off"}))
    assert d is not None and not (d.lookup or d.store)
    d = p.decide(CHAT, "m", {"seed": 3, "temperature": 1}, None, Headers())
    assert d is not None and d.lookup
    assert p.decide("/v1/images/generations", "m", cold, None, Headers()) is None
    off = CachePolicy(CacheConfig())
    assert not off.any_enabled
    d = off.decide(CHAT, "m", cold, "on", Headers())
    assert d is not None and d.lookup and d.store


async def test_memory_store_ttl_and_bound() -> None:
    now = [0.0]
    store = MemoryStore(max_entries=2, clock=lambda: now[0])
    await store.set("a", b"1", 10)
    await store.set("b", b"2", 10)
    assert await store.get_many(["a"]) == [b"1"]  # a is now the most recent
    await store.set("c", b"3", 10)
    assert await store.get_many(["a", "b", "c"]) == [b"1", None, b"3"]
    now[0] = 10.5
    assert await store.get_many(["a", "c"]) == [None, None]
    assert len(store) == 0 and store.size == 0  # expired entries are dropped when read


async def test_memory_store_is_bounded_in_bytes() -> None:
    store = MemoryStore(max_entries=100, max_bytes=250)
    for name in "abc":
        await store.set(name, bytes(100), 10)
    assert await store.get_many(["a", "b", "c"]) == [None, bytes(100), bytes(100)]
    assert store.size == 200
    await store.set("b", bytes(10), 10)  # replaced: its old bytes are given back
    assert store.size == 110


def test_entry_round_trip() -> None:
    e = CacheEntry(CHAT, b'{"x":"a\\nb"}', "served", 3, 4, 0.5, "USD", 100.0)
    back = CacheEntry.loads(e.dumps())
    assert back == e
    assert CacheEntry.loads(b"garbage") is None


CHAT_ANSWER: dict[str, Any] = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "created": 1,
    "model": "m",
    "choices": [
        {
            "index": 0,
            "message": {
                "role": "assistant",
                "content": "Hello there",
                "tool_calls": [
                    {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": '{"a":1}'}}
                ],
            },
            "finish_reason": "tool_calls",
        }
    ],
    "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5},
}


def test_chat_round_trip_through_a_stream() -> None:
    stream = chat_stream(CHAT_ANSWER, include_usage=True)
    assert stream.endswith(b"data: [DONE]\n\n")
    back = chat_answer(stream)
    assert back == CHAT_ANSWER
    without = chat_stream(CHAT_ANSWER, include_usage=False)
    assert b'"usage"' not in without


def test_an_incomplete_or_failed_chat_stream_is_not_assembled() -> None:
    stream = chat_stream(CHAT_ANSWER, include_usage=False)
    assert chat_answer(stream.removesuffix(b"data: [DONE]\n\n")) is None
    assert chat_answer(b'data: {"error": {"message": "x"}}\n\ndata: [DONE]\n\n') is None


def test_responses_round_trip() -> None:
    response = {
        "id": "resp_1",
        "object": "response",
        "status": "completed",
        "model": "m",
        "output": [
            {
                "type": "message",
                "id": "msg_1",
                "role": "assistant",
                "status": "completed",
                "content": [{"type": "output_text", "text": "Hi", "annotations": []}],
            },
            {"type": "function_call", "id": "fc_1", "call_id": "c", "name": "f", "arguments": "{}"},
        ],
        "usage": {"input_tokens": 1, "output_tokens": 1, "total_tokens": 2},
    }
    stream = responses_stream(response)
    assert responses_answer(stream) == response
    assert stream.count(b"sequence_number") == stream.count(b"event: ")


def test_messages_round_trip() -> None:
    message = {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "m",
        "content": [
            {"type": "thinking", "thinking": "hmm", "signature": "sig"},
            {"type": "text", "text": "Hello"},
            {"type": "tool_use", "id": "tu_1", "name": "f", "input": {"a": [1, 2]}},
        ],
        "stop_reason": "tool_use",
        "stop_sequence": None,
        "usage": {"input_tokens": 5, "output_tokens": 7},
    }
    assert messages_answer(messages_stream(message)) == message
    assert messages_answer(messages_stream(message).rsplit(b"event: message_stop", 1)[0]) is None


@given(st.lists(st.text(min_size=1, max_size=20), min_size=1, max_size=6))
def test_embeddings_split_and_merge_keep_order(texts: list[str]) -> None:
    answer = {
        "object": "list",
        "data": [
            {"object": "embedding", "index": i, "embedding": [float(i)]} for i in reversed(range(len(texts)))
        ],
        "model": "e",
        "usage": {"prompt_tokens": 10 * len(texts), "total_tokens": 10 * len(texts)},
    }
    entries = split_answer(orjson.dumps(answer), texts, "e", 1.0, "USD")
    assert entries is not None and len(entries) == len(texts)
    assert sum(e.cost for e in entries) == pytest.approx(1.0)
    merged = orjson.loads(merged_answer(entries, "e", 7))
    assert [d["embedding"] for d in merged["data"]] == [[float(i)] for i in range(len(texts))]
    assert [d["index"] for d in merged["data"]] == list(range(len(texts)))


def test_inputs_of() -> None:
    assert inputs_of({"input": "a"}) == (["a"], False)
    assert inputs_of({"input": ["a", "b"]}) == (["a", "b"], True)
    assert inputs_of({"input": [1, 2, 3]}) == ([[1, 2, 3]], False)
    assert inputs_of({"input": [[1], [2]]}) == ([[1], [2]], True)
    assert inputs_of({"input": []}) is None


def test_browsers_may_send_the_directives_and_read_the_answer_headers() -> None:
    from sluicegate.config.model import CorsConfig
    from sluicegate.server.cors import Cors

    cors = Cors(CorsConfig(allow_origins=["https://chat.example.com"]))
    exposed = dict(cors.response_headers("https://chat.example.com"))["access-control-expose-headers"]
    assert {"x-sluicegate-cache", "age"} <= {h.strip() for h in exposed.split(",")}
    allowed = cors.preflight(
        "https://chat.example.com", "POST", "content-type, cache-control, x-sluicegate-cache"
    )
    assert allowed is not None


async def test_redis_store_against_the_real_server_and_a_dead_one() -> None:
    import asyncio
    import uuid

    import redis.asyncio as aioredis

    from sluicegate.cache.stores import RedisStore

    live = aioredis.from_url("redis://127.0.0.1:6379/11")
    try:
        store = RedisStore(live)
        key = f"sg:cache:test:{uuid.uuid4().hex}"
        await store.set(key, b"answer", 0.3)
        assert await store.get_many([key, key + "x"]) == [b"answer", None]
        await asyncio.sleep(0.45)
        assert await store.get_many([key]) == [None]
    finally:
        await live.aclose()
    dead = aioredis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2, socket_timeout=0.2)
    try:
        gone = RedisStore(dead)
        assert await gone.get_many(["a", "b"]) == [None, None]  # a miss, not a failure
        await gone.set("a", b"x", 10)  # skipped, not raised
        assert gone.errors == 2
    finally:
        await dead.aclose()
