"""Plain helpers for the routing tests (fixtures are in conftest.py)."""

from __future__ import annotations

from sluicegate.routing import Channel


class Clock:
    """Wall-clock seconds that move only when a test says so."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.t = start

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


def ch(name: str, weight: int = 1, priority: int = 0, upstream: str | None = None) -> Channel:
    """A channel named after its upstream unless told otherwise."""
    return Channel(name=name, upstream=upstream or name, model="m-" + name, weight=weight, priority=priority)
