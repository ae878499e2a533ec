"""Chat completions through the real gateway: what the client sees is what the upstream said,
the upstream sees the provider's key and its own model name, and the headers clients read
(request id, processing time, rate limits) come through."""

from __future__ import annotations

import asyncio

import aiohttp
import httpx
import openai
import orjson
from support.gateway import CLIENT_KEY, PROVIDER_KEY, Core
from support.schema import SpecValidator, assert_stream, parse_sse
from support.upstream import reply_pieces, reply_text

MESSAGES = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "where is the sluice?"}]
CHAT = {"model": "gpt-4o-mini", "messages": MESSAGES}


def test_chat_completion_through_the_sdk_returns_the_upstream_answer(core: Core, spec: SpecValidator) -> None:
    with core.client() as client:
        raw = client.chat.completions.with_raw_response.create(**CHAT)
    completion = raw.parse()
    spec.validate("CreateChatCompletionResponse", orjson.loads(raw.content))
    assert raw.status_code == 200
    assert completion.choices[0].message.content == reply_text(CHAT)
    assert completion.choices[0].finish_reason == "stop"
    assert completion.model == "gpt-4o-mini"
    assert completion.usage is not None
    assert (
        completion.usage.total_tokens == completion.usage.prompt_tokens + completion.usage.completion_tokens
    )
    assert completion.usage.prompt_tokens_details is not None
    assert completion.usage.prompt_tokens_details.cached_tokens == 0


def test_chat_request_body_reaches_the_upstream_unchanged(core: Core, spec: SpecValidator) -> None:
    body = {
        **CHAT,
        "temperature": 0.2,
        "max_tokens": 17,
        "user": "u-1",
        "seed": 7,
        "metadata": {"ticket": "42"},
        "store": False,
    }
    response = httpx.post(
        f"{core.gateway.base_url}/chat/completions", json=body, headers=core.auth, timeout=10
    )
    assert response.status_code == 200
    spec.validate("CreateChatCompletionResponse", response.json())
    assert core.upstream.last.path == "/v1/chat/completions"
    assert core.upstream.last.json == body


def test_stream_through_the_sdk_delivers_every_chunk(core: Core, spec: SpecValidator) -> None:
    with core.client() as client:
        chunks = list(client.chat.completions.create(**CHAT, stream=True))
    for chunk in chunks:
        spec.validate("CreateChatCompletionStreamResponse", chunk.model_dump(exclude_unset=True))
    contents = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    assert "".join(contents) == reply_text(CHAT)
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[-1].choices, (
        f"the last chunk has no choices (a usage chunk nobody asked for?): {chunks[-1]}"
    )
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert len({c.id for c in chunks}) == 1


def test_stream_ends_with_done_and_preserves_chunk_order(core: Core, spec: SpecValidator) -> None:
    body = {**CHAT, "stream": True, "stream_options": {"include_usage": True}}
    response = httpx.post(
        f"{core.gateway.base_url}/chat/completions", json=body, headers=core.auth, timeout=10
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    events = parse_sse(response.content)
    chunks = assert_stream(events, include_usage=True, spec=spec)
    sent = [orjson.loads(e) for e in parse_sse(b"".join(core.upstream.last.sent_events)) if e != "[DONE]"]
    assert len(chunks) == len(sent), f"the upstream sent {len(sent)} chunks, the client got {len(chunks)}"
    assert [c["choices"] for c in chunks] == [s["choices"] for s in sent]
    assert [c["id"] for c in chunks] == [s["id"] for s in sent]
    assert chunks[-1]["usage"] == sent[-1]["usage"]


def test_stream_without_include_usage_has_no_usage_chunk(core: Core, spec: SpecValidator) -> None:
    body = {**CHAT, "stream": True}
    response = httpx.post(
        f"{core.gateway.base_url}/chat/completions", json=body, headers=core.auth, timeout=10
    )
    assert response.status_code == 200
    chunks = assert_stream(parse_sse(response.content), include_usage=False, spec=spec)
    assert all(c["choices"] for c in chunks)
    assert len(chunks) == 1 + len(reply_pieces(CHAT)) + 1


def test_stream_of_an_upstream_without_usage_still_ends_with_done(core: Core, spec: SpecValidator) -> None:
    core.upstream.behaviour = "no_usage"
    body = {**CHAT, "stream": True, "stream_options": {"include_usage": True}}
    response = httpx.post(
        f"{core.gateway.base_url}/chat/completions", json=body, headers=core.auth, timeout=10
    )
    assert response.status_code == 200
    events = parse_sse(response.content)
    chunks = assert_stream(events, spec=spec)
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text == reply_text(CHAT)


async def test_stream_over_raw_aiohttp_arrives_chunk_by_chunk(core: Core, spec: SpecValidator) -> None:
    core.upstream.behaviour = "slow_stream delay=0.15 chunks=4"
    body = {**CHAT, "stream": True}
    arrivals: list[float] = []
    raw = b""
    async with aiohttp.ClientSession() as session:
        async with session.post(
            f"{core.gateway.base_url}/chat/completions", json=body, headers=core.auth
        ) as response:
            assert response.status == 200
            loop_time = asyncio.get_running_loop().time
            async for line in response.content:
                raw += line
                if line.startswith(b"data:") and b'"content"' in line:
                    arrivals.append(loop_time())
    assert_stream(parse_sse(raw), spec=spec)
    # 5 events with content (role, 4 pieces) spaced 0.15 s by the upstream: a relay that
    # buffered would deliver them in one burst at the end.
    assert len(arrivals) == 5
    assert arrivals[-1] - arrivals[0] >= 0.45
    gaps = [b - a for a, b in zip(arrivals, arrivals[1:])]
    # A buffering relay gives every gap ~0 (and no 0.45 s span, checked above). Short gaps are
    # scheduling jitter: on a loaded machine (load 28 on 2 cores) one late chunk arrived 0.56 s after
    # the one before and the next two right behind it. Half the gaps spaced still rules out a burst.
    assert sum(g >= 0.08 for g in gaps) >= len(gaps) // 2, f"chunks arrived in bursts: gaps {gaps}"


def test_renamed_model_reaches_the_upstream_under_its_upstream_name(core: Core, spec: SpecValidator) -> None:
    with core.client() as client:
        raw = client.chat.completions.with_raw_response.create(model="renamed", messages=MESSAGES)
    body = spec.validate("CreateChatCompletionResponse", orjson.loads(raw.content))
    assert core.upstream.last.json["model"] == "real-model-name"
    assert body["model"] in ("renamed", "real-model-name")


def test_renamed_model_in_a_stream_reaches_the_upstream_under_its_upstream_name(
    core: Core, spec: SpecValidator
) -> None:
    body = {"model": "renamed", "messages": MESSAGES, "stream": True}
    response = httpx.post(
        f"{core.gateway.base_url}/chat/completions", json=body, headers=core.auth, timeout=10
    )
    chunks = assert_stream(parse_sse(response.content), spec=spec)
    assert core.upstream.last.json["model"] == "real-model-name"
    assert {c["model"] for c in chunks} <= {"renamed", "real-model-name"}


def test_upstream_receives_the_provider_key_not_the_client_key(core: Core) -> None:
    with core.client() as client:
        client.chat.completions.create(**CHAT)
    received = core.upstream.last
    assert received.authorization == f"Bearer {PROVIDER_KEY}"
    leaked = {name: value for name, value in received.headers.items() if CLIENT_KEY in value}
    assert not leaked, f"the client's gateway key reached the upstream in {leaked}"


def test_upstream_request_id_is_passed_through(core: Core, spec: SpecValidator) -> None:
    response = httpx.post(
        f"{core.gateway.base_url}/chat/completions", json=CHAT, headers=core.auth, timeout=10
    )
    assert response.status_code == 200
    spec.validate("CreateChatCompletionResponse", response.json())
    upstream_id = core.upstream.last.response_headers["x-request-id"]
    assert response.headers.get("x-request-id") == upstream_id


def test_gateway_adds_a_request_id_when_the_upstream_has_none(core: Core, spec: SpecValidator) -> None:
    core.upstream.behaviour = "ok no_request_id=1"
    first = httpx.post(f"{core.gateway.base_url}/chat/completions", json=CHAT, headers=core.auth, timeout=10)
    second = httpx.post(f"{core.gateway.base_url}/chat/completions", json=CHAT, headers=core.auth, timeout=10)
    assert first.status_code == second.status_code == 200
    spec.validate("CreateChatCompletionResponse", first.json())
    assert "x-request-id" not in core.upstream.last.response_headers
    assert first.headers.get("x-request-id"), "the gateway added no x-request-id"
    assert first.headers["x-request-id"] != second.headers.get("x-request-id")


def test_openai_processing_ms_and_ratelimit_headers_come_through(core: Core, spec: SpecValidator) -> None:
    response = httpx.post(
        f"{core.gateway.base_url}/chat/completions", json=CHAT, headers=core.auth, timeout=10
    )
    assert response.status_code == 200
    spec.validate("CreateChatCompletionResponse", response.json())
    assert response.headers.get("openai-processing-ms") == "42"
    assert response.headers.get("x-ratelimit-remaining-requests") == "9999"
    assert response.headers.get("x-ratelimit-limit-tokens") == "2000000"


def test_stream_response_carries_the_upstream_headers(core: Core, spec: SpecValidator) -> None:
    body = {**CHAT, "stream": True}
    with httpx.stream(
        "POST", f"{core.gateway.base_url}/chat/completions", json=body, headers=core.auth, timeout=10
    ) as response:
        raw = response.read()
    assert response.status_code == 200
    assert_stream(parse_sse(raw), spec=spec)
    assert response.headers.get("x-request-id") == core.upstream.last.response_headers["x-request-id"]
    assert response.headers.get("x-ratelimit-remaining-requests") == "9999"


def test_azure_preset_calls_the_deployment_url_with_the_api_key_header(
    core: Core, spec: SpecValidator
) -> None:
    with core.client() as client:
        raw = client.chat.completions.with_raw_response.create(model="azure-model", messages=MESSAGES)
    spec.validate("CreateChatCompletionResponse", orjson.loads(raw.content))
    received = core.upstream.last
    assert received.path == "/openai/deployments/my-deployment/chat/completions"
    assert received.query.get("api-version") == "2024-10-21"
    assert received.headers.get("api-key") == PROVIDER_KEY
    assert CLIENT_KEY not in (received.authorization or "")


def test_stream_from_an_upstream_that_omits_done_still_ends_with_done(
    core: Core, spec: SpecValidator
) -> None:
    core.upstream.behaviour = "no_done"
    response = httpx.post(
        f"{core.gateway.base_url}/chat/completions",
        json={**CHAT, "model": "nodone-model", "stream": True},
        headers=core.auth,
        timeout=10,
    )
    assert response.status_code == 200
    assert b"[DONE]" not in b"".join(core.upstream.last.sent_events)
    chunks = assert_stream(parse_sse(response.content), spec=spec)
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"


async def test_concurrent_streams_each_get_their_own_answer(core: Core, spec: SpecValidator) -> None:
    core.upstream.behaviour = "slow_stream delay=0.05 chunks=4"

    async def one(session: aiohttp.ClientSession, i: int) -> tuple[str, list[dict]]:
        body = {
            "model": "gpt-4o-mini",
            "messages": [{"role": "user", "content": f"question {i}"}],
            "stream": True,
        }
        async with session.post(
            f"{core.gateway.base_url}/chat/completions", json=body, headers=core.auth
        ) as response:
            assert response.status == 200
            raw = await response.read()
        return f"question {i}", assert_stream(parse_sse(raw), spec=spec)

    async with aiohttp.ClientSession() as session:
        results = await asyncio.wait_for(asyncio.gather(*(one(session, i) for i in range(20))), timeout=20)
    for question, chunks in results:
        text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
        assert text == reply_text({"messages": [{"role": "user", "content": question}]})
    assert len({chunks[0]["id"] for _, chunks in results}) == 20
    assert len(core.upstream.requests) == 20


async def test_async_sdk_streams_through_the_gateway(core: Core) -> None:
    async with openai.AsyncOpenAI(
        base_url=core.gateway.base_url, api_key=core.key, max_retries=0, timeout=10
    ) as client:
        stream = await client.chat.completions.create(
            **CHAT, stream=True, stream_options={"include_usage": True}
        )
        chunks = [chunk async for chunk in stream]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == reply_text(CHAT)
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == len(reply_pieces(CHAT))


def test_gzipped_upstream_answer_reaches_the_client_intact(core: Core, spec: SpecValidator) -> None:
    core.upstream.behaviour = "ok gzip=1"
    with core.client() as client:
        raw = client.chat.completions.with_raw_response.create(**CHAT)
    body = spec.validate("CreateChatCompletionResponse", orjson.loads(raw.content))
    assert body["choices"][0]["message"]["content"] == reply_text(CHAT)


def test_stream_with_events_split_across_writes_is_relayed_whole(core: Core, spec: SpecValidator) -> None:
    core.upstream.behaviour = "ok fragment=1"
    response = httpx.post(
        f"{core.gateway.base_url}/chat/completions",
        json={**CHAT, "stream": True},
        headers=core.auth,
        timeout=10,
    )
    assert response.status_code == 200
    chunks = assert_stream(parse_sse(response.content), include_usage=False, spec=spec)
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks) == reply_text(CHAT)


def test_stream_with_sse_comments_stays_a_valid_stream(core: Core, spec: SpecValidator) -> None:
    core.upstream.behaviour = "ok comments=1"
    with core.client() as client:
        chunks = list(client.chat.completions.create(**CHAT, stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == reply_text(CHAT)
    response = httpx.post(
        f"{core.gateway.base_url}/chat/completions",
        json={**CHAT, "stream": True},
        headers=core.auth,
        timeout=10,
    )
    assert_stream(parse_sse(response.content), include_usage=False, spec=spec)


def test_long_fast_stream_arrives_complete_and_in_order(core: Core, spec: SpecValidator) -> None:
    core.upstream.behaviour = "ok chunks=2000"
    body = {**CHAT, "stream": True}  # without include_usage: the relay must filter the usage it adds
    response = httpx.post(
        f"{core.gateway.base_url}/chat/completions", json=body, headers=core.auth, timeout=30
    )
    assert response.status_code == 200
    chunks = assert_stream(parse_sse(response.content), include_usage=False)
    spec.validate("CreateChatCompletionStreamResponse", chunks[0])
    contents = [c["choices"][0]["delta"].get("content") for c in chunks[1:-1]]
    assert contents == reply_pieces(CHAT, 2000)
