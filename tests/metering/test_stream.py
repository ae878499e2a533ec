"""StreamMeter on recorded streams: usage found, the usage chunk hidden unless asked, text counted
when usage never comes."""

from __future__ import annotations

from sluicegate.metering.stream import StreamMeter
from sluicegate.metering.tokens import TokenCounter
from sluicegate.metering.usage import Usage

from . import recorded


def relay(meter: StreamMeter, events: list[bytes]) -> list[bytes]:
    """What the client receives: the events the meter says to forward."""
    return [event for event in events if meter.feed(event)]


def test_usage_chunk_is_hidden_from_a_client_that_did_not_ask(counter: TokenCounter) -> None:
    meter = StreamMeter(client_wants_usage=False)
    sent = relay(meter, recorded.OPENAI_STREAM)
    assert recorded.USAGE not in sent
    assert sent == [e for e in recorded.OPENAI_STREAM if e != recorded.USAGE]


def test_usage_chunk_is_forwarded_to_a_client_that_asked() -> None:
    meter = StreamMeter(client_wants_usage=True)
    assert relay(meter, recorded.OPENAI_STREAM) == recorded.OPENAI_STREAM


def test_reported_usage_is_the_stream_usage_and_not_estimated(counter: TokenCounter) -> None:
    meter = StreamMeter(client_wants_usage=False)
    relay(meter, recorded.OPENAI_STREAM)
    assert meter.complete and meter.done
    assert meter.usage(counter, recorded.REQUEST) == Usage(19, 9, 0, 0, estimated=False)


def test_stream_without_usage_is_estimated_from_the_relayed_text(counter: TokenCounter) -> None:
    meter = StreamMeter(client_wants_usage=False)
    sent = relay(meter, recorded.LLAMACPP_STREAM)
    assert sent == recorded.LLAMACPP_STREAM
    assert meter.text() == recorded.TEXT
    assert meter.usage(counter, recorded.REQUEST) == Usage(
        prompt_tokens=19, completion_tokens=9, estimated=True
    )


def test_client_leaving_mid_stream_counts_only_what_was_sent(counter: TokenCounter) -> None:
    meter = StreamMeter(client_wants_usage=False)
    relay(meter, recorded.OPENAI_STREAM[:4])  # role chunk + "Hello", "!", " How"
    assert meter.text() == "Hello! How"
    usage = meter.usage(counter, recorded.REQUEST)
    assert usage == Usage(prompt_tokens=19, completion_tokens=3, estimated=True)


def test_usage_on_the_last_content_chunk_is_found_and_the_chunk_forwarded(counter: TokenCounter) -> None:
    meter = StreamMeter(client_wants_usage=False)
    assert meter.feed(recorded.GEMINI_LAST_CHUNK) is True
    assert meter.usage(counter) == Usage(5, 1, reasoning_tokens=24)


def test_anthropic_usage_split_over_two_events_is_combined(counter: TokenCounter) -> None:
    meter = StreamMeter(client_wants_usage=False)
    assert relay(meter, recorded.ANTHROPIC_STREAM) == recorded.ANTHROPIC_STREAM
    assert meter.usage(counter) == Usage(prompt_tokens=125, completion_tokens=15, cached_tokens=100)


def test_anthropic_stream_abandoned_before_message_delta_is_estimated(counter: TokenCounter) -> None:
    meter = StreamMeter(client_wants_usage=False)
    relay(meter, recorded.ANTHROPIC_STREAM[:3])
    usage = meter.usage(counter)
    assert usage.estimated
    assert usage.prompt_tokens == 125  # reported by message_start, kept
    assert usage.completion_tokens == 2  # "Hello there"


def test_the_word_usage_inside_content_is_not_mistaken_for_a_usage_object() -> None:
    meter = StreamMeter(client_wants_usage=False)
    chunk = b'{"choices":[{"index":0,"delta":{"content":"usage"},"finish_reason":null}],"usage":null}'
    assert meter.feed(chunk) is True
    assert meter.reported is None


def test_tool_call_arguments_count_towards_the_estimate(counter: TokenCounter) -> None:
    meter = StreamMeter(client_wants_usage=False)
    relay(
        meter,
        [
            b'{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"c","type":"function",'
            b'"function":{"name":"get_weather","arguments":""}}]}}]}',
            b'{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\\"city\\":"}}]}}]}',
            b'{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"\\"Paris\\"}"}}]}}]}',
        ],
    )
    assert meter.text() == 'get_weather{"city":"Paris"}'


def test_long_streams_keep_text_not_raw_chunks(counter: TokenCounter) -> None:
    meter = StreamMeter(client_wants_usage=False, compact_bytes=1024)
    chunk = recorded.CONTENT[2]  # " How"
    for _ in range(1000):
        meter.feed(chunk)
    assert meter._pending_bytes <= 1024 + len(chunk)
    assert meter.text() == " How" * 1000
    assert meter.usage(counter).completion_tokens == 1000


def test_malformed_chunks_are_forwarded_and_ignored(counter: TokenCounter) -> None:
    meter = StreamMeter(client_wants_usage=False)
    assert meter.feed(b'{"usage": {"prompt_tokens": 3, broken') is True
    assert meter.feed(b"not json") is True
    assert meter.usage(counter).estimated
