"""The support kit tested on its own: the stand-in upstream speaks OpenAI (the official SDK and the
spec accept it), its behaviours do what they say, it notices a client going away, and the spec
validator both passes valid bodies and rejects broken ones. No gateway here: these tests make
sure that a failure elsewhere is the gateway's, not the kit's."""

from __future__ import annotations

import asyncio
import copy
import time

import aiohttp
import openai
import orjson
import pytest
from support.schema import SpecValidator, assert_stream, parse_sse, rewrite_nullable
from support.upstream import Behaviour, Upstream, reply_pieces, reply_text

CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hello there"}]}


def direct_client(upstream: Upstream, key: str = "sk-upstream-secret") -> openai.OpenAI:
    return openai.OpenAI(base_url=upstream.url, api_key=key, max_retries=0, timeout=10)


# -- the spec validator -------------------------------------------------------------------------


def test_validator_accepts_a_valid_chat_completion(spec: SpecValidator) -> None:
    body = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": "m",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "hi", "refusal": None},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }
    assert spec.validate("CreateChatCompletionResponse", body) == body


def test_validator_rejects_a_chat_completion_without_choices_naming_the_field(spec: SpecValidator) -> None:
    body = {"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "m"}
    with pytest.raises(AssertionError, match="choices"):
        spec.validate("CreateChatCompletionResponse", body)


def test_validator_rejects_a_wrong_type_with_a_readable_path(spec: SpecValidator) -> None:
    body = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": "yesterday",
        "model": "m",
        "choices": [],
    }
    with pytest.raises(AssertionError) as caught:
        spec.validate("CreateChatCompletionResponse", body)
    assert "$.created" in str(caught.value)


def test_validator_accepts_a_stream_chunk_with_null_finish_reason(spec: SpecValidator) -> None:
    chunk = {
        "id": "c",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "m",
        "choices": [{"index": 0, "delta": {"content": "x"}, "logprobs": None, "finish_reason": None}],
        "usage": None,
    }
    assert spec.validate("CreateChatCompletionStreamResponse", chunk) == chunk


def test_validator_rejects_a_stream_chunk_with_an_unknown_finish_reason(spec: SpecValidator) -> None:
    chunk = {
        "id": "c",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "m",
        "choices": [{"index": 0, "delta": {}, "finish_reason": "exploded"}],
    }
    with pytest.raises(AssertionError, match="finish_reason"):
        spec.validate("CreateChatCompletionStreamResponse", chunk)


def test_validator_checks_error_bodies(spec: SpecValidator) -> None:
    good = {"error": {"message": "no", "type": "invalid_request_error", "param": None, "code": "x"}}
    assert spec.validate("ErrorResponse", good) == good
    with pytest.raises(AssertionError, match="message"):
        spec.validate(
            "ErrorResponse", {"error": {"type": "invalid_request_error", "param": None, "code": None}}
        )
    with pytest.raises(AssertionError):
        spec.validate("ErrorResponse", {"detail": "Not Found"})


def test_validator_checks_models_and_embeddings(spec: SpecValidator) -> None:
    models = {"object": "list", "data": [{"id": "a", "object": "model", "created": 1, "owned_by": "me"}]}
    assert spec.validate("ListModelsResponse", models) == models
    with pytest.raises(AssertionError, match="owned_by"):
        spec.validate(
            "ListModelsResponse", {"object": "list", "data": [{"id": "a", "object": "model", "created": 1}]}
        )
    embeddings = {
        "object": "list",
        "model": "e",
        "data": [{"object": "embedding", "index": 0, "embedding": [0.1, 0.2]}],
        "usage": {"prompt_tokens": 1, "total_tokens": 1},
    }
    assert spec.validate("CreateEmbeddingResponse", embeddings) == embeddings
    broken = copy.deepcopy(embeddings)
    del broken["usage"]
    with pytest.raises(AssertionError, match="usage"):
        spec.validate("CreateEmbeddingResponse", broken)


def test_rewrite_nullable_adds_null_to_types_and_wraps_refs() -> None:
    assert rewrite_nullable({"type": "string", "nullable": True}) == {"type": ["string", "null"]}
    assert rewrite_nullable({"$ref": "#/x", "nullable": True}) == {
        "anyOf": [{"$ref": "#/x"}, {"type": "null"}]
    }
    assert rewrite_nullable({"type": "string", "enum": ["a"], "nullable": True}) == {
        "type": ["string", "null"],
        "enum": ["a", None],
    }
    assert rewrite_nullable({"type": "string", "nullable": False}) == {"type": "string"}


def test_parse_sse_reads_data_payloads_across_line_endings() -> None:
    raw = b': comment\r\n\r\ndata: {"a": 1}\r\n\r\nevent: x\ndata: [DONE]\n\n'
    assert parse_sse(raw) == ['{"a": 1}', "[DONE]"]


def test_assert_stream_rejects_a_stream_without_done() -> None:
    events = ['{"id": "a", "choices": []}']
    with pytest.raises(AssertionError, match=r"\[DONE\]"):
        assert_stream(events)


def test_assert_stream_rejects_changing_ids() -> None:
    events = ['{"id": "a", "choices": []}', '{"id": "b", "choices": []}', "[DONE]"]
    with pytest.raises(AssertionError, match="different ids"):
        assert_stream(events)


def test_assert_stream_rejects_usage_outside_the_last_chunk() -> None:
    events = [
        '{"id": "a", "choices": [{"index": 0, "delta": {}}], "usage": {"total_tokens": 1}}',
        '{"id": "a", "choices": [], "usage": {"total_tokens": 1}}',
        "[DONE]",
    ]
    with pytest.raises(AssertionError, match="before the usage chunk"):
        assert_stream(events, include_usage=True)


def test_assert_stream_rejects_an_error_event() -> None:
    events = ['{"id": "a", "choices": []}', '{"error": {"message": "cut"}}', "[DONE]"]
    with pytest.raises(AssertionError, match="error event"):
        assert_stream(events)


# -- the stand-in upstream ----------------------------------------------------------------------


def test_upstream_chat_completion_is_valid_for_the_sdk_and_the_spec(
    upstream: Upstream, spec: SpecValidator
) -> None:
    with direct_client(upstream) as client:
        raw = client.chat.completions.with_raw_response.create(**CHAT)
    completion = raw.parse()
    assert completion.model == "gpt-4o-mini"
    assert completion.choices[0].message.content == reply_text(CHAT)
    assert completion.usage is not None and completion.usage.prompt_tokens_details is not None
    assert (
        completion.usage.total_tokens == completion.usage.prompt_tokens + completion.usage.completion_tokens
    )
    assert raw.headers["x-request-id"].startswith("req_upstream_")
    assert raw.headers["openai-processing-ms"] == "42"
    assert raw.headers["x-ratelimit-remaining-requests"] == "9999"
    spec.validate("CreateChatCompletionResponse", orjson.loads(raw.content))
    assert upstream.last.authorization == "Bearer sk-upstream-secret"
    assert upstream.last.json["messages"] == CHAT["messages"]


def test_upstream_stream_has_role_content_finish_usage_and_done(
    upstream: Upstream, spec: SpecValidator
) -> None:
    with direct_client(upstream) as client:
        with client.chat.completions.with_streaming_response.create(
            **CHAT, stream=True, stream_options={"include_usage": True}
        ) as response:
            events = parse_sse(response.read())
    chunks = assert_stream(events, include_usage=True, spec=spec)
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    contents = [c["choices"][0]["delta"]["content"] for c in chunks[1:-2]]
    assert contents == reply_pieces(CHAT)
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["usage"]["completion_tokens"] == len(reply_pieces(CHAT))


def test_upstream_stream_without_include_usage_sends_no_usage(upstream: Upstream) -> None:
    with direct_client(upstream) as client:
        stream = client.chat.completions.create(**CHAT, stream=True)
        chunks = list(stream)
    assert len(chunks) == 1 + 4 + 1
    assert all(c.usage is None for c in chunks)


def test_upstream_no_usage_behaviour_omits_usage_even_when_asked(upstream: Upstream) -> None:
    upstream.behaviour = "no_usage"
    with direct_client(upstream) as client:
        completion = client.chat.completions.create(**CHAT)
        chunks = list(
            client.chat.completions.create(**CHAT, stream=True, stream_options={"include_usage": True})
        )
    assert completion.usage is None
    assert all(c.usage is None for c in chunks)
    assert all(c.choices for c in chunks)


def test_upstream_status_behaviour_answers_429_with_retry_after(
    upstream: Upstream, spec: SpecValidator
) -> None:
    upstream.behaviour = "status 429"
    with direct_client(upstream) as client:
        with pytest.raises(openai.RateLimitError) as caught:
            client.chat.completions.create(**CHAT)
    assert caught.value.response.headers["retry-after"] == "2"
    spec.validate("ErrorResponse", caught.value.response.json())


def test_upstream_script_applies_behaviours_in_order_then_falls_back(upstream: Upstream) -> None:
    upstream.script("fail", "status 401")
    with direct_client(upstream) as client:
        with pytest.raises(openai.InternalServerError):
            client.chat.completions.create(**CHAT)
        with pytest.raises(openai.AuthenticationError):
            client.chat.completions.create(**CHAT)
        assert client.chat.completions.create(**CHAT).choices[0].message.content == reply_text(CHAT)
    assert [r.behaviour for r in upstream.requests] == ["fail", "status", "ok"]


def test_upstream_behaviour_header_overrides_per_request(upstream: Upstream) -> None:
    with direct_client(upstream) as client:
        with pytest.raises(openai.BadRequestError):
            client.chat.completions.create(**CHAT, extra_headers={"x-test-behaviour": "status 400"})
        assert client.chat.completions.create(**CHAT).choices


def test_behaviour_parse_rejects_typos() -> None:
    with pytest.raises(ValueError):
        Behaviour.parse("hnag")
    assert Behaviour.parse("slow_stream delay=0.25 chunks=7") == Behaviour(
        kind="slow_stream", delay=0.25, chunks=7
    )
    assert Behaviour.parse("status 429").status == 429


def test_upstream_slow_delays_the_headers(upstream: Upstream) -> None:
    upstream.behaviour = "slow delay=0.3"
    with direct_client(upstream) as client:
        started = time.monotonic()
        client.chat.completions.create(**CHAT)
    assert time.monotonic() - started >= 0.3


async def test_upstream_slow_stream_spaces_chunks(upstream: Upstream) -> None:
    upstream.behaviour = "slow_stream delay=0.1 chunks=3"
    arrivals = []
    async with aiohttp.ClientSession() as session:
        async with session.post(
            f"{upstream.url}/chat/completions", json={**CHAT, "stream": True}
        ) as response:
            async for line in response.content:
                if line.startswith(b"data:"):
                    arrivals.append(time.monotonic())
    # role + 3 content + finish + [DONE] = 6 events, 5 gaps of ~0.1 s
    assert len(arrivals) == 6
    assert arrivals[-1] - arrivals[0] >= 0.45


async def test_upstream_refuse_closes_without_a_response(upstream: Upstream) -> None:
    upstream.behaviour = "refuse"
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.ServerDisconnectedError):
            async with session.post(f"{upstream.url}/chat/completions", json=CHAT) as response:
                await response.read()
    assert upstream.cancelled == 0


async def test_upstream_cut_stream_drops_after_k_events_without_done(upstream: Upstream) -> None:
    upstream.behaviour = "cut_stream after=2"
    received = b""
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.ClientPayloadError):
            async with session.post(
                f"{upstream.url}/chat/completions", json={**CHAT, "stream": True}
            ) as response:
                async for data in response.content.iter_any():
                    received += data
    events = parse_sse(received)
    assert len(events) == 2
    assert "[DONE]" not in events
    assert upstream.cancelled == 0


async def test_upstream_counts_a_client_leaving_a_hanging_request(upstream: Upstream) -> None:
    upstream.behaviour = "hang"
    async with aiohttp.ClientSession() as session:
        with pytest.raises(asyncio.TimeoutError):
            async with session.post(
                f"{upstream.url}/chat/completions", json=CHAT, timeout=aiohttp.ClientTimeout(total=0.3)
            ) as response:
                await response.read()
    assert await upstream.wait_for_async(lambda: upstream.cancelled == 1, timeout=2)
    assert upstream.last.cancelled and not upstream.last.completed


async def test_upstream_counts_a_client_leaving_mid_stream(upstream: Upstream) -> None:
    upstream.behaviour = "slow_stream delay=0.2 chunks=20"
    async with aiohttp.ClientSession() as session:
        async with session.post(
            f"{upstream.url}/chat/completions", json={**CHAT, "stream": True}
        ) as response:
            await response.content.readline()
            left_at = time.monotonic()
            response.close()
    assert await upstream.wait_for_async(lambda: upstream.cancelled == 1, timeout=2)
    assert time.monotonic() - left_at < 1.0


def test_upstream_does_not_count_completed_requests_as_cancelled(upstream: Upstream) -> None:
    with direct_client(upstream) as client:
        client.chat.completions.create(**CHAT)
        list(client.chat.completions.create(**CHAT, stream=True))
    time.sleep(0.1)
    assert upstream.cancelled == 0
    assert all(r.completed for r in upstream.requests)


def test_upstream_embeddings_work_with_the_sdk_base64_default(
    upstream: Upstream, spec: SpecValidator
) -> None:
    with direct_client(upstream) as client:
        result = client.embeddings.create(model="text-embedding-3-small", input=["a b", "c"])
        raw = client.embeddings.with_raw_response.create(
            model="text-embedding-3-small", input="x", encoding_format="float"
        )
    assert [len(d.embedding) for d in result.data] == [8, 8]
    assert result.usage.prompt_tokens == 5
    spec.validate("CreateEmbeddingResponse", orjson.loads(raw.content))


def test_upstream_completions_models_images_moderations(upstream: Upstream, spec: SpecValidator) -> None:
    with direct_client(upstream) as client:
        completion = client.completions.with_raw_response.create(
            model="gpt-3.5-turbo-instruct", prompt="say hi"
        )
        models = client.models.with_raw_response.list()
        image = client.images.generate(model="dall-e-3", prompt="a sluice gate")
        moderation = client.moderations.create(model="omni-moderation-latest", input="hello")
    spec.validate("CreateCompletionResponse", orjson.loads(completion.content))
    spec.validate("ListModelsResponse", orjson.loads(models.content))
    assert image.data and image.data[0].url
    assert moderation.results[0].flagged is False


def test_upstream_transcription_echoes_filename_and_size(upstream: Upstream) -> None:
    audio = bytes(range(256)) * 300
    with direct_client(upstream) as client:
        result = client.audio.transcriptions.create(model="whisper-1", file=("talk.wav", audio, "audio/wav"))
    assert result.text == f"talk.wav:{len(audio)}"
    assert upstream.last.form["file"]["size"] == len(audio)
    assert upstream.last.form["model"] == "whisper-1"


async def test_upstream_catch_all_echoes_method_path_query_and_body_length(upstream: Upstream) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.put(f"{upstream.url}/files/abc?purpose=x", data=b"12345") as response:
            body = await response.json()
    assert body == {"method": "PUT", "path": "/v1/files/abc", "query": {"purpose": "x"}, "body_bytes": 5}


def test_upstream_azure_deployment_route_uses_the_deployment_as_model(upstream: Upstream) -> None:
    with openai.AzureOpenAI(
        azure_endpoint=upstream.root, api_key="az-secret", api_version="2024-10-21", max_retries=0
    ) as client:
        completion = client.chat.completions.create(model="my-deployment", messages=CHAT["messages"])
    assert completion.model == "my-deployment"
    assert upstream.last.path == "/openai/deployments/my-deployment/chat/completions"
    assert upstream.last.query["api-version"] == "2024-10-21"
    assert upstream.last.headers["api-key"] == "az-secret"


def test_upstream_no_request_id_option_omits_the_header(upstream: Upstream) -> None:
    upstream.behaviour = "ok no_request_id=1"
    with direct_client(upstream) as client:
        raw = client.chat.completions.with_raw_response.create(**CHAT)
    assert "x-request-id" not in raw.headers


def test_upstream_records_the_events_and_headers_it_sent(upstream: Upstream) -> None:
    with direct_client(upstream) as client:
        with client.chat.completions.with_streaming_response.create(**CHAT, stream=True) as response:
            received = response.read()
            request_id = response.headers["x-request-id"]
    record = upstream.last
    assert b"".join(record.sent_events) == received
    assert record.response_status == 200
    assert record.response_headers["x-request-id"] == request_id


def test_upstream_no_done_behaviour_ends_the_stream_without_done(upstream: Upstream) -> None:
    upstream.behaviour = "no_done"
    with direct_client(upstream) as client:
        with client.chat.completions.with_streaming_response.create(**CHAT, stream=True) as response:
            events = parse_sse(response.read())
    assert events and "[DONE]" not in events
    assert orjson.loads(events[-1])["choices"][0]["finish_reason"] == "stop"


def test_upstream_model_name_can_choose_the_behaviour(upstream: Upstream) -> None:
    with direct_client(upstream) as client:
        with pytest.raises(openai.RateLimitError):
            client.chat.completions.create(model="behaviour=status,429", messages=CHAT["messages"])
        assert client.chat.completions.create(**CHAT).choices
        short = client.chat.completions.create(model="behaviour=ok,chunks=2", messages=CHAT["messages"])
    assert short.choices[0].message.content == "".join(reply_pieces(CHAT, 2))
    assert [r.behaviour for r in upstream.requests] == ["status", "ok", "ok"]


async def test_upstream_stall_option_pauses_before_one_event(upstream: Upstream) -> None:
    upstream.behaviour = "ok stall_at=2 stall=0.5"
    arrivals = []
    async with aiohttp.ClientSession() as session:
        async with session.post(
            f"{upstream.url}/chat/completions", json={**CHAT, "stream": True}
        ) as response:
            async for line in response.content:
                if line.startswith(b"data:"):
                    arrivals.append(time.monotonic())
    gaps = [b - a for a, b in zip(arrivals, arrivals[1:])]
    assert len(arrivals) == 7
    assert gaps.index(max(gaps)) == 1, f"the longest gap should be before event 2: {gaps}"
    assert arrivals[-1] - arrivals[0] >= 0.5


async def test_upstream_coalesce_option_sends_head_and_first_event_together(upstream: Upstream) -> None:
    upstream.behaviour = "ok coalesce=1 stall_at=1 stall=0.3"
    async with aiohttp.ClientSession() as session:
        async with session.post(
            f"{upstream.url}/chat/completions", json={**CHAT, "stream": True}
        ) as response:
            assert response.status == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            raw = await response.read()
    chunks = assert_stream(parse_sse(raw))
    assert len(chunks) == 6
    assert upstream.last.completed and upstream.cancelled == 0


async def test_upstream_gzip_html_fragment_and_comment_options(upstream: Upstream) -> None:
    async with aiohttp.ClientSession() as session:
        upstream.behaviour = "ok gzip=1"
        async with session.post(f"{upstream.url}/chat/completions", json=CHAT) as response:
            assert response.headers["content-encoding"] == "gzip"
            assert (await response.json())["choices"][0]["message"]["content"] == reply_text(CHAT)
        upstream.behaviour = "status 502 html=1"
        async with session.post(f"{upstream.url}/chat/completions", json=CHAT) as response:
            assert response.status == 502
            assert response.headers["content-type"].startswith("text/html")
        upstream.behaviour = "ok fragment=1 comments=1"
        async with session.post(
            f"{upstream.url}/chat/completions", json={**CHAT, "stream": True}
        ) as response:
            raw = await response.read()
    assert raw.count(b": keep-alive") == 7
    assert_stream(parse_sse(raw))
