"""Shutdown without loss: on SIGTERM the worker drains before Granian stops it.

The request log is flushed at once and again while requests finish; requests still running when the
grace period (`server.shutdown_grace_s`) is nearly over are ended so that they are recorded (the
client of one that had not started its answer gets a clear 503); then SIGINT hands over to Granian.
Why apart from the shell (server/app.py): it is the one piece of the worker that runs on a signal.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sluicegate.server.app import Gateway

log = logging.getLogger("sluicegate")


def start_drain(gw: Gateway) -> None:
    """SIGTERM: stop taking requests (each new one gets a 503 and `Connection: close`) and drain."""
    if gw.draining:
        return
    gw.draining = True
    log.info(
        "SIGTERM: %d request(s) in flight get %.0f s; flushing the log",
        len(gw.inflight),
        gw.settings.server.shutdown_grace_s,
    )
    asyncio.get_running_loop().create_task(_drain(gw), name="sluicegate-drain")


async def _drain(gw: Gateway) -> None:
    """Flush while requests finish; just before Granian's kill, end the rest so they are recorded;
    then let Granian stop the worker."""
    try:
        await _drain_requests(gw)
    finally:
        os.kill(os.getpid(), signal.SIGINT)


async def _drain_requests(gw: Gateway) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + max(0.0, gw.settings.server.shutdown_grace_s - 1.0)
    while gw.inflight and loop.time() < deadline:
        if gw.sink is not None:
            await gw.sink.flush()
        await asyncio.sleep(0.2)
    if gw.inflight:
        log.warning(
            "ending %d request(s) still running at the end of the shutdown grace period",
            len(gw.inflight),
        )
        gw.cut_message = "The gateway is shutting down; this request was ended before it finished."
        tasks = list(gw.inflight)
        for task, ctx in list(gw.inflight.items()):
            ctx.cut_for_shutdown = True
            task.cancel()
        await asyncio.wait(tasks, timeout=0.5)
    if gw.sink is not None:
        await gw.sink.flush()
