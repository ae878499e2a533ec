"""Fixtures for the routing core: a hand-driven clock and a router factory with seeded randomness."""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence

import pytest
from routing_helpers import Clock

from sluicegate.routing import BreakerPolicy, Channel, RetryPolicy, Router


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def make_router(clock: Clock) -> Callable[..., Router]:
    """Router(routes, ...) with the test clock and a seeded rng unless a test overrides them."""

    def make(
        routes: Mapping[str, Sequence[Channel]],
        *,
        policy: RetryPolicy | None = None,
        breaker: BreakerPolicy | None = None,
        strategy: str = "weighted",
        keys: Mapping[str, Sequence[str]] | None = None,
        seed: int = 7,
    ) -> Router:
        return Router(
            routes,
            policy=policy,
            breaker=breaker,
            strategy=strategy,
            keys=keys,
            now=clock,
            rng=random.Random(seed),
        )

    return make
