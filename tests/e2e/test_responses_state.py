"""Responses state the gateway keeps for chat-only upstreams: previous_response_id, retrieve, delete,
per key, `store: false`.
"""

from __future__ import annotations

import httpx
import openai
import pytest
import responses_kit
from responses_kit import ALICE, BOB, client, raw, stream_events
from support.agent_upstream import AgentUpstream, Reply
from support.gateway import Gateway
from support.schema import SpecValidator

# The module's gateway and stand-ins (fixtures shared with the other Responses modules).
env = responses_kit.env
gw = responses_kit.gw
chat_up = responses_kit.chat_up
native_up = responses_kit.native_up
log = responses_kit.log


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


def test_an_unknown_previous_response_id_is_a_400(gw: Gateway, chat_up: AgentUpstream) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client(gw).responses.create(model="agent", input="x", previous_response_id="resp_nope")
    assert caught.value.code == "previous_response_not_found"


def test_an_unknown_response_id_is_a_404(gw: Gateway) -> None:
    with pytest.raises(openai.NotFoundError):
        client(gw).responses.retrieve("resp_never_made")
