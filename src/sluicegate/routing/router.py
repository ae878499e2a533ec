"""The router: one per app, holding every channel's health and handing out `Attempts`.

It is sans-IO: it never sends a request, sleeps, or reads a clock of its own. The I/O shell
drives requests through `plan()` (see attempts.py), runs the active probes `due_probes()` asks
for and reports them with `record_probe()`, serves `snapshot()` on /readyz and the CLI, and, when
several processes share health, periodically publishes `take_changes()` to a `HealthStore` and
`merge()`s what it fetches back.

Clock: `now` should be wall-clock seconds (the default, `time.time`) whenever health is shared
through a store, since other processes read the timestamps; a monotonic clock is fine otherwise.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sluicegate.routing.attempts import Attempts, Route, RoutingContext, Upstream, apply_outcome
from sluicegate.routing.channel import Channel
from sluicegate.routing.health import CLOSED, DISABLED, OPEN, BreakerPolicy, ChannelHealth
from sluicegate.routing.keyring import KeyRing
from sluicegate.routing.retry import SUCCESS, Outcome, RetryPolicy
from sluicegate.routing.selection import Candidate, strategy_named

# Probe reasons
PROBE_HALF_OPEN = "half_open"  # the breaker's cooldown is over: one trial decides
PROBE_IDLE = "idle"  # a closed channel nobody used lately: find trouble before a user does
PROBE_DISABLED = "disabled"  # the channel was refused (403): see whether access came back
PROBE_DISABLED_KEY = "disabled_key"  # a refused provider key: see whether it works again
PROBE_MANUAL = "manual"  # a person asked (POST /admin/channels/{name}/test)


@dataclass(frozen=True, slots=True)
class Probe:
    """An active health check the shell should run now: a cheap request to `channel` with `key`."""

    channel: Channel
    key: str | None
    reason: str


class Router:
    """Channel selection, failover and health for every public model of one app."""

    def __init__(
        self,
        routes: Mapping[str, Sequence[Channel]],
        policy: RetryPolicy | None = None,
        breaker: BreakerPolicy | None = None,
        strategy: str = "weighted",
        keys: Mapping[str, Sequence[str]] | None = None,
        now: Callable[[], float] = time.time,
        rng: random.Random | None = None,
        inherit: Router | None = None,
        changed_upstreams: frozenset[str] = frozenset(),
    ) -> None:
        """Build routes from config; `keys` maps an upstream name to its provider key ids (optional).

        `inherit` is the router this one replaces at run time (routes changed through the admin API):
        a channel with the same name, upstream and model, on an upstream not in `changed_upstreams`,
        keeps its health object (breaker, counters, requests in flight), and such an upstream keeps
        its key ring, so a change elsewhere neither forgets a broken channel nor revives it.

        Raises ValueError for an empty route, a channel name reused for a different upstream or
        model, a channel listed twice in one route, or an unknown strategy.
        """
        self._now = now
        self._breaker = breaker or BreakerPolicy()
        self._policy = policy or RetryPolicy()
        keys = keys or {}
        self._inherit = inherit
        self._changed = changed_upstreams
        self._healths: dict[str, ChannelHealth] = {}
        self._channels: dict[str, Channel] = {}  # first definition of each name, for probes/status
        self._models_of: dict[str, list[str]] = {}
        self._upstreams: dict[str, Upstream] = {}
        self._routes: dict[str, Route] = {}
        for model, channels in routes.items():
            if not channels:
                raise ValueError(f"model {model!r} has no channels")
            names = [c.name for c in channels]
            if len(set(names)) != len(names):
                raise ValueError(f"model {model!r} lists a channel twice")
            self._routes[model] = Route(model, [self._candidate(model, c, keys) for c in channels])
        born = now()
        kept = inherit._healths if inherit is not None else {}
        for name, health in self._healths.items():
            if kept.get(name) is not health:
                health.last_probe = born  # idle probes start one interval after start-up, not in a burst
        self._inherit = None  # only needed while building
        self._ctx = RoutingContext(
            now,
            rng if rng is not None else random.Random(),
            strategy_named(strategy),
            self._policy,
            self._upstreams,
        )

    def _candidate(self, model: str, channel: Channel, keys: Mapping[str, Sequence[str]]) -> Candidate:
        health = self._healths.get(channel.name)
        if health is None:
            health = self._inherited(channel) or ChannelHealth(channel.name, channel.upstream, self._breaker)
            self._healths[channel.name] = health
            self._channels[channel.name] = channel
            upstream = self._upstreams.get(channel.upstream)
            if upstream is None:
                key_ids = keys.get(channel.upstream)
                upstream = Upstream(channel.upstream, self._inherited_ring(channel.upstream, key_ids))
                self._upstreams[channel.upstream] = upstream
            upstream.members.append(Candidate(channel, health, upstream.keys))
        else:
            first = self._channels[channel.name]
            if (first.upstream, first.model) != (channel.upstream, channel.model):
                raise ValueError(f"channel name {channel.name!r} is used for two different upstream models")
        self._models_of.setdefault(channel.name, []).append(model)
        return Candidate(channel, health, self._upstreams[channel.upstream].keys)

    def _inherited(self, channel: Channel) -> ChannelHealth | None:
        old = self._inherit
        if old is None or channel.upstream in self._changed:
            return None
        first = old._channels.get(channel.name)
        if first is None or (first.upstream, first.model) != (channel.upstream, channel.model):
            return None
        return old._healths[channel.name]

    def _inherited_ring(self, upstream: str, key_ids: Sequence[str] | None) -> KeyRing | None:
        old = self._inherit.upstream_ring(upstream) if self._inherit is not None else None
        if old is not None and upstream not in self._changed and key_ids and len(old) == len(key_ids):
            return old
        return KeyRing(key_ids) if key_ids else None

    def upstream_ring(self, upstream: str) -> KeyRing | None:
        found = self._upstreams.get(upstream)
        return found.keys if found is not None else None

    def channel(self, name: str) -> Channel | None:
        """The channel of this name (as GET /admin/channels reports it), or None."""
        return self._channels.get(name)

    # -- the request path --------------------------------------------------------------------

    def plan(self, public_model: str, body: bytes | None = None) -> Attempts:
        """Start one request's attempts; an unknown model yields a 404 NoChannel on `next()`.

        `body` (the request's bytes, by reference) lets the breakers count a request's retries once.
        """
        return Attempts(self._ctx, self._routes.get(public_model), self._now(), body)

    def __contains__(self, public_model: str) -> bool:
        return public_model in self._routes

    @property
    def models(self) -> list[str]:
        """The public model names this router serves."""
        return list(self._routes)

    # -- active health checks ----------------------------------------------------------------

    def due_probes(self) -> list[Probe]:
        """The probes due now, each claimed (counted in flight) until `record_probe` reports it.

        Half-open channels whose cooldown ended get their trial here instead of on a user's
        request; refused keys and channels are retried every `disabled_probe_s`; idle closed
        channels every `idle_probe_s`, when set.
        """
        now = self._now()
        policy = self._breaker
        due: list[Probe] = []
        for upstream in self._upstreams.values():
            ring = upstream.keys
            if ring is not None and policy.disabled_probe_s is not None:
                for key in ring.due_probes(now, policy.disabled_probe_s):
                    due.append(self._claim(upstream.members[0], key, PROBE_DISABLED_KEY, now))
            for member in upstream.members:
                health = member.health
                state = health.state
                if state is DISABLED:
                    if (
                        policy.disabled_probe_s is not None
                        and (ring is None or ring.available)
                        and now - max(health.last_probe, health.changed_at) >= policy.disabled_probe_s
                    ):
                        due.append(self._claim(member, ring.next() if ring else None, PROBE_DISABLED, now))
                elif state is not CLOSED:
                    if health.usable(now):
                        due.append(self._claim(member, ring.next() if ring else None, PROBE_HALF_OPEN, now))
                elif (
                    policy.idle_probe_s is not None
                    and health.in_flight == 0
                    and health.hold_until <= now  # an upstream's Retry-After binds probes too
                    and now - max(health.last_used, health.last_probe) >= policy.idle_probe_s
                ):
                    due.append(self._claim(member, ring.next() if ring else None, PROBE_IDLE, now))
        return due

    def _claim(self, member: Candidate, key: str | None, reason: str, now: float) -> Probe:
        member.health.start(now)
        member.health.last_probe = now
        return Probe(member.channel, key, reason)

    def record_probe(
        self,
        probe: Probe,
        outcome: Outcome | None = None,
        latency: float | None = None,
        *,
        claimed: bool = True,
    ) -> None:
        """Report a probe: None (or a success outcome) restores and closes; a failure counts like one.

        Probes do not count as requests in the status counters, but they do move the breaker.
        `claimed=False` for a probe that `due_probes` did not hand out (a person's test).
        """
        now = self._now()
        health = self._healths.get(probe.channel.name)
        upstream = self._upstreams.get(probe.channel.upstream)
        if health is None or upstream is None:  # the channel left the routes while it was probed
            return
        if claimed:
            health.release()
        if outcome is None or outcome.kind == SUCCESS:
            ring = upstream.keys
            if ring is not None and probe.key is not None and ring.restore(probe.key, now):
                upstream.sync(now)
            if health.state is DISABLED and (ring is None or ring.available):
                health.restore(now)
            health.succeeded(now, latency, count=False)
            return
        member = Candidate(self._channels[probe.channel.name], health, upstream.keys)
        apply_outcome(member, upstream, probe.key, outcome, now, self._policy, count=False)

    # -- a person's hand ---------------------------------------------------------------------

    def reset_channel(self, name: str) -> None:
        """Put a channel back in service now, whatever its breaker or disabled state. KeyError if unknown.

        If every key of its upstream was refused, they are all restored too: a channel with no
        key to send cannot be in service.
        """
        now = self._now()
        health = self._healths[name]
        health.restore(now)
        upstream = self._upstreams[health.upstream]
        if upstream.keys is not None and not upstream.keys.available:
            upstream.keys.restore_all(now)
            upstream.sync(now)

    def reset_keys(self, upstream: str, index: int | None = None) -> None:
        """Re-enable one refused key (by position) or all of them, and the channels that needed them."""
        now = self._now()
        target = self._upstreams[upstream]
        ring = target.keys
        if ring is None:
            raise KeyError(f"upstream {upstream!r} has no key ring")
        if index is None:
            ring.restore_all(now)
        else:
            ring.restore_index(index, now)
        target.sync(now)

    # -- plain data: status, readiness, sharing ----------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """Everything /readyz and `sluicegate channels status --json` show; plain data, no secrets."""
        channels = []
        for name, health in self._healths.items():
            record = health.snapshot()
            record["model"] = self._channels[name].model
            record["public_models"] = list(self._models_of[name])
            channels.append(record)
        upstreams = {
            name: {"keys": up.keys.snapshot() if up.keys is not None else []}
            for name, up in self._upstreams.items()
        }
        return {"channels": channels, "upstreams": upstreams, "unavailable_models": self.unavailable_models()}

    def unavailable_models(self) -> list[str]:
        """Public models none of whose channels can take a request now (all open or disabled)."""
        now = self._now()
        out = []
        for model, route in self._routes.items():
            if all(_down(c.health, now) for c in route.candidates):
                out.append(model)
        return out

    def take_changes(self) -> list[dict[str, Any]]:
        """State changes since the last call, as records for `HealthStore.publish`."""
        records: list[dict[str, Any]] = []
        for health in self._healths.values():
            if health.dirty:
                health.dirty = False
                record = health.snapshot()
                record["kind"] = "channel"
                records.append(record)
        for name, upstream in self._upstreams.items():
            ring = upstream.keys
            if ring is not None and ring.take_dirty():
                for key in ring.snapshot():
                    key["kind"] = "key"
                    key["upstream"] = name
                    records.append(key)
        return records

    def merge(self, records: Iterable[Mapping[str, Any]]) -> int:
        """Adopt other processes' records (from `HealthStore.fetch`); returns how many changed something."""
        now = self._now()
        changed = 0
        keys_by_upstream: dict[str, list[Mapping[str, Any]]] = {}
        for record in records:
            kind = record.get("kind")
            if kind == "key":
                keys_by_upstream.setdefault(str(record.get("upstream")), []).append(record)
            elif kind == "channel":
                health = self._healths.get(str(record.get("name")))
                if health is not None and health.adopt(record):
                    changed += 1
        for name, key_records in keys_by_upstream.items():
            upstream = self._upstreams.get(name)
            if upstream is not None and upstream.keys is not None and upstream.keys.adopt(key_records):
                upstream.sync(now)
                changed += 1
        return changed


def _down(health: ChannelHealth, now: float) -> bool:
    state = health.state
    return state is DISABLED or (state is OPEN and now < health.cooldown_until)
