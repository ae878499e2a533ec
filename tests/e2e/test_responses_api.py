"""/v1/responses with the official `openai` SDK through the real gateway: on a chat-only stand-in
(translated, with the gateway keeping the state) and on a stand-in that serves the Responses API
itself (passed through). Every Response and stream event is checked against OpenAI's schema, and the
usage of every call is checked in the request log.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import orjson
import pytest
from metering_kit import LogTable, wait_for_request
from support.agent_upstream import CHAT_USAGE, NATIVE_TEXT, AgentUpstream, Reply
from support.gateway import Gateway, start_gateway
from support.schema import SpecValidator, parse_sse
from support.upstream import Upstream

ALICE = "sk-responses-alice-key-7c1e"
BOB = "sk-responses-bob-key-2f9a"
WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "Weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    "strict": False,
}


@pytest.fixture(scope="module")
def env() -> Iterator[tuple[Gateway, AgentUpstream, AgentUpstream, LogTable]]:
    chat_only, native, echo = AgentUpstream(), AgentUpstream(native_responses=True), Upstream()
    db = Path(tempfile.mkdtemp(prefix="sg-responses-")) / "gw.db"
    gateway = start_gateway(
        {
            "database": f"sqlite:///{db}",
            "metering": {"flush_interval_s": 0.1},
            "passthrough": {"enabled": True, "upstream": "native"},
            "keys": [{"key": ALICE, "name": "alice"}, {"key": BOB, "name": "bob"}],
            "upstreams": {
                "chat": {"base_url": chat_only.url, "api_key": "sk-provider-chat"},
                "native": {"base_url": native.url, "api_key": "sk-provider-native", "responses": "native"},
                "echo": {"base_url": echo.url, "api_key": "sk-provider-echo"},
            },
            "models": {
                "agent": "chat/agent-model",
                "native-model": "native/upstream-native",
                "native-same": "native",
                "cut": "echo/behaviour=cut_stream,after=3",
                "demo": "mock/mock-gpt",
            },
        }
    )
    try:
        yield gateway, chat_only, native, LogTable(f"sqlite:///{db}")
    finally:
        gateway.stop()
        chat_only.close()
        native.close()
        echo.close()


@pytest.fixture
def gw(env: Any) -> Gateway:
    return env[0]


@pytest.fixture
def chat_up(env: Any) -> AgentUpstream:
    env[1].replies.clear()
    env[1].requests.clear()
    return env[1]


@pytest.fixture
def native_up(env: Any) -> AgentUpstream:
    env[2].requests.clear()
    return env[2]


@pytest.fixture
def log(env: Any) -> LogTable:
    return env[3]


def client(gw: Gateway, key: str = ALICE) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.url + "/v1", api_key=key, max_retries=0)


def raw(gw: Gateway, body: dict[str, Any], key: str = ALICE) -> httpx.Response:
    return httpx.post(
        gw.url + "/v1/responses", json=body, headers={"authorization": f"Bearer {key}"}, timeout=30
    )


def stream_events(response: httpx.Response, spec: SpecValidator) -> list[dict[str, Any]]:
    assert response.status_code == 200, response.text
    events = [orjson.loads(e) for e in parse_sse(response.content)]
    for i, ev in enumerate(events):
        spec.validate("ResponseStreamEvent", ev)
        assert ev["sequence_number"] == i
    return events


def test_a_plain_answer_on_a_chat_only_upstream(
    gw: Gateway, chat_up: AgentUpstream, spec: SpecValidator
) -> None:
    answer = client(gw).responses.create(model="agent", input="Hi", instructions="Be brief.")
    assert answer.output_text == "Hello from the stand-in."
    assert answer.model == "agent"
    sent = chat_up.chat_requests()[-1]
    assert sent["model"] == "agent-model"
    assert sent["messages"] == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
    spec.validate("Response", raw(gw, {"model": "agent", "input": "Hi"}).json())


def test_a_streamed_answer_emits_schema_valid_events_in_order(
    gw: Gateway, chat_up: AgentUpstream, spec: SpecValidator
) -> None:
    events = stream_events(raw(gw, {"model": "agent", "input": "Hi", "stream": True}), spec)
    kinds = [e["type"] for e in events]
    assert kinds[:4] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
    ]
    assert kinds[-4:] == [
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    done = events[-1]["response"]
    assert done["output"][0]["content"][0]["text"] == "Hello from the stand-in."
    assert done["usage"]["input_tokens"] == CHAT_USAGE["prompt_tokens"]
    assert done["usage"]["output_tokens"] == CHAT_USAGE["completion_tokens"]


def test_the_sdk_streams_text_deltas(gw: Gateway, chat_up: AgentUpstream) -> None:
    with client(gw).responses.stream(model="agent", input="Hi") as stream:
        text = "".join(ev.delta for ev in stream if ev.type == "response.output_text.delta")
        final = stream.get_final_response()
    assert text == "Hello from the stand-in."
    assert final.status == "completed"


def test_a_function_tool_round_trip_with_previous_response_id(gw: Gateway, chat_up: AgentUpstream) -> None:
    chat_up.replies[:] = [
        Reply(tool="get_weather", arguments='{"city":"Oslo"}', call_id="call_w1"),
        Reply(text="It is sunny in Oslo."),
    ]
    c = client(gw)
    first = c.responses.create(model="agent", input="Weather in Oslo?", tools=[WEATHER])  # type: ignore[list-item]
    call = first.output[0]
    assert call.type == "function_call"
    assert (call.name, call.call_id, call.arguments) == ("get_weather", "call_w1", '{"city":"Oslo"}')
    second = c.responses.create(
        model="agent",
        previous_response_id=first.id,
        input=[{"type": "function_call_output", "call_id": "call_w1", "output": "sunny, 21 C"}],
        tools=[WEATHER],  # type: ignore[list-item]
    )
    assert second.output_text == "It is sunny in Oslo."
    sent = chat_up.chat_requests()[-1]["messages"]
    assert sent[0] == {"role": "user", "content": "Weather in Oslo?"}
    assert sent[1]["tool_calls"][0]["id"] == "call_w1"
    assert sent[2] == {"role": "tool", "tool_call_id": "call_w1", "content": "sunny, 21 C"}


def test_a_streamed_function_call_streams_its_arguments(
    gw: Gateway, chat_up: AgentUpstream, spec: SpecValidator
) -> None:
    chat_up.replies[:] = [Reply(tool="get_weather", arguments='{"city":"Rome"}')]
    body = {"model": "agent", "input": "Weather?", "tools": [WEATHER], "stream": True}
    events = stream_events(raw(gw, body), spec)
    deltas = "".join(e["delta"] for e in events if e["type"] == "response.function_call_arguments.delta")
    assert deltas == '{"city":"Rome"}'
    assert events[-1]["type"] == "response.completed"
    assert events[-1]["response"]["output"][0]["arguments"] == '{"city":"Rome"}'


def test_previous_response_id_carries_the_conversation(gw: Gateway, chat_up: AgentUpstream) -> None:
    chat_up.replies[:] = [Reply(text="Nice to meet you, Ada."), Reply(text="Your name is Ada.")]
    c = client(gw)
    first = c.responses.create(model="agent", input="My name is Ada.")
    c.responses.create(model="agent", input="What is my name?", previous_response_id=first.id)
    assert chat_up.chat_requests()[-1]["messages"] == [
        {"role": "user", "content": "My name is Ada."},
        {"role": "assistant", "content": "Nice to meet you, Ada."},
        {"role": "user", "content": "What is my name?"},
    ]


def test_a_streamed_response_can_be_continued_at_once(
    gw: Gateway, chat_up: AgentUpstream, spec: SpecValidator
) -> None:
    events = stream_events(raw(gw, {"model": "agent", "input": "First.", "stream": True}), spec)
    first_id = events[-1]["response"]["id"]
    again = raw(gw, {"model": "agent", "input": "Second.", "previous_response_id": first_id})
    assert again.status_code == 200, again.text
    assert [m["content"] for m in chat_up.chat_requests()[-1]["messages"]] == [
        "First.",
        "Hello from the stand-in.",
        "Second.",
    ]


def test_retrieve_and_delete_a_kept_response(
    gw: Gateway, chat_up: AgentUpstream, spec: SpecValidator
) -> None:
    c = client(gw)
    made = c.responses.create(model="agent", input="Keep me.")
    got = c.responses.retrieve(made.id)
    assert (got.id, got.output_text) == (made.id, "Hello from the stand-in.")
    spec.validate(
        "Response",
        httpx.get(f"{gw.url}/v1/responses/{made.id}", headers={"authorization": f"Bearer {ALICE}"}).json(),
    )
    c.responses.delete(made.id)
    with pytest.raises(openai.NotFoundError):
        c.responses.retrieve(made.id)


def test_another_keys_response_is_not_found(gw: Gateway, chat_up: AgentUpstream) -> None:
    made = client(gw).responses.create(model="agent", input="Alice's.")
    with pytest.raises(openai.NotFoundError):
        client(gw, BOB).responses.retrieve(made.id)
    with pytest.raises(openai.BadRequestError) as caught:
        client(gw, BOB).responses.create(model="agent", input="x", previous_response_id=made.id)
    assert caught.value.code == "previous_response_not_found"


def test_store_false_keeps_nothing(gw: Gateway, chat_up: AgentUpstream) -> None:
    made = client(gw).responses.create(model="agent", input="Forget me.", store=False)
    assert made.store is False
    with pytest.raises(openai.NotFoundError):
        client(gw).responses.retrieve(made.id)


def test_a_native_upstream_gets_the_request_as_sent(gw: Gateway, native_up: AgentUpstream) -> None:
    answer = client(gw).responses.create(model="native-model", input="Hi", store=False)
    assert answer.id == "resp_native_1"
    assert answer.output_text == NATIVE_TEXT
    seen = native_up.requests[-1]
    assert seen.path == "/v1/responses"
    assert seen.json == {"model": "upstream-native", "input": "Hi", "store": False}


def test_translated_stream_usage_is_metered(gw: Gateway, chat_up: AgentUpstream, log: LogTable) -> None:
    response = raw(gw, {"model": "agent", "input": "Meter me.", "stream": True})
    assert response.status_code == 200
    row = wait_for_request(log, response.headers["x-request-id"])
    assert (row["prompt_tokens"], row["completion_tokens"]) == (17, 6)
    assert not row["usage_estimated"]


def test_passed_through_stream_usage_is_metered_from_response_completed(
    gw: Gateway, native_up: AgentUpstream, log: LogTable
) -> None:
    response = raw(gw, {"model": "native-model", "input": "Meter me.", "stream": True})
    assert response.status_code == 200
    row = wait_for_request(log, response.headers["x-request-id"])
    got = (row["prompt_tokens"], row["completion_tokens"], row["cached_tokens"], row["reasoning_tokens"])
    assert got == (21, 9, 5, 4)
    assert not row["usage_estimated"]


def test_passed_through_whole_answer_usage_is_metered(
    gw: Gateway, native_up: AgentUpstream, log: LogTable
) -> None:
    response = raw(gw, {"model": "native-model", "input": "Meter me."})
    assert response.status_code == 200
    row = wait_for_request(log, response.headers["x-request-id"])
    got = (row["prompt_tokens"], row["completion_tokens"], row["cached_tokens"], row["reasoning_tokens"])
    assert got == (21, 9, 5, 4)


def test_a_native_upstream_gets_the_clients_bytes_unchanged(gw: Gateway, native_up: AgentUpstream) -> None:
    body = b'{"model":"native-same",  "input":"Hi",\n "store":false}'
    response = httpx.post(
        gw.url + "/v1/responses",
        content=body,
        headers={"authorization": f"Bearer {ALICE}", "content-type": "application/json"},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    assert native_up.requests[-1].body == body


def test_an_upstream_that_cuts_the_stream_ends_it_with_response_failed(
    gw: Gateway, spec: SpecValidator, log: LogTable
) -> None:
    response = raw(gw, {"model": "cut", "input": "Hi", "stream": True})
    events = stream_events(response, spec)
    kinds = [e["type"] for e in events]
    assert kinds[-2:] == ["error", "response.failed"], kinds
    assert "response.completed" not in kinds
    row = wait_for_request(log, response.headers["x-request-id"])
    assert row["error_type"] is not None
    assert row["status"] >= 500


def test_the_built_in_mock_answers_the_responses_api(gw: Gateway, spec: SpecValidator) -> None:
    answer = client(gw).responses.create(model="demo", input="Hello mock")
    assert answer.output_text
    events = stream_events(raw(gw, {"model": "demo", "input": "Hello mock", "stream": True}), spec)
    assert events[-1]["type"] == "response.completed"
    assert events[-1]["response"]["output"][0]["content"][0]["text"] == answer.output_text


def test_a_request_that_cannot_be_translated_is_an_openai_400(
    gw: Gateway, chat_up: AgentUpstream, spec: SpecValidator
) -> None:
    response = raw(gw, {"model": "agent", "input": [{"type": "item_reference", "id": "msg_1"}]})
    assert response.status_code == 400
    spec.validate("ErrorResponse", response.json())
    assert "item_reference" in response.json()["error"]["message"]
    assert chat_up.chat_requests() == []


def test_an_unknown_previous_response_id_is_a_400(gw: Gateway, chat_up: AgentUpstream) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client(gw).responses.create(model="agent", input="x", previous_response_id="resp_nope")
    assert caught.value.code == "previous_response_not_found"


def test_an_unknown_response_id_is_a_404(gw: Gateway) -> None:
    with pytest.raises(openai.NotFoundError):
        client(gw).responses.retrieve("resp_never_made")


def test_a_passed_through_stream_ends_with_its_own_last_event(gw: Gateway, native_up: AgentUpstream) -> None:
    response = raw(gw, {"model": "native-model", "input": "Hi", "stream": True})
    events = parse_sse(response.content)
    assert "[DONE]" not in events  # the Responses API has no [DONE]; none is added
    assert orjson.loads(events[-1])["type"] == "response.completed"


def test_a_passed_through_stream_that_stops_short_ends_with_an_error_event(
    gw: Gateway, native_up: AgentUpstream, spec: SpecValidator, log: LogTable
) -> None:
    native_up.stop_short = True
    response = raw(gw, {"model": "native-model", "input": "Hi", "stream": True})
    events = [orjson.loads(e) for e in parse_sse(response.content)]
    last = spec.validate("ResponseStreamEvent", events[-1])
    assert (last["type"], last["code"]) == ("error", "upstream_stream_incomplete")
    assert last["sequence_number"] == len(events) - 1
    row = wait_for_request(log, response.headers["x-request-id"])
    assert row["error_type"] == "upstream_stream_incomplete"


def test_a_pass_through_responses_stream_gets_no_done_and_its_own_provider_key(
    gw: Gateway, native_up: AgentUpstream
) -> None:
    response = httpx.post(
        gw.url + "/passthrough/v1/responses",
        json={"model": "upstream-native", "input": "Hi", "stream": True},
        headers={"authorization": "Bearer sk-clients-own-provider-key"},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    events = parse_sse(response.content)
    assert "[DONE]" not in events
    assert orjson.loads(events[-1])["type"] == "response.completed"
    assert native_up.requests[-1].headers["authorization"] == "Bearer sk-clients-own-provider-key"


def test_translated_whole_answer_usage_is_metered(gw: Gateway, chat_up: AgentUpstream, log: LogTable) -> None:
    response = raw(gw, {"model": "agent", "input": "Meter me."})
    assert response.status_code == 200
    assert response.json()["usage"]["total_tokens"] == CHAT_USAGE["total_tokens"]
    row = wait_for_request(log, response.headers["x-request-id"])
    assert (row["prompt_tokens"], row["completion_tokens"], row["endpoint"]) == (17, 6, "/v1/responses")


def test_the_sdk_stream_helper_accepts_reasoning_and_a_function_call(
    gw: Gateway, chat_up: AgentUpstream
) -> None:
    chat_up.replies[:] = [
        Reply(
            text="Checking.",
            reasoning="The user wants weather.",
            tool="get_weather",
            arguments='{"city":"Oslo"}',
        )
    ]
    with client(gw).responses.stream(model="agent", input="Weather?", tools=[WEATHER]) as stream:  # type: ignore[list-item]
        kinds = [ev.type for ev in stream]
        final = stream.get_final_response()
    assert "response.reasoning_summary_text.delta" in kinds
    assert "response.function_call_arguments.delta" in kinds
    assert [item.type for item in final.output] == ["reasoning", "message", "function_call"]
    reasoning = final.output[0]
    assert reasoning.type == "reasoning" and reasoning.summary[0].text == "The user wants weather."
    assert final.output_text == "Checking."
