"""DisconnectWatch: Granian's disconnect future is armed only for requests that outlive ARM_AFTER.

The end-to-end behaviour (a client that leaves has its upstream call dropped, and is recorded as 499)
is tested through a real Granian in tests/e2e/test_upstream_cancel.py; here, the arming rules."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from sluicegate.server.context import RequestContext
from sluicegate.server.disconnect import DisconnectWatch
from sluicegate.server.later import Later


class Proto:
    """Granian's side of one request: the future `client_disconnect()` returns, and how often it was asked."""

    def __init__(self) -> None:
        self.asked = 0
        self.gone: asyncio.Future[None] | None = None

    def client_disconnect(self) -> asyncio.Future[None]:
        self.asked += 1
        self.gone = asyncio.get_running_loop().create_future()
        return self.gone


def ctx() -> RequestContext:
    return RequestContext("/v1/chat/completions", "POST", "127.0.0.1", None)


async def run(watch: DisconnectWatch, proto: Proto, c: RequestContext, seconds: float) -> None:
    task = asyncio.current_task()
    assert task is not None
    entry = watch.add(proto, c, task)
    try:
        await asyncio.sleep(seconds)
    finally:
        DisconnectWatch.done(entry)


async def test_a_request_over_before_the_beat_never_asks_granian() -> None:
    watch = DisconnectWatch(Later(0.05))
    protos = [Proto() for _ in range(20)]
    await asyncio.gather(*(run(watch, p, ctx(), 0.001) for p in protos))
    await asyncio.sleep(0.15)  # two beats pass with the finished requests still queued
    assert [p.asked for p in protos] == [0] * 20
    assert watch._later._handle is None  # nothing in flight: the timer stops
    watch._later.close()


async def test_a_long_request_is_armed_and_cancelled_when_its_client_goes() -> None:
    watch = DisconnectWatch(Later(0.02))
    proto, c = Proto(), ctx()
    task = asyncio.ensure_future(run(watch, proto, c, 10.0))
    await asyncio.sleep(0.1)  # armed between 0.02 and 0.04 s
    assert proto.asked == 1 and proto.gone is not None
    proto.gone.set_result(None)  # the client leaves
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 1.0)
    assert c.client_gone is True
    watch._later.close()


async def test_the_armed_watch_is_dropped_when_the_request_ends() -> None:
    watch = DisconnectWatch(Later(0.02))
    proto, c = Proto(), ctx()
    await run(watch, proto, c, 0.1)
    assert proto.asked == 1 and proto.gone is not None
    assert proto.gone.cancelled()  # the request's end cancels Granian's future
    assert c.client_gone is False
    watch._later.close()


async def test_a_finished_request_is_not_held_until_the_beat() -> None:
    watch = DisconnectWatch(Later(10.0))
    proto, c = Proto(), ctx()
    await run(watch, proto, c, 0.0)
    entry: Any = watch._later._pending[0]
    assert entry[1:] == [None, None]  # neither its task, proto nor context kept alive
    watch._later.close()
