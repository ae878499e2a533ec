"""/v1/responses passed through to an upstream that serves it (`responses: native`, and pass-through
mode), and the usage of every kind of Responses call in the request log.
"""

from __future__ import annotations

import httpx
import orjson
import responses_kit
from metering_kit import LogTable, wait_for_request
from responses_kit import ALICE, client, raw
from support.agent_upstream import CHAT_USAGE, NATIVE_TEXT, AgentUpstream
from support.gateway import Gateway
from support.schema import SpecValidator, parse_sse

# The module's gateway and stand-ins (fixtures shared with the other Responses modules).
env = responses_kit.env
gw = responses_kit.gw
chat_up = responses_kit.chat_up
native_up = responses_kit.native_up
log = responses_kit.log


def test_a_native_upstream_gets_the_request_as_sent(gw: Gateway, native_up: AgentUpstream) -> None:
    answer = client(gw).responses.create(model="native-model", input="Hi", store=False)
    assert answer.id == "resp_native_1"
    assert answer.output_text == NATIVE_TEXT
    seen = native_up.requests[-1]
    assert seen.path == "/v1/responses"
    assert seen.json == {"model": "upstream-native", "input": "Hi", "store": False}


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


def test_translated_stream_usage_is_metered(gw: Gateway, chat_up: AgentUpstream, log: LogTable) -> None:
    response = raw(gw, {"model": "agent", "input": "Meter me.", "stream": True})
    assert response.status_code == 200
    row = wait_for_request(log, response.headers["x-request-id"])
    assert (row["prompt_tokens"], row["completion_tokens"]) == (17, 6)
    assert not row["usage_estimated"]


def test_translated_whole_answer_usage_is_metered(gw: Gateway, chat_up: AgentUpstream, log: LogTable) -> None:
    response = raw(gw, {"model": "agent", "input": "Meter me."})
    assert response.status_code == 200
    assert response.json()["usage"]["total_tokens"] == CHAT_USAGE["total_tokens"]
    row = wait_for_request(log, response.headers["x-request-id"])
    assert (row["prompt_tokens"], row["completion_tokens"], row["endpoint"]) == (17, 6, "/v1/responses")


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
