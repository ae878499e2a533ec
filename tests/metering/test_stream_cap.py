"""A stream bounded by its budget: the running count never passes what an honest upstream sends, and the
first event past the cap is refused (neither relayed nor counted)."""

from __future__ import annotations

import orjson

from sluicegate.metering.stream import StreamMeter

from . import recorded


def chunk(content: str, usage: dict[str, int] | None = None) -> bytes:
    doc: dict[str, object] = {
        "object": "chat.completion.chunk",
        "choices": [{"index": 0, "delta": {"content": content}}],
    }
    if usage is not None:
        doc["usage"] = usage
    return orjson.dumps(doc)


def feed_all(meter: StreamMeter, events: list[bytes]) -> list[bytes]:
    sent = []
    for event in events:
        if meter.feed(event):
            sent.append(event)
        if meter.over_cap:
            break
    return sent


def test_an_upstream_within_its_max_tokens_is_never_cut() -> None:
    events = [chunk(" word") for _ in range(5)]
    meter = StreamMeter(False, cap=5)
    assert feed_all(meter, events) == events
    assert not meter.over_cap and meter.answer_tokens == 5


def test_the_first_event_past_the_cap_is_refused_and_not_counted() -> None:
    meter = StreamMeter(False, cap=3)
    sent = feed_all(meter, [chunk(f" #{i}") for i in range(10)])
    assert len(sent) == 3
    assert meter.over_cap and meter.answer_tokens == 3
    assert " #3" not in meter.text()


def test_a_long_text_in_one_chunk_counts_as_its_characters_over_eight() -> None:
    meter = StreamMeter(False, cap=1000)
    meter.feed(chunk("x" * 800))
    assert meter.answer_tokens == 100


def test_a_running_usage_figure_from_the_upstream_is_believed_when_higher() -> None:
    meter = StreamMeter(False, cap=50)
    meter.feed(chunk("hi", {"prompt_tokens": 5, "completion_tokens": 40, "total_tokens": 45}))
    assert meter.answer_tokens == 40
    assert not meter.feed(chunk("more", {"prompt_tokens": 5, "completion_tokens": 60, "total_tokens": 65}))
    assert meter.over_cap


def test_a_recorded_openai_stream_fits_a_cap_of_its_own_completion_tokens() -> None:
    meter = StreamMeter(False, cap=9)  # the recorded stream reports 9 completion tokens
    sent = feed_all(meter, recorded.OPENAI_STREAM)
    assert not meter.over_cap
    assert sent == [e for e in recorded.OPENAI_STREAM if e != recorded.USAGE]


def test_without_a_cap_nothing_is_counted() -> None:
    meter = StreamMeter(False)
    feed_all(meter, [chunk(" word") for _ in range(50)])
    assert meter.answer_tokens == 0 and not meter.over_cap
