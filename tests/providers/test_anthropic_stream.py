"""An OpenAI chat.completion stream relayed as Anthropic's Messages stream.

Every event produced is checked against Anthropic's published spec (`MessageStreamEvent`, or
`ErrorResponse` for `error`) and parsed by the official SDK's own event model; the full streams
are also consumed by the SDK's stream accumulator, which is what Claude-style clients run.
"""

from __future__ import annotations

from typing import Any

import anthropic
import httpx2  # the anthropic SDK 2.x runs on httpx2, not httpx
import orjson
import pydantic
import pytest
from support.anthropic_spec import anthropic_spec
from support.schema import SpecValidator

from sluicegate.metering.usage import Usage
from sluicegate.providers.anthropic import messages_to_chat, stop_sequences, thinking_mode
from sluicegate.providers.anthropic_stream import ChatToMessageStream

EVENT = pydantic.TypeAdapter(anthropic.types.RawMessageStreamEvent)
CHAT_ID = "chatcmpl-Str3am"


@pytest.fixture(scope="module")
def aspec() -> SpecValidator:
    return anthropic_spec()


def chunk(
    delta: dict[str, Any] | None = None,
    finish: str | None = None,
    *,
    usage: Any = None,
    choices: bool = True,
    **choice: Any,
) -> bytes:
    """One OpenAI stream chunk's `data:` payload, as an include_usage stream sends it."""
    doc: dict[str, Any] = {
        "id": CHAT_ID,
        "object": "chat.completion.chunk",
        "created": 1764000000,
        "model": "gpt-4o-mini",
        "usage": usage,
    }
    doc["choices"] = (
        [{"index": 0, "delta": delta or {}, "finish_reason": finish, "logprobs": None, **choice}]
        if choices
        else []
    )
    return orjson.dumps(doc)


def tool_piece(
    index: int, *, id_: str | None = None, name: str | None = None, arguments: str | None = None
) -> dict[str, Any]:
    piece: dict[str, Any] = {"index": index, "function": {}}
    if id_ is not None:
        piece.update(id=id_, type="function")
    if name is not None:
        piece["function"]["name"] = name
    if arguments is not None:
        piece["function"]["arguments"] = arguments
    return {"tool_calls": [piece]}


USAGE = {
    "prompt_tokens": 120,
    "completion_tokens": 42,
    "total_tokens": 162,
    "prompt_tokens_details": {"cached_tokens": 100},
}

# A realistic stream: role chunk, text, two tool calls with arguments split mid-token, the finish
# reason, then usage in a `choices: []` chunk, then [DONE].
REALISTIC = [
    chunk({"role": "assistant", "content": ""}),
    chunk({"content": "Let me "}),
    chunk({"content": "check both cities."}),
    chunk(tool_piece(0, id_="call_oslo", name="get_weather", arguments="")),
    chunk(tool_piece(0, arguments='{"ci')),
    chunk(tool_piece(0, arguments='ty": "Os')),
    chunk(tool_piece(0, arguments='lo"}')),
    chunk(tool_piece(1, id_="call_rome", name="get_weather", arguments='{"city":')),
    chunk(tool_piece(1, arguments=' "Rome", "unit": "C"}')),
    chunk(finish="tool_calls"),
    chunk(choices=False, usage=USAGE),
    b"[DONE]",
]


def parse(raw: bytes) -> list[tuple[str, dict[str, Any]]]:
    """(event name, data) per frame; each frame must be exactly `event:` + one `data:` line."""
    assert raw.endswith(b"\n\n")
    frames = []
    for block in raw[:-2].split(b"\n\n"):
        lines = block.split(b"\n")
        assert len(lines) == 2 and lines[0].startswith(b"event: ") and lines[1].startswith(b"data: "), block
        frames.append((lines[0][7:].decode(), orjson.loads(lines[1][6:])))
    return frames


def run(
    payloads: list[bytes], aspec: SpecValidator, **kwargs: Any
) -> tuple[ChatToMessageStream, list[tuple[str, dict[str, Any]]]]:
    """Feed every payload, then finish(); check every event against the spec and the SDK."""
    stream = ChatToMessageStream("claude-sonnet-4-6", **kwargs)
    raw = b"".join(stream.feed(p) for p in payloads) + stream.finish()
    events = parse(raw)
    for name, data in events:
        assert data["type"] == name
        if name == "error":
            aspec.validate("ErrorResponse", data)
        elif name != "ping":  # ping has no schema in the spec; the SDK knows it
            aspec.validate("MessageStreamEvent", data)
            EVENT.validate_python(data)
    return stream, events


def names(events: list[tuple[str, dict[str, Any]]]) -> list[str]:
    return [name for name, _ in events]


def test_a_text_stream_has_anthropics_event_sequence(aspec) -> None:
    _, events = run(
        [
            chunk({"role": "assistant", "content": ""}),
            chunk({"content": "Hel"}),
            chunk({"content": "lo"}),
            chunk(finish="stop"),
            chunk(choices=False, usage={"prompt_tokens": 9, "completion_tokens": 2, "total_tokens": 11}),
            b"[DONE]",
        ],
        aspec,
    )
    assert names(events) == [
        "message_start",
        "ping",
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    start = events[0][1]["message"]
    assert start["id"] == "msg_Str3am" and start["model"] == "claude-sonnet-4-6"
    assert start["content"] == [] and start["stop_reason"] is None
    assert events[2][1] == {
        "type": "content_block_start",
        "index": 0,
        "content_block": {"type": "text", "text": "", "citations": None},
    }
    assert [e[1]["delta"] for e in events[3:5]] == [
        {"type": "text_delta", "text": "Hel"},
        {"type": "text_delta", "text": "lo"},
    ]
    delta = events[6][1]
    assert delta["delta"]["stop_reason"] == "end_turn" and delta["delta"]["stop_sequence"] is None
    assert delta["usage"]["input_tokens"] == 9 and delta["usage"]["output_tokens"] == 2


def test_the_realistic_stream_is_blocks_of_text_then_each_tool_call(aspec) -> None:
    stream, events = run(REALISTIC, aspec)
    starts = [d["content_block"] for n, d in events if n == "content_block_start"]
    assert starts == [
        {"type": "text", "text": "", "citations": None},
        {
            "type": "tool_use",
            "id": "call_oslo",
            "name": "get_weather",
            "input": {},
            "caller": {"type": "direct"},
        },
        {
            "type": "tool_use",
            "id": "call_rome",
            "name": "get_weather",
            "input": {},
            "caller": {"type": "direct"},
        },
    ]
    stops = [d["index"] for n, d in events if n == "content_block_stop"]
    assert stops == [0, 1, 2]
    json_by_block: dict[int, str] = {}
    for name, data in events:
        if name == "content_block_delta" and data["delta"]["type"] == "input_json_delta":
            json_by_block[data["index"]] = (
                json_by_block.get(data["index"], "") + data["delta"]["partial_json"]
            )
    assert orjson.loads(json_by_block[1]) == {"city": "Oslo"}
    assert orjson.loads(json_by_block[2]) == {"city": "Rome", "unit": "C"}
    assert names(events)[-2:] == ["message_delta", "message_stop"]
    assert events[-2][1]["delta"]["stop_reason"] == "tool_use"
    assert stream.usage == Usage(prompt_tokens=120, completion_tokens=42, cached_tokens=100)


def test_usage_in_the_final_chunk_is_reported_in_message_delta(aspec) -> None:
    _, events = run(REALISTIC, aspec)
    assert events[-2][1]["usage"] == {
        "input_tokens": 20,
        "output_tokens": 42,
        "cache_read_input_tokens": 100,
        "cache_creation_input_tokens": 0,
        "server_tool_use": None,
        "output_tokens_details": None,
    }


def test_nothing_ends_before_done_because_usage_comes_after_the_finish_reason(aspec) -> None:
    stream = ChatToMessageStream("claude-sonnet-4-6")
    stream.feed(chunk({"content": "Hi"}))
    after_finish = parse(stream.feed(chunk(finish="stop")))
    assert names(after_finish) == ["content_block_stop"]
    assert stream.feed(chunk(choices=False, usage=USAGE)) == b""
    assert names(parse(stream.feed(b"[DONE]"))) == ["message_delta", "message_stop"]


def test_usage_in_the_same_chunk_as_the_finish_reason_counts_too(aspec) -> None:
    stream, events = run([chunk({"content": "ok"}), chunk(finish="stop", usage=USAGE), b"[DONE]"], aspec)
    assert events[-2][1]["usage"]["output_tokens"] == 42
    assert stream.usage is not None and stream.usage.prompt_tokens == 120


def test_without_usage_message_start_and_delta_report_the_estimate(aspec) -> None:
    stream, events = run([chunk({"content": "ok"}), chunk(finish="stop"), b"[DONE]"], aspec, input_tokens=7)
    assert events[0][1]["message"]["usage"]["input_tokens"] == 7
    assert events[-2][1]["usage"]["input_tokens"] == 7 and events[-2][1]["usage"]["output_tokens"] == 0
    assert stream.usage is None


def test_a_given_message_id_is_used(aspec) -> None:
    _, events = run([chunk({"content": "x"}), b"[DONE]"], aspec, message_id="msg_given")
    assert events[0][1]["message"]["id"] == "msg_given"


def test_a_tool_call_whose_name_comes_late_is_started_once_the_name_is_known(aspec) -> None:
    _, events = run(
        [
            chunk(tool_piece(0, id_="call_1", arguments='{"a"')),
            chunk(tool_piece(0, name="lookup", arguments=": 1}")),
            chunk(finish="tool_calls"),
            b"[DONE]",
        ],
        aspec,
    )
    start = next(d for n, d in events if n == "content_block_start")
    assert start["content_block"]["name"] == "lookup" and start["content_block"]["id"] == "call_1"
    pieces = [d["delta"]["partial_json"] for n, d in events if n == "content_block_delta"]
    assert "".join(pieces) == '{"a": 1}'


def test_tool_calls_without_an_index_are_told_apart_by_position(aspec) -> None:
    # Gemini's OpenAI endpoint sends whole parallel calls in one chunk, without `index`.
    calls = [
        {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}},
        {"id": "c2", "type": "function", "function": {"name": "g", "arguments": '{"x": 1}'}},
    ]
    _, events = run([chunk({"tool_calls": calls}), chunk(finish="tool_calls"), b"[DONE]"], aspec)
    starts = [d["content_block"]["name"] for n, d in events if n == "content_block_start"]
    assert starts == ["f", "g"]


def test_tool_arguments_sent_as_an_object_are_streamed_as_json(aspec) -> None:
    calls = [{"index": 0, "id": "c1", "type": "function", "function": {"name": "f", "arguments": {"x": 1}}}]
    _, events = run([chunk({"tool_calls": calls}), chunk(finish="tool_calls"), b"[DONE]"], aspec)
    assert [d["delta"]["partial_json"] for n, d in events if n == "content_block_delta"] == ['{"x":1}']


def test_text_after_a_tool_call_opens_a_new_text_block(aspec) -> None:
    _, events = run(
        [
            chunk(tool_piece(0, id_="c", name="f", arguments="{}")),
            chunk({"content": "done"}),
            chunk(finish="tool_calls"),
            b"[DONE]",
        ],
        aspec,
    )
    kinds = [d["content_block"]["type"] for n, d in events if n == "content_block_start"]
    assert kinds == ["tool_use", "text"]
    assert [d["index"] for n, d in events if n == "content_block_stop"] == [0, 1]


@pytest.mark.parametrize(
    ("finish", "expected"),
    [
        ("stop", "end_turn"),
        ("length", "max_tokens"),
        ("tool_calls", "tool_use"),
        ("content_filter", "refusal"),
    ],
)
def test_finish_reasons_become_stop_reasons(finish, expected, aspec) -> None:
    _, events = run([chunk({"content": "x"}), chunk(finish=finish), b"[DONE]"], aspec)
    assert events[-2][1]["delta"]["stop_reason"] == expected


def test_a_vllm_stop_string_becomes_the_stop_sequence(aspec) -> None:
    _, events = run([chunk({"content": "x"}), chunk(finish="stop", stop_reason="###"), b"[DONE]"], aspec)
    assert events[-2][1]["delta"]["stop_reason"] == "stop_sequence"
    assert events[-2][1]["delta"]["stop_sequence"] == "###"


def test_an_upstream_that_sent_its_finish_reason_but_no_done_is_closed_by_finish(aspec) -> None:
    stream, events = run([chunk({"content": "partial"}), chunk(finish="stop")], aspec)
    assert names(events)[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    assert events[-2][1]["delta"]["stop_reason"] == "end_turn"
    assert stream.finish() == b"" and stream.feed(b"[DONE]") == b""


def test_a_stream_without_done_or_finish_reason_ends_with_an_error_not_an_invented_end_turn(aspec) -> None:
    stream, events = run([chunk({"content": "partial"})], aspec, request_id="req_abc")
    assert names(events) == ["message_start", "ping", "content_block_start", "content_block_delta", "error"]
    body = events[-1][1]
    assert body["error"]["type"] == "api_error"
    assert "upstream_stream_incomplete" in body["error"]["message"]
    assert body["request_id"] == "req_abc"
    assert stream.incomplete and stream.ended
    assert "message_stop" not in names(events) and "message_delta" not in names(events)


def test_a_failed_upstream_ends_with_an_error_event_and_nothing_after(aspec) -> None:
    stream = ChatToMessageStream("claude-sonnet-4-6")
    raw = stream.feed(chunk({"content": "par"})) + stream.finish("upstream read timeout")
    events = parse(raw)
    assert names(events) == ["message_start", "ping", "content_block_start", "content_block_delta", "error"]
    assert aspec.validate("ErrorResponse", events[-1][1])["error"] == {
        "type": "api_error",
        "message": "upstream read timeout",
    }
    assert stream.ended and stream.feed(b"[DONE]") == b"" and stream.finish() == b""


def test_an_in_band_openai_error_becomes_an_error_event(aspec) -> None:
    _, events = run(
        [
            chunk({"content": "a"}),
            orjson.dumps({"error": {"message": "upstream stream interrupted", "type": "server_error"}}),
            b"[DONE]",
        ],
        aspec,
    )
    assert names(events)[-1] == "error"
    assert events[-1][1]["error"]["message"] == "upstream stream interrupted"


def test_payloads_that_are_not_json_are_skipped(aspec) -> None:
    _, events = run([b": keep-alive", chunk({"content": "ok"}), b"[DONE]"], aspec)
    assert names(events)[0] == "message_start"
    assert [d["delta"]["text"] for n, d in events if n == "content_block_delta"] == ["ok"]


# -- the official SDK consumes the translated stream ------------------------------------------


def sdk_stream_client(upstream_payloads: list[bytes], seen: list[dict[str, Any]]) -> anthropic.Anthropic:
    """An SDK client whose transport is the gateway's translation over a scripted upstream."""

    def gateway(request: httpx2.Request) -> httpx2.Response:
        sent = orjson.loads(request.content)
        chat = messages_to_chat(sent, "gpt-4o-mini")
        seen.append(chat)
        stream = ChatToMessageStream(
            "claude-sonnet-4-6", thinking=thinking_mode(sent), stop_sequences=stop_sequences(sent)
        )
        body = b"".join(stream.feed(p) for p in upstream_payloads) + stream.finish()
        return httpx2.Response(200, content=body, headers={"content-type": "text/event-stream"})

    return anthropic.Anthropic(
        api_key="sk-test",
        base_url="http://gateway.test",
        max_retries=0,
        http_client=httpx2.Client(transport=httpx2.MockTransport(gateway)),
    )


def test_the_sdk_accumulates_the_original_text_tool_inputs_and_usage() -> None:
    seen: list[dict[str, Any]] = []
    client = sdk_stream_client(REALISTIC, seen)
    with client.messages.stream(
        model="claude-sonnet-4-6",
        max_tokens=200,
        messages=[{"role": "user", "content": "Weather in Oslo and Rome?"}],
    ) as stream:
        text = "".join(stream.text_stream)
        message = stream.get_final_message()
    assert seen[0]["stream"] is True and seen[0]["stream_options"] == {"include_usage": True}
    assert text == "Let me check both cities."
    assert [block.type for block in message.content] == ["text", "tool_use", "tool_use"]
    assert message.content[0].text == "Let me check both cities."
    assert (message.content[1].id, message.content[1].input) == ("call_oslo", {"city": "Oslo"})
    assert (message.content[2].id, message.content[2].input) == ("call_rome", {"city": "Rome", "unit": "C"})
    assert message.stop_reason == "tool_use"
    assert (message.usage.input_tokens, message.usage.output_tokens) == (20, 42)
    assert message.usage.cache_read_input_tokens == 100


def test_the_sdk_raises_the_error_event_of_a_failed_stream() -> None:
    failing = [chunk({"content": "par"}), orjson.dumps({"error": {"message": "upstream went away"}})]
    client = sdk_stream_client(failing, [])
    stream = client.messages.stream(
        model="claude-sonnet-4-6", max_tokens=20, messages=[{"role": "user", "content": "Hi"}]
    )
    with pytest.raises(anthropic.APIStatusError, match="upstream went away"), stream as events:
        events.get_final_message()


# -- thinking, stop sequences, estimated usage -----------------------------------------------------


def test_reasoning_content_streams_as_a_thinking_block_with_a_signature(aspec) -> None:
    stream, events = run(
        [
            chunk({"role": "assistant", "content": ""}),
            chunk({"reasoning_content": "Let me "}),
            chunk({"reasoning_content": "think."}),
            chunk({"content": "Answer."}),
            chunk(finish="stop"),
            b"[DONE]",
        ],
        aspec,
        thinking="show",
    )
    assert names(events)[2:10] == [
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "content_block_start",
        "content_block_delta",
        "content_block_stop",
    ]
    assert events[2][1]["content_block"] == {"type": "thinking", "thinking": "", "signature": ""}
    assert [e[1]["delta"]["thinking"] for e in events[3:5]] == ["Let me ", "think."]
    signature = events[5][1]["delta"]
    assert signature["type"] == "signature_delta" and signature["signature"].startswith("sluicegate.v1.")
    assert events[7][1]["content_block"]["type"] == "text" and events[7][1]["index"] == 1


def test_the_sdk_accumulates_thinking_then_text() -> None:
    payloads = [
        chunk({"reasoning": "pondering"}),  # OpenRouter's and Ollama's name for it
        chunk({"content": "done"}),
        chunk(finish="stop"),
        b"[DONE]",
    ]
    seen: list[dict[str, Any]] = []
    client = sdk_stream_client(payloads, seen)
    with client.messages.stream(
        model="claude-sonnet-4-6",
        max_tokens=200,
        thinking={"type": "adaptive"},
        output_config={"effort": "max"},
        messages=[{"role": "user", "content": "Think first"}],
    ) as stream:
        message = stream.get_final_message()
    assert seen[0]["reasoning_effort"] == "high"
    assert [b.type for b in message.content] == ["thinking", "text"]
    assert message.content[0].thinking == "pondering"
    assert message.content[0].signature.startswith("sluicegate.v1.")
    assert message.content[1].text == "done"


def test_reasoning_is_dropped_when_the_client_did_not_ask_for_thinking(aspec) -> None:
    _, events = run(
        [chunk({"reasoning_content": "hmm"}), chunk({"content": "hi"}), chunk(finish="stop")], aspec
    )
    blocks = [e[1]["content_block"]["type"] for e in events if e[0] == "content_block_start"]
    assert blocks == ["text"]


def test_omitted_thinking_keeps_the_block_and_signature_but_no_text(aspec) -> None:
    _, events = run([chunk({"reasoning_content": "secret"}), chunk(finish="stop")], aspec, thinking="omit")
    deltas = [e[1]["delta"]["type"] for e in events if e[0] == "content_block_delta"]
    assert deltas == ["signature_delta"]
    assert b"secret" not in orjson.dumps(events)


def test_text_ending_with_a_requested_stop_sequence_is_a_stop_sequence(aspec) -> None:
    _, events = run(
        [chunk({"content": "one two"}), chunk({"content": " END"}), chunk(finish="stop"), b"[DONE]"],
        aspec,
        stop_sequences=["END", "###"],
    )
    assert events[-2][1]["delta"]["stop_reason"] == "stop_sequence"
    assert events[-2][1]["delta"]["stop_sequence"] == "END"


def test_a_plain_stop_with_stop_sequences_requested_is_an_end_turn(aspec) -> None:
    _, events = run([chunk({"content": "one two"}), chunk(finish="stop")], aspec, stop_sequences=["END"])
    assert events[-2][1]["delta"]["stop_reason"] == "end_turn"
    assert events[-2][1]["delta"]["stop_sequence"] is None


def test_the_gateways_estimate_fills_usage_when_the_upstream_sent_none(aspec) -> None:
    _, events = run(
        [chunk({"content": "hi"}), chunk(finish="stop"), b"[DONE]"],
        aspec,
        estimate=lambda: Usage(prompt_tokens=30, completion_tokens=7, estimated=True),
    )
    assert events[-2][1]["usage"]["input_tokens"] == 30
    assert events[-2][1]["usage"]["output_tokens"] == 7
