"""A stand-in provider API on a real loopback port, served from a background thread.

The base of the native provider stand-ins (Anthropic, Gemini): its own event loop in a thread, so the
same object serves sync tests (the official SDKs) and async ones, and nothing a test does on its own
loop can stall it. A subclass adds its routes in `routes()` and records what it received.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from aiohttp import web


class StandIn:
    """Start on construction, `close()` at the end. `.port` is the listening port; `.received` a list."""

    name = "stand-in"

    def __init__(self) -> None:
        self.received: list[Any] = []
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._runner: web.AppRunner | None = None
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError(f"{self.name} did not start within 10 s")

    def routes(self, app: web.Application) -> None:
        raise NotImplementedError

    @property
    def last(self) -> Any:
        assert self.received, f"the {self.name} received no request"
        return self.received[-1]

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        app = web.Application()
        self.routes(app)
        self._runner = web.AppRunner(app, access_log=None)
        self._loop.run_until_complete(self._runner.setup())
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        self._loop.run_until_complete(site.start())
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self._ready.set()
        self._loop.run_forever()

    def close(self) -> None:
        async def stop() -> None:
            if self._runner is not None:
                await self._runner.cleanup()

        asyncio.run_coroutine_threadsafe(stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
