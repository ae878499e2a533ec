"""Later: calls deferred on one beat per worker, run between `after` and 2 × `after`, or never."""

from __future__ import annotations

import asyncio

import pytest

from sluicegate.server.later import Later


async def test_a_call_runs_between_after_and_twice_after() -> None:
    later = Later(0.05)
    loop = asyncio.get_running_loop()
    ran: list[float] = []
    start = loop.time()
    later.add(lambda _: ran.append(loop.time() - start), None)
    await asyncio.sleep(0.03)
    later.add(lambda _: ran.append(loop.time() - start), None)  # added mid-beat: runs on the next one
    await asyncio.sleep(0.2)
    assert len(ran) == 2
    assert 0.05 <= ran[0] < 0.1, ran
    assert 0.08 <= ran[1] < 0.2, ran
    assert later._handle is None  # nothing waits: the beat stops
    later.close()


async def test_a_cancelled_call_never_runs_and_keeps_nothing_alive() -> None:
    later = Later(0.02)
    ran: list[object] = []
    arg = object()
    entry = later.add(ran.append, arg)
    Later.cancel(entry)
    assert entry[1:] == [None, None]
    await asyncio.sleep(0.1)
    assert ran == []
    later.close()


async def test_many_calls_share_one_timer() -> None:
    later = Later(0.02)
    ran: list[int] = []
    for i in range(1000):
        later.add(ran.append, i)
    handle = later._handle
    assert handle is not None
    for i in range(1000, 2000):
        later.add(ran.append, i)
    assert later._handle is handle  # adding sets no timer while the beat runs
    await asyncio.sleep(0.1)
    assert ran == list(range(2000))  # in the order added
    later.close()


def test_used_from_another_loop_it_forgets_the_first() -> None:
    later = Later(0.01)
    ran: list[str] = []

    async def first() -> None:
        later.add(ran.append, "first loop")  # the loop closes before the beat

    async def second() -> None:
        later.add(ran.append, "second loop")
        await asyncio.sleep(0.05)

    asyncio.run(first())
    asyncio.run(second())
    assert ran == ["second loop"]


async def test_a_call_that_fails_does_not_stop_the_beat(caplog: pytest.LogCaptureFixture) -> None:
    later = Later(0.02)
    ran: list[int] = []

    def fails(_: object) -> None:
        raise RuntimeError("boom")

    later.add(fails, None)
    later.add(ran.append, 1)
    await asyncio.sleep(0.08)
    later.add(ran.append, 2)  # the beat still runs after the failure
    await asyncio.sleep(0.08)
    assert ran == [1, 2]
    assert "a deferred set-up failed" in caplog.text
    later.close()
