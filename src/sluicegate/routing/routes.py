"""Routes from configuration: public model name -> its channels.

Here rather than in the server so that `serve` can describe routes (its banner) without importing the
request path (the upstream client and the rest) into Granian's parent process, which only supervises workers.
"""

from __future__ import annotations

from sluicegate.config.model import Settings
from sluicegate.providers.mock import MOCK_MODELS
from sluicegate.routing.channel import Channel


def build_routes(settings: Settings) -> dict[str, list[Channel]]:
    """Public model name -> its channels. With nothing configured, the built-in mock serves demo models."""
    routes: dict[str, list[Channel]] = {}
    for public, channels in settings.models.items():
        routes[public] = [
            Channel(
                name=f"{c.upstream}/{c.model or public}",
                upstream=c.upstream,
                model=c.model or public,
                weight=c.weight,
                priority=c.priority,
            )
            for c in channels
        ]
    if not settings.models and not settings.upstreams:
        for name in MOCK_MODELS:
            routes[name] = [Channel(name=f"mock/{name}", upstream="mock", model=name)]
    return routes
