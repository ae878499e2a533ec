"""/v1/messages as coding agents use it, through the real gateway, in front of chat-only upstreams.

The `anthropic` SDK drives the gateway; a scripted stand-in upstream (support.scripted_upstream)
answers with tool calls, reasoning_content, or streams that stop short. Every answer and stream
event is checked against Anthropic's published spec; what the upstream received is checked too.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import orjson
import pytest
from metering_kit import LogTable, wait_for_request
from support.anthropic_spec import anthropic_spec
from support.gateway import Gateway, start_gateway
from support.schema import SpecValidator, assert_stream, parse_sse
from support.scripted_upstream import Reply, ScriptedUpstream, text_reply, tool_call_reply

KEY = "sk-agents-client-key-1"
PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
BASH = {
    "name": "Bash",
    "description": "Run a shell command.",
    "input_schema": {
        "type": "object",
        "properties": {"command": {"type": "string"}},
        "required": ["command"],
    },
}


class Env:
    def __init__(self, gateway: Gateway, upstream: ScriptedUpstream, log: LogTable) -> None:
        self.gateway, self.upstream, self.log = gateway, upstream, log

    def client(self) -> anthropic.Anthropic:
        return anthropic.Anthropic(base_url=self.gateway.url, api_key=KEY, max_retries=0)


@pytest.fixture(scope="module")
def env() -> Iterator[Env]:
    up = ScriptedUpstream()
    database = f"sqlite:///{Path(tempfile.mkdtemp(prefix='sg-agents-')) / 'log.db'}"
    gateway = start_gateway(
        {
            "database": database,
            "keys": [{"key": KEY, "name": "agent"}],
            "upstreams": {
                "plain": {"base_url": up.url, "api_key": "sk-provider"},
                "llama": {"preset": "llamacpp", "base_url": up.url},
                "deep": {
                    "preset": "deepseek",
                    "base_url": up.url,
                    "api_key": "sk-provider",
                    "max_output_tokens": 8192,
                },
            },
            "models": {
                "agent-model": "plain/served-model",
                "llama-model": "llama/smollm2",
                "deep-model": "deep/deepseek-reasoner",
            },
            "metering": {"flush_interval_s": 0.2},
        }
    )
    try:
        yield Env(gateway, up, LogTable(database))
    finally:
        gateway.stop()
        up.close()


@pytest.fixture(autouse=True)
def fresh(env: Env) -> Iterator[None]:
    env.upstream.received.clear()
    env.upstream.respond = lambda body: text_reply(body, "hello there")
    yield


@pytest.fixture(scope="module")
def aspec() -> SpecValidator:
    return anthropic_spec()


def stream_events(
    env: Env, body: dict[str, Any], path: str = "/v1/messages"
) -> tuple[httpx.Response, list[Any]]:
    """POST a streamed request; the response and its (event name, data) frames."""
    with httpx.stream(
        "POST",
        f"{env.gateway.url}{path}",
        headers={"x-api-key": KEY},
        json={**body, "stream": True},
        timeout=20,
    ) as r:
        raw = r.read()
    frames = []
    for block in raw.decode().split("\n\n"):
        if block.strip():
            lines = block.splitlines()
            frames.append((lines[0].removeprefix("event: "), orjson.loads(lines[1].removeprefix("data: "))))
    return r, frames


def check_frames(aspec: SpecValidator, frames: list[Any]) -> None:
    for name, data in frames:
        assert data["type"] == name
        if name == "error":
            aspec.validate("ErrorResponse", data)
        elif name != "ping":
            aspec.validate("MessageStreamEvent", data)


# -- Claude Code's request shape ----------------------------------------------------------------


def test_system_messages_inside_messages_reach_the_upstream_in_place(env: Env, aspec: SpecValidator) -> None:
    message = env.client().beta.messages.create(
        model="agent-model",
        max_tokens=100,
        betas=["mid-conversation-system-2026-04-07", "context-management-2025-06-27"],
        system=[{"type": "text", "text": "You are terse.", "cache_control": {"type": "ephemeral"}}],
        messages=[
            {
                "role": "user",
                "content": [{"type": "text", "text": "Say hi", "cache_control": {"type": "ephemeral"}}],
            },
            {"role": "system", "content": "Agents available: Explore."},
        ],
        thinking={"type": "adaptive"},
        output_config={"effort": "high"},
        context_management={"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]},
        metadata={"user_id": "u1"},
    )
    assert message.content[0].type == "text" and message.content[0].text == "hello there"
    sent = env.upstream.bodies[-1]
    assert [m["role"] for m in sent["messages"]] == ["system", "user", "system"]
    assert sent["messages"][2]["content"] == "Agents available: Explore."
    assert sent["reasoning_effort"] == "high"
    assert not {"thinking", "output_config", "context_management"} & set(sent)
    assert env.upstream.received[-1].path == "/v1/chat/completions"


def test_every_answer_carries_a_request_id_header_and_errors_a_request_id(
    env: Env, aspec: SpecValidator
) -> None:
    ok = httpx.post(
        f"{env.gateway.url}/v1/messages?beta=true",
        headers={"x-api-key": KEY, "anthropic-beta": "claude-code-20250219,effort-2025-11-24"},
        json={"model": "agent-model", "max_tokens": 10, "messages": [{"role": "user", "content": "x"}]},
    )
    assert ok.status_code == 200 and ok.headers["request-id"]
    aspec.validate("Message", ok.json())
    missing = httpx.post(
        f"{env.gateway.url}/v1/messages",
        headers={"x-api-key": KEY},
        json={"model": "nope", "max_tokens": 10, "messages": [{"role": "user", "content": "x"}]},
    )
    assert missing.status_code == 404
    aspec.validate("ErrorResponse", missing.json())
    assert missing.json()["request_id"] == missing.headers["request-id"]
    env.upstream.respond = lambda body: Reply.whole(
        {"error": {"message": "bad things", "type": "x"}}, status=400
    )
    refused = httpx.post(
        f"{env.gateway.url}/v1/messages",
        headers={"x-api-key": KEY},
        json={"model": "agent-model", "max_tokens": 10, "messages": [{"role": "user", "content": "x"}]},
    )
    assert refused.status_code == 400
    assert refused.json()["request_id"] == refused.headers["request-id"]
    assert refused.json()["error"] == {"type": "invalid_request_error", "message": "bad things"}


def test_the_sdk_exposes_the_request_id(env: Env) -> None:
    message = env.client().messages.create(
        model="agent-model", max_tokens=10, messages=[{"role": "user", "content": "x"}]
    )
    assert message._request_id and message._request_id.startswith("req_")


# -- tool use ----------------------------------------------------------------------------------


def test_a_streamed_tool_use_round_trip_with_an_error_result_and_an_image(
    env: Env, aspec: SpecValidator
) -> None:
    def respond(body: dict[str, Any]) -> Reply:
        tools = [m for m in body["messages"] if m["role"] == "tool"]
        if not tools:
            return tool_call_reply(body, "Bash", {"command": "ls /nowhere"}, call_id="call_ls")
        return text_reply(body, f"saw: {tools[0]['content']}")

    env.upstream.respond = respond
    client = env.client()
    question = {"role": "user", "content": "list /nowhere"}
    with client.messages.stream(
        model="agent-model", max_tokens=200, tools=[BASH], messages=[question]
    ) as stream:
        first = stream.get_final_message()
    assert first.stop_reason == "tool_use"
    call = first.content[-1]
    assert call.type == "tool_use" and call.name == "Bash" and call.input == {"command": "ls /nowhere"}
    result = {
        "type": "tool_result",
        "tool_use_id": call.id,
        "is_error": True,
        "content": [
            {"type": "text", "text": "ls: cannot access '/nowhere'"},
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
        ],
    }
    with client.messages.stream(
        model="agent-model",
        max_tokens=200,
        tools=[BASH],
        messages=[
            question,
            {"role": "assistant", "content": first.content},
            {"role": "user", "content": [result]},
        ],
    ) as stream:
        second = stream.get_final_message()
    assert second.stop_reason == "end_turn"
    assert second.content[0].text == "saw: Error: ls: cannot access '/nowhere'"
    sent = env.upstream.bodies[-1]["messages"]
    assert sent[1]["tool_calls"][0]["id"] == "call_ls"
    assert sent[2] == {
        "role": "tool",
        "tool_call_id": "call_ls",
        "content": "Error: ls: cannot access '/nowhere'",
    }
    assert sent[3]["content"][0]["image_url"]["url"].startswith("data:image/png;base64,")
    _, frames = stream_events(
        env, {"model": "agent-model", "max_tokens": 50, "tools": [BASH], "messages": [question]}
    )
    check_frames(aspec, frames)
    assert [d["content_block"]["type"] for n, d in frames if n == "content_block_start"] == ["tool_use"]


# -- thinking ----------------------------------------------------------------------------------


def test_an_upstreams_reasoning_content_streams_back_as_thinking(env: Env, aspec: SpecValidator) -> None:
    env.upstream.respond = lambda body: text_reply(body, "It is 42.", reasoning="Six times seven is 42.")
    with env.client().messages.stream(
        model="agent-model",
        max_tokens=300,
        thinking={"type": "enabled", "budget_tokens": 2048},
        messages=[{"role": "user", "content": "6*7?"}],
    ) as stream:
        message = stream.get_final_message()
    assert [b.type for b in message.content] == ["thinking", "text"]
    assert message.content[0].thinking == "Six times seven is 42."
    assert message.content[0].signature.startswith("sluicegate.v1.")
    assert message.content[1].text == "It is 42."
    assert env.upstream.bodies[-1]["reasoning_effort"] == "low"
    _, frames = stream_events(
        env,
        {
            "model": "agent-model",
            "max_tokens": 300,
            "thinking": {"type": "adaptive"},
            "messages": [{"role": "user", "content": "q"}],
        },
    )
    check_frames(aspec, frames)
    deltas = [d["delta"]["type"] for n, d in frames if n == "content_block_delta"]
    assert deltas[:3] == ["thinking_delta", "thinking_delta", "signature_delta"]


def test_thinking_in_a_whole_answer_and_back_in_the_next_turn(env: Env, aspec: SpecValidator) -> None:
    env.upstream.respond = lambda body: text_reply(body, "42", reasoning="multiply")
    client = env.client()
    first = client.messages.create(
        model="deep-model",
        max_tokens=300,
        thinking={"type": "adaptive"},
        output_config={"effort": "max"},
        messages=[{"role": "user", "content": "6*7?"}],
    )
    aspec.validate("Message", first.model_dump(mode="json"))
    assert [b.type for b in first.content] == ["thinking", "text"]
    assert "reasoning_effort" not in env.upstream.bodies[-1], "DeepSeek picks reasoning by model: not sent"
    assert env.upstream.bodies[-1]["max_tokens"] == 300, "below the upstream's limit: unchanged"
    with client.messages.stream(
        model="deep-model", max_tokens=64000, messages=[{"role": "user", "content": "x"}]
    ) as stream:  # the SDK refuses such a max_tokens without streaming
        stream.get_final_message()
    assert env.upstream.bodies[-1]["max_tokens"] == 8192, "lowered to the upstream's max_output_tokens"
    second = client.messages.create(
        model="deep-model",
        max_tokens=300,
        thinking={"type": "adaptive"},
        messages=[
            {"role": "user", "content": "6*7?"},
            {"role": "assistant", "content": first.content},
            {"role": "user", "content": "and 6*8?"},
        ],
    )
    assert second.content[-1].text == "42"
    sent = env.upstream.bodies[-1]["messages"]
    assert sent[1] == {"role": "assistant", "content": "42"}, "thinking is dropped from history, never a 400"


def test_reasoning_of_tool_call_turns_goes_back_only_to_upstreams_that_need_it(env: Env) -> None:
    history = [
        {"role": "user", "content": "list files"},
        {
            "role": "assistant",
            "content": [
                {"type": "thinking", "thinking": "I should run ls.", "signature": "sluicegate.v1.x"},
                {"type": "tool_use", "id": "call_1", "name": "Bash", "input": {"command": "ls"}},
            ],
        },
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "call_1", "content": "a.txt"}]},
    ]
    client = env.client()
    for model in ("deep-model", "agent-model"):
        client.messages.create(
            model=model, max_tokens=50, tools=[BASH], thinking={"type": "adaptive"}, messages=history
        )
    deep, plain = (b["messages"][1] for b in env.upstream.bodies[-2:])
    assert deep["reasoning_content"] == "I should run ls.", "DeepSeek refuses a tool-call turn without it"
    assert "reasoning_content" not in plain
    assert deep["tool_calls"] == plain["tool_calls"]


# -- stop sequences ----------------------------------------------------------------------------


def test_a_stop_sequence_the_text_ends_with_is_reported(env: Env) -> None:
    env.upstream.respond = lambda body: text_reply(body, "count: 1 2 3 STOP")
    message = env.client().messages.create(
        model="agent-model",
        max_tokens=50,
        stop_sequences=["STOP"],
        messages=[{"role": "user", "content": "count"}],
    )
    assert (message.stop_reason, message.stop_sequence) == ("stop_sequence", "STOP")
    assert env.upstream.bodies[-1]["stop"] == ["STOP"]
    with env.client().messages.stream(
        model="agent-model",
        max_tokens=50,
        stop_sequences=["STOP"],
        messages=[{"role": "user", "content": "c"}],
    ) as stream:
        streamed = stream.get_final_message()
    assert (streamed.stop_reason, streamed.stop_sequence) == ("stop_sequence", "STOP")


# -- upstreams that take strings only ------------------------------------------------------------


def test_text_only_content_lists_reach_llama_cpp_as_one_string(env: Env) -> None:
    env.client().messages.create(
        model="llama-model",
        max_tokens=20,
        messages=[
            {"role": "user", "content": [{"type": "text", "text": "one"}, {"type": "text", "text": "two"}]}
        ],
    )
    sent = env.upstream.bodies[-1]
    assert sent["messages"] == [{"role": "user", "content": "one\ntwo"}]
    assert "reasoning_effort" not in sent


def test_openai_clients_content_lists_reach_llama_cpp_as_one_string_too(env: Env) -> None:
    r = httpx.post(
        f"{env.gateway.url}/v1/chat/completions",
        headers={"authorization": f"Bearer {KEY}"},
        json={
            "model": "llama-model",
            "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}],
        },
    )
    assert r.status_code == 200
    assert env.upstream.bodies[-1]["messages"] == [{"role": "user", "content": "hi"}]


# -- usage and stream ends -----------------------------------------------------------------------


def test_a_stream_without_usage_gets_the_gateways_count_in_message_delta(
    env: Env, aspec: SpecValidator
) -> None:
    env.upstream.respond = lambda body: text_reply(body, "a fairly long answer of several words", usage=False)
    r, frames = stream_events(
        env, {"model": "agent-model", "max_tokens": 50, "messages": [{"role": "user", "content": "q"}]}
    )
    check_frames(aspec, frames)
    delta = next(d for n, d in frames if n == "message_delta")
    assert delta["usage"]["output_tokens"] > 0 and delta["usage"]["input_tokens"] > 0
    row = wait_for_request(env.log, r.headers["request-id"])
    assert row["usage_estimated"] and row["completion_tokens"] == delta["usage"]["output_tokens"]


def test_a_chat_stream_without_usage_gets_an_openai_usage_chunk_before_done(
    env: Env, spec: SpecValidator
) -> None:
    env.upstream.respond = lambda body: text_reply(body, "some words here", usage=False)
    r = httpx.post(
        f"{env.gateway.url}/v1/chat/completions",
        headers={"authorization": f"Bearer {KEY}"},
        json={
            "model": "agent-model",
            "stream": True,
            "stream_options": {"include_usage": True},
            "messages": [{"role": "user", "content": "q"}],
        },
    )
    events = parse_sse(r.content)
    assert events[-1] == "[DONE]"
    chunks = assert_stream(events, spec=spec)
    last = chunks[-1]
    assert last["choices"] == [] and last["usage"]["completion_tokens"] > 0
    assert (
        last["usage"]["total_tokens"] == last["usage"]["prompt_tokens"] + last["usage"]["completion_tokens"]
    )
    row = wait_for_request(env.log, r.headers["x-request-id"])
    assert row["usage_estimated"] and row["completion_tokens"] == last["usage"]["completion_tokens"]


def test_a_chat_stream_without_usage_asked_for_gets_no_usage_chunk(env: Env) -> None:
    env.upstream.respond = lambda body: text_reply(body, "words", usage=False)
    r = httpx.post(
        f"{env.gateway.url}/v1/chat/completions",
        headers={"authorization": f"Bearer {KEY}"},
        json={"model": "llama-model", "stream": True, "messages": [{"role": "user", "content": "q"}]},
    )
    chunks = [orjson.loads(e) for e in parse_sse(r.content) if e != "[DONE]"]
    assert all(c["choices"] for c in chunks)


def test_a_messages_stream_that_stops_short_is_an_error_not_an_end_turn(
    env: Env, aspec: SpecValidator
) -> None:
    env.upstream.respond = lambda body: text_reply(body, "half an ans", finish=None, done=False, usage=False)
    r, frames = stream_events(
        env, {"model": "agent-model", "max_tokens": 50, "messages": [{"role": "user", "content": "q"}]}
    )
    check_frames(aspec, frames)
    names = [n for n, _ in frames]
    assert names[-1] == "error" and "message_stop" not in names and "message_delta" not in names
    assert frames[-1][1]["error"]["type"] == "api_error"
    assert "upstream_stream_incomplete" in frames[-1][1]["error"]["message"]
    row = wait_for_request(env.log, r.headers["request-id"])
    assert (row["status"], row["error_type"]) == (502, "upstream_stream_incomplete")
    assert row["completion_tokens"] > 0, "what was relayed is billed"
    with pytest.raises(anthropic.APIStatusError, match="upstream_stream_incomplete"):
        for _ in env.client().messages.create(
            model="agent-model", max_tokens=50, stream=True, messages=[{"role": "user", "content": "q"}]
        ):
            pass


def test_a_chat_stream_that_stops_short_ends_with_an_incomplete_error_event(env: Env) -> None:
    env.upstream.respond = lambda body: text_reply(body, "half an ans", finish=None, done=False)
    r = httpx.post(
        f"{env.gateway.url}/v1/chat/completions",
        headers={"authorization": f"Bearer {KEY}"},
        json={"model": "agent-model", "stream": True, "messages": [{"role": "user", "content": "q"}]},
    )
    events = parse_sse(r.content)
    assert events[-1] == "[DONE]"
    error = orjson.loads(events[-2])
    assert error["error"]["code"] == "upstream_stream_incomplete"
    assert not any(orjson.loads(e).get("choices", [{}])[0].get("finish_reason") for e in events[:-2])
    row = wait_for_request(env.log, r.headers["x-request-id"])
    assert (row["status"], row["error_type"]) == (502, "upstream_stream_incomplete")


def test_a_chat_stream_with_a_finish_reason_but_no_done_is_complete(env: Env) -> None:
    env.upstream.respond = lambda body: text_reply(body, "whole answer", done=False)
    r = httpx.post(
        f"{env.gateway.url}/v1/chat/completions",
        headers={"authorization": f"Bearer {KEY}"},
        json={"model": "agent-model", "stream": True, "messages": [{"role": "user", "content": "q"}]},
    )
    events = parse_sse(r.content)
    assert events[-1] == "[DONE]"
    assert not any("error" in orjson.loads(e) for e in events[:-1])
    row = wait_for_request(env.log, r.headers["x-request-id"])
    assert (row["status"], row["error_type"]) == (200, None)


# -- breakers judge channels, not requests ---------------------------------------------------------


def test_one_clients_refused_request_retried_does_not_open_the_breaker_for_everyone(env: Env) -> None:
    def respond(body: dict[str, Any]) -> Reply:
        if (body.get("response_format") or {}).get("type") == "json_schema":  # llama.cpp: 500, unsupported
            return Reply.whole(
                {"error": {"message": "json_schema is not supported", "type": "server_error"}}, 500
            )
        return text_reply(body, "served")

    env.upstream.respond = respond
    refused = {
        "model": "llama-model",
        "messages": [{"role": "user", "content": "give me JSON"}],
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "x", "schema": {"type": "object"}},
        },
    }
    for _ in range(6):  # what an SDK does with a 500: the same body again
        r = httpx.post(
            f"{env.gateway.url}/v1/chat/completions", headers={"authorization": f"Bearer {KEY}"}, json=refused
        )
        assert r.status_code == 500
    assert len(env.upstream.received) >= 6
    other = httpx.post(
        f"{env.gateway.url}/v1/chat/completions",
        headers={"authorization": f"Bearer {KEY}"},
        json={"model": "llama-model", "messages": [{"role": "user", "content": "hello"}]},
    )
    assert other.status_code == 200, other.text
    assert other.json()["choices"][0]["message"]["content"] == "served"
    ready = httpx.get(f"{env.gateway.url}/readyz").json()
    llama = next(c for c in ready["channels"] if c["upstream"] == "llama")
    assert llama["state"] == "closed"


def test_the_openai_sdk_reads_the_gateways_usage_chunk(env: Env) -> None:
    env.upstream.respond = lambda body: text_reply(body, "three little words", usage=False)
    client = openai.OpenAI(base_url=f"{env.gateway.url}/v1", api_key=KEY, max_retries=0)
    stream = client.chat.completions.create(
        model="agent-model",
        messages=[{"role": "user", "content": "q"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "three little words"
    usage = chunks[-1].usage
    assert usage is not None and usage.completion_tokens > 0 and usage.prompt_tokens > 0
    assert chunks[-1].id == chunks[0].id
