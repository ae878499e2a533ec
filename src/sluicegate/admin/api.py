"""The admin HTTP API under /admin/ (being written: keys, usage, channels)."""

from __future__ import annotations

from typing import Any

from sluicegate.protocol.errors import NotFound


async def handle_admin(gw: Any, scope: Any, proto: Any, ctx: Any) -> None:
    raise NotFound("The admin API is not enabled.")
