"""What a gateway routes with, built from Settings: upstreams, routes, router, channel limits.

Built once at start, and again whenever the store's catalog changes (server/configsync.py). A rebuild
makes every object anew and swaps them onto the gateway in one synchronous step, so a request sees
either the old set or the new one, never a mix; requests already running keep the objects they hold
(their router's attempts, their upstream) to the end. The new router inherits the health of every
unchanged channel, so a rebuild neither forgets a broken channel nor revives it.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from sluicegate.config.model import Settings
from sluicegate.providers.upstream import Upstream, build_upstreams
from sluicegate.routing import BreakerPolicy, RetryPolicy, Router
from sluicegate.routing.channel import Channel
from sluicegate.routing.routes import build_routes

if TYPE_CHECKING:
    from sluicegate.server.app import Gateway

log = logging.getLogger("sluicegate")


def build_router(
    settings: Settings,
    routes: dict[str, list[Channel]],
    default: list[Channel],
    upstreams: dict[str, Any],
    inherit: Router | None = None,
    changed_upstreams: frozenset[str] = frozenset(),
) -> Router:
    from sluicegate.server.proxy import DEFAULT_ROUTE

    r = settings.routing
    all_routes = {**routes, DEFAULT_ROUTE: default} if default else dict(routes)
    keys = {name: [str(i) for i in range(up.key_count)] for name, up in upstreams.items() if up.key_count > 1}
    return Router(
        all_routes,
        RetryPolicy(max_attempts=r.max_attempts, deadline_s=r.deadline_s),
        BreakerPolicy(
            failures=r.breaker.failures,
            cooldown_s=r.breaker.cooldown_s,
            max_cooldown_s=r.breaker.max_cooldown_s,
            idle_probe_s=r.health_check_interval_s,
        ),
        strategy=r.strategy,
        keys=keys,
        inherit=inherit,
        changed_upstreams=changed_upstreams,
    )


def default_channels(upstreams: dict[str, Upstream]) -> list[Channel]:
    """Where /v1/* requests that name no model go (files, batches...): the first real upstream."""
    for name, up in upstreams.items():
        if up.kind != "mock":
            return [Channel(name=f"{name}/*", upstream=name, model="")]
    return []


def apply_settings(
    gw: Gateway, settings: Settings, disabled: frozenset[str] = frozenset(), *, rebuild: bool = False
) -> None:
    """Build the routing objects from `settings` (minus `disabled` channels) and swap them onto `gw`.

    With `rebuild`, the current router's health is inherited for unchanged channels and the health
    keeper and price table follow. Raises ValueError (nothing swapped) if the settings cannot route.
    """
    old = gw.settings if rebuild else None
    changed: frozenset[str] = frozenset()
    if old is not None:
        names = set(old.upstreams) | set(settings.upstreams)
        changed = frozenset(n for n in names if old.upstreams.get(n) != settings.upstreams.get(n))
    upstreams = build_upstreams(settings)
    routes = build_routes(settings)
    if disabled:
        routes = {
            public: kept
            for public, channels in routes.items()
            if (kept := [c for c in channels if c.name not in disabled])
        }
    default = default_channels(upstreams)
    router = build_router(
        settings, routes, default, upstreams, gw.router if rebuild else None, changed_upstreams=changed
    )
    channel_limits: dict[str, tuple[int | None, int | None]] = {
        f"{c.upstream}/{c.model or public}": (c.rpm, c.tpm)
        for public, channels in settings.models.items()
        for c in channels
        if c.rpm or c.tpm
    }
    passthrough = None
    pt = settings.passthrough
    if pt.enabled:
        name = pt.upstream or next((n for n, u in upstreams.items() if u.kind != "mock"), None)
        passthrough = upstreams.get(name) if name else None
    # One synchronous swap: no await between these lines, so no request sees half of it.
    gw.settings = settings
    gw.upstreams = upstreams
    gw.routes = routes
    gw.default_channels = default
    gw.router = router
    gw.unconfigured = frozenset(n for n, u in upstreams.items() if u.missing_key)
    gw.channel_limits = channel_limits
    gw.passthrough_upstream = passthrough
    gw.disabled_channels = disabled
    if rebuild:
        if gw.health is not None:
            gw.health.replace(router, upstreams)
        if gw.recorder is not None:
            from sluicegate.metering.prices import PriceTable

            gw.recorder.prices = PriceTable(
                {m: p.model_dump() for m, p in settings.prices.items()},
                exchange_rates=settings.metering.exchange_rates or None,
            )
        log.info(
            "routes rebuilt: %d model(s), %d upstream(s), %d channel(s) disabled",
            len(routes),
            len(upstreams),
            len(disabled),
        )
