"""JSON bytes a request keeps are allocated at their own size, not orjson's working buffer."""

from __future__ import annotations

import tracemalloc

import orjson

from sluicegate.protocol.jsonbytes import dumps_kept

BODY = {
    "model": "bench-model",
    "messages": [{"role": "user", "content": "Hello, how are you?"}],
    "stream": True,
    "stream_options": {"include_usage": True},
}


def allocated(make) -> tuple[bytes, int]:
    """The bytes `make()` returns and the size of the block traced for them."""
    tracemalloc.start()
    try:
        out = make()
        snapshot = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    sizes = [t.size for t in snapshot.traces if t.size >= len(out)]
    return out, min(sizes)


def test_dumps_kept_is_the_same_json_as_orjson():
    for doc in (BODY, {"x": "é" * 5000}, [1, 2.5, None, "a"]):
        assert dumps_kept(doc) == orjson.dumps(doc)


def test_dumps_kept_allocates_about_its_length():
    out, size = allocated(lambda: dumps_kept(BODY))
    assert len(out) < 250
    assert size < len(out) + 64  # the bytes object's header, not orjson's ~4 KB buffer


def test_a_large_body_is_kept_at_its_own_size():
    doc = {"messages": [{"role": "user", "content": "a" * 20_000}]}
    out, size = allocated(lambda: dumps_kept(doc))
    assert size < len(out) + 64
