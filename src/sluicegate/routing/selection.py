"""Strategies: which of several usable channels of one priority gets the request.

Each strategy is a pure function of the candidates (channel plus live health) and a seeded
`random.Random`, so tests can replay a sequence of picks exactly. The router only calls one with
two or more candidates: a single candidate needs no strategy and no random draw.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from types import MappingProxyType

from sluicegate.routing.channel import Channel
from sluicegate.routing.health import ChannelHealth
from sluicegate.routing.keyring import KeyRing


class Candidate:
    """A route entry: the channel as this route configured it, its shared health, its upstream's keys.

    A slotted class rather than a NamedTuple: attribute reads on it are the hot path's bulk.
    """

    __slots__ = ("channel", "health", "keys")

    def __init__(self, channel: Channel, health: ChannelHealth, keys: KeyRing | None = None) -> None:
        self.channel = channel
        self.health = health
        self.keys = keys

    def __repr__(self) -> str:
        return f"Candidate({self.channel.name!r}, {self.health.state})"


Strategy = Callable[[Sequence[Candidate], random.Random], Candidate]


def pick_weighted(candidates: Sequence[Candidate], rng: random.Random) -> Candidate:
    """Weighted random: each candidate wins in proportion to its weight (one random draw).

    When every weight is zero (all drained), fall back to uniform so traffic still flows.
    """
    total = 0
    for c in candidates:
        total += c.channel.weight
    if total <= 0:
        return candidates[rng.randrange(len(candidates))]
    r = rng.random() * total
    for c in candidates:
        r -= c.channel.weight
        if r < 0:
            return c
    return candidates[-1]  # float rounding left r at exactly 0


def pick_least_busy(candidates: Sequence[Candidate], rng: random.Random) -> Candidate:
    """Fewest requests in flight; ties (the idle case) are shared by weight."""
    candidates = _weighted(candidates)
    fewest = min(c.health.in_flight for c in candidates)
    ties = [c for c in candidates if c.health.in_flight == fewest]
    return ties[0] if len(ties) == 1 else pick_weighted(ties, rng)


def pick_lowest_latency(candidates: Sequence[Candidate], rng: random.Random) -> Candidate:
    """Lowest EWMA latency of recent successes.

    A channel never tried goes first, to get measured; one tried but never successful ranks last
    (it has no latency to show, and preferring it would spend every request on a failure).
    """
    candidates = _weighted(candidates)
    untried = [c for c in candidates if c.health.requests == 0 and c.health.ewma_latency is None]
    if untried:
        return untried[0] if len(untried) == 1 else pick_weighted(untried, rng)
    return min(candidates, key=_latency)


def _weighted(candidates: Sequence[Candidate]) -> Sequence[Candidate]:
    # Weight 0 means "only when nothing weighted is left", whatever the strategy.
    if all(c.channel.weight for c in candidates):
        return candidates
    weighted = [c for c in candidates if c.channel.weight]
    return weighted or candidates


def _latency(c: Candidate) -> float:
    latency = c.health.ewma_latency
    return latency if latency is not None else math.inf


STRATEGIES: MappingProxyType[str, Strategy] = MappingProxyType(
    {"weighted": pick_weighted, "least_busy": pick_least_busy, "lowest_latency": pick_lowest_latency}
)


def strategy_named(name: str) -> Strategy:
    """The strategy for a `routing.strategy` value, with an error that lists the valid ones."""
    try:
        return STRATEGIES[name]
    except KeyError:
        raise ValueError(
            f"unknown routing.strategy {name!r}; expected one of {', '.join(STRATEGIES)}"
        ) from None
