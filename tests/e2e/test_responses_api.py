"""/v1/responses translated onto chat completions, with the official `openai` SDK through the real
gateway: answers, streams, tools, reasoning, failures. Every Response and stream event is checked
against OpenAI's schema.
"""

from __future__ import annotations

import responses_kit
from metering_kit import LogTable, wait_for_request
from responses_kit import client, raw, stream_events
from support.agent_upstream import CHAT_USAGE, WEATHER, AgentUpstream, Reply
from support.gateway import Gateway
from support.schema import SpecValidator

# The module's gateway and stand-ins (fixtures shared with the other Responses modules).
env = responses_kit.env
gw = responses_kit.gw
chat_up = responses_kit.chat_up
native_up = responses_kit.native_up
log = responses_kit.log


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


def test_a_translated_stream_that_stops_short_fails_and_is_logged_as_incomplete(
    gw: Gateway, chat_up: AgentUpstream, spec: SpecValidator, log: LogTable
) -> None:
    chat_up.stop_short = True
    response = raw(gw, {"model": "agent", "input": "Hi", "stream": True})
    events = stream_events(response, spec)
    assert [e["type"] for e in events][-2:] == ["error", "response.failed"]
    assert events[-2]["code"] == "upstream_stream_incomplete"
    row = wait_for_request(log, response.headers["x-request-id"])
    assert row["error_type"] == "upstream_stream_incomplete"
