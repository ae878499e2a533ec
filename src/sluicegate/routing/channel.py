"""A channel: one upstream entry a public model can be served by.

Channels are plain immutable values built by the config layer; everything that changes while the
gateway runs (health, in-flight counts, latency) lives in `ChannelHealth`, keyed by channel name.
Two routes that name the same channel therefore share its health: if `openai/gpt-4o-mini` is down
for one public model, it is down for every public model that uses it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Channel:
    """An upstream entry of a route.

    `name` identifies the channel's health record and must be unique per (upstream, model);
    `model` is the upstream's own model name, sent in place of the public one. Within a route,
    lower `priority` is preferred and a higher one is used only when every entry of the better
    priorities is unavailable; `weight` shares traffic within one priority (0 = only when no
    weighted entry is left, useful to drain a channel).
    """

    name: str
    upstream: str
    model: str
    weight: int = 1
    priority: int = 0

    @classmethod
    def of(cls, upstream: str, model: str, weight: int = 1, priority: int = 0) -> Channel:
        """The channel for `upstream` serving `model`, named "upstream/model".

        The name is the health key, so naming by upstream and upstream model makes every public
        model (and alias) served by the same upstream model share one breaker, as it should.
        """
        return cls(f"{upstream}/{model}", upstream, model, weight, priority)

    def __post_init__(self) -> None:
        if not self.name or not self.upstream:
            raise ValueError("a channel needs a name and an upstream")
        if self.weight < 0:
            raise ValueError(f"channel {self.name!r}: weight must not be negative")
