from __future__ import annotations

import asyncio

import pytest

from sluicegate.protocol.errors import BadRequest, InvalidJSON, RequestTimeout
from sluicegate.server.body import body_model, parse_json_object, read_body
from sluicegate.server.deadlines import BodyDeadlines


def test_multipart_model_field_is_found() -> None:
    body = (
        b'--b\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n'
        b"Content-Type: audio/wav\r\n\r\nRIFF....\r\n--b\r\n"
        b'Content-Disposition: form-data; name="model"\r\n\r\nwhisper-1\r\n--b--\r\n'
    )
    assert body_model("multipart/form-data; boundary=b", body, False) == (None, "whisper-1")


def test_multipart_without_model() -> None:
    body = b'--b\r\nContent-Disposition: form-data; name="x"\r\n\r\n1\r\n--b--'
    assert body_model("multipart/form-data; boundary=b", body, False) == (None, None)


def test_json_only_endpoints_read_any_body_as_json() -> None:
    assert body_model("text/plain", b"[1]", False) == (None, None)
    with pytest.raises(InvalidJSON):
        body_model("text/plain", b"[1]", True)


def test_a_model_that_is_not_a_string_is_a_bad_request() -> None:
    with pytest.raises(BadRequest):
        body_model("application/json", b'{"model": 3}', False)


@pytest.mark.parametrize("body", [b"", b"{bad", b"[1,2]", b"null"])
def test_bad_json_bodies_are_invalid_json(body: bytes) -> None:
    with pytest.raises(InvalidJSON):
        parse_json_object(body)


class Chunks:
    """A request body as Granian's RSGI protocol yields it, chunk by chunk."""

    def __init__(self, *chunks: bytes, stall: bool = False) -> None:
        self.chunks = list(chunks)
        self.stall = stall

    def __aiter__(self) -> Chunks:
        return self

    async def __anext__(self) -> bytes:
        if self.chunks:
            return self.chunks.pop(0)
        if self.stall:
            await asyncio.Event().wait()  # a client that stopped sending
        raise StopAsyncIteration


async def test_a_declared_body_is_read_to_its_last_byte() -> None:
    assert await read_body(Chunks(b'{"a"', b": 1}"), "8", 100, BodyDeadlines(5, 1)) == b'{"a": 1}'


async def test_a_body_that_ends_short_of_its_length_is_refused() -> None:
    with pytest.raises(BadRequest):
        await read_body(Chunks(b"{"), "8", 100)


async def test_a_stalled_body_is_a_request_timeout_once_the_sweep_finds_it() -> None:
    deadlines = BodyDeadlines(total_s=5, idle_s=0.2)
    deadlines.start()
    try:
        with pytest.raises(RequestTimeout) as caught:
            await asyncio.wait_for(read_body(Chunks(b"{", stall=True), "8", 100, deadlines), 10)
        assert caught.value.status == 408
        assert not deadlines._due
    finally:
        await deadlines.close()


def test_the_sweep_cancels_only_the_late_ones_and_only_once() -> None:
    deadlines = BodyDeadlines(total_s=10, idle_s=2)

    class Task:
        cancelled = 0

        def cancel(self) -> None:
            self.cancelled += 1

    early, late = Task(), Task()
    deadlines.watch(late, now=0.0)  # type: ignore[arg-type]
    deadlines.watch(early, now=1.5)  # type: ignore[arg-type]
    assert deadlines.expire_late(2.5) == 1
    assert deadlines.expire_late(2.6) == 0
    assert (late.cancelled, early.cancelled) == (1, 0)
