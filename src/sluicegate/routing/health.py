"""The live state of one channel: circuit breaker, Retry-After hold, load and latency.

A breaker keeps a failing upstream from eating every request's latency budget: after enough
failures it opens (the channel is skipped), stays open for a cooldown that doubles on each
consecutive trip (capped), then goes half-open and lets exactly one request, or one active probe,
test the water. Success closes it; failure reopens it with the longer cooldown.

The breaker judges the channel, not one request. A failure that may be the request's own doing (an
HTTP 5xx, an unusable answer, a stream that broke: llama.cpp answers 500 to a `json_schema` it cannot
do) carries a fingerprint of the request body, and the same fingerprint failing again within the
window (the client's SDK retrying the same body) counts once: one client's retries cannot open the
breaker for everyone. Connect errors and first-byte timeouts carry none and always count: they say
nothing about the request.

Separate from the breaker, a Retry-After hold rests a channel that said it is busy, without
counting against its health, and `disabled` is for credentials the upstream refused, which no
amount of waiting cures: only a person or a successful probe ends it.

All times come from the router's injected clock; nothing here reads a clock itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

CLOSED = "closed"
OPEN = "open"
HALF_OPEN = "half_open"
DISABLED = "disabled"
_STATES = {s: s for s in (CLOSED, OPEN, HALF_OPEN, DISABLED)}  # to intern states read from a store


@dataclass(frozen=True, slots=True)
class BreakerPolicy:
    """When a channel is declared unhealthy and how it is brought back (routing.breaker).

    It opens after `failures` consecutive failures, or when at least `min_requests` requests in
    the current `window_s` saw a `failure_rate` share fail (so a channel failing one request in
    two trips even though successes keep resetting the consecutive count). `probe_timeout_s`
    bounds how long a half-open probe that never reported back can block the next one.
    Active probes: `idle_probe_s` probes closed channels nobody used for that long (None: off);
    `disabled_probe_s` retries refused credentials that often (None: only a person restores them).
    `remembered_failures` bounds how many recent failing request fingerprints a channel keeps to
    recognise a retry of the same request (within `window_s`).
    """

    failures: int = 5
    cooldown_s: float = 10.0
    max_cooldown_s: float = 300.0
    window_s: float = 60.0
    failure_rate: float = 0.5
    min_requests: int = 20
    probe_timeout_s: float = 60.0
    latency_alpha: float = 0.2
    idle_probe_s: float | None = None
    disabled_probe_s: float | None = 300.0
    remembered_failures: int = 64

    def __post_init__(self) -> None:
        if self.failures < 1:
            raise ValueError("breaker.failures must be at least 1")
        if not 0 < self.cooldown_s <= self.max_cooldown_s:
            raise ValueError("breaker needs 0 < cooldown_s <= max_cooldown_s")
        if not 0 < self.failure_rate <= 1:
            raise ValueError("breaker.failure_rate must be in (0, 1]")
        if not 0 < self.latency_alpha <= 1:
            raise ValueError("breaker.latency_alpha must be in (0, 1]")

    def cooldown(self, trips: int) -> float:
        """Open time after the `trips`-th consecutive trip: cooldown_s doubling, capped."""
        if trips > 30:  # 2**30 * any sane cooldown is past any cap; avoid huge floats
            return self.max_cooldown_s
        return min(self.cooldown_s * (1 << max(0, trips - 1)), self.max_cooldown_s)


class ChannelHealth:
    """Mutable health of one channel, shared by every route that names it.

    The router calls `usable` for every candidate on the hot path, so its common case (closed,
    no hold) is two attribute reads and no clock.
    """

    __slots__ = (
        "changed_at",
        "consecutive_failures",
        "cooldown_until",
        "dirty",
        "ewma_latency",
        "failures",
        "hold_until",
        "in_flight",
        "last_error",
        "last_probe",
        "last_used",
        "name",
        "policy",
        "probing_since",
        "recent_failures",
        "requests",
        "state",
        "trips",
        "upstream",
        "window_failures",
        "window_requests",
        "window_start",
    )

    def __init__(self, name: str, upstream: str, policy: BreakerPolicy) -> None:
        self.name = name
        self.upstream = upstream
        self.policy = policy
        self.state = CLOSED
        self.consecutive_failures = 0
        self.trips = 0
        self.cooldown_until = 0.0
        self.hold_until = 0.0  # Retry-After: not before this time, whatever the breaker says
        self.probing_since = 0.0  # a half-open trial request is out since then
        self.in_flight = 0
        self.requests = 0
        self.failures = 0
        self.window_start = 0.0
        self.window_requests = 0
        self.window_failures = 0
        self.ewma_latency: float | None = None
        # Fingerprints of recently failed requests -> when; made on the first fingerprinted failure.
        self.recent_failures: dict[int, float] | None = None
        self.last_error: str | None = None
        self.last_used = 0.0
        self.last_probe = 0.0
        self.changed_at = 0.0
        self.dirty = False

    # -- selection ---------------------------------------------------------------------------

    def usable(self, now: float) -> bool:
        """Whether a request may be sent now; moves open to half-open once the cooldown is over."""
        if self.state is CLOSED and not self.hold_until:
            return True
        return self._usable_slow(now)

    def _usable_slow(self, now: float) -> bool:
        if self.hold_until:
            if now < self.hold_until:
                return False
            self.hold_until = 0.0
        state = self.state
        if state is CLOSED:
            return True
        if state is DISABLED:
            return False
        if state is OPEN:
            if now < self.cooldown_until:
                return False
            self.state = HALF_OPEN  # derived from time alone: every process derives it too
            self.probing_since = 0.0
        return not self.probing_since or now - self.probing_since >= self.policy.probe_timeout_s

    def available_at(self, now: float) -> float | None:
        """When the channel may next be usable, for a Retry-After; None if only a person can tell."""
        if self.state is DISABLED:
            return None
        at = self.hold_until
        if self.state is OPEN:
            at = max(at, self.cooldown_until)
        elif self.state is HALF_OPEN and self.probing_since:
            at = max(at, self.probing_since + self.policy.probe_timeout_s)
        return max(at, now)

    def start(self, now: float) -> None:
        """A request goes out; if half-open, it is the one trial request."""
        self.in_flight += 1
        self.last_used = now
        if self.state is HALF_OPEN:
            self.probing_since = now

    # -- outcomes ----------------------------------------------------------------------------

    def release(self) -> None:
        """A request started with `start` is over, however it ended."""
        if self.in_flight > 0:
            self.in_flight -= 1
        if self.state is HALF_OPEN:
            self.probing_since = 0.0

    def request_succeeded(self, at: float, latency: float | None) -> None:
        """`release` plus the counting half of `succeeded`: the hot path's end of a healthy request.

        `at` may be the request's start rather than its end: it only places the request in a
        failure-rate window, and saving a clock read per request is worth that imprecision. The
        caller follows with `trial_succeeded(now)` when the channel is not closed.
        """
        if self.in_flight > 0:
            self.in_flight -= 1
        self.consecutive_failures = 0
        if latency is not None:
            ewma = self.ewma_latency
            self.ewma_latency = (
                latency if ewma is None else ewma + self.policy.latency_alpha * (latency - ewma)
            )
        self.requests += 1
        if at - self.window_start >= self.policy.window_s:
            self.window_start = at
            self.window_requests = 1
            self.window_failures = 0
        else:
            self.window_requests += 1

    def trial_succeeded(self, now: float) -> None:
        """After `request_succeeded` on a channel that is not closed: a half-open trial closes it."""
        if self.state is HALF_OPEN:
            self.probing_since = 0.0
            self._set_state(CLOSED, now)
            self.trips = 0
            self.cooldown_until = 0.0

    def succeeded(self, now: float, latency: float | None, count: bool = True) -> None:
        """Record a success: resets the failure run and closes a half-open breaker."""
        self.consecutive_failures = 0
        if latency is not None:
            ewma = self.ewma_latency
            self.ewma_latency = (
                latency if ewma is None else ewma + self.policy.latency_alpha * (latency - ewma)
            )
        if count:
            self.requests += 1
            self._count_window(now, failed=False)
        if self.state is HALF_OPEN:
            self._set_state(CLOSED, now)
            self.trips = 0
            self.cooldown_until = 0.0

    def failed(
        self, now: float, label: str, breaker: bool, count: bool = True, fingerprint: int | None = None
    ) -> bool:
        """Record a failure; `breaker` says whether it is evidence of ill health (see retry.BREAKER_KINDS).

        `fingerprint` identifies the request for failures that may be its own doing: a request that
        already failed here within the window is a retry, and says nothing new about the channel.
        Returns whether the failure was set aside as such a retry (see `confirm_failure`).
        """
        self.last_error = label
        if count:
            self.requests += 1
            self.failures += 1
        if breaker and fingerprint is not None and self._repeated(fingerprint, now):
            return True  # a half-open trial that repeats a known failure is released without a verdict
        self._count_failure(now, breaker, count)
        return False

    def confirm_failure(self, now: float) -> None:
        """A failure set aside as a retry of a failing request counts after all: the same request
        then succeeded on another channel, so it was this channel, not the request."""
        self._count_failure(now, True, True)

    def _count_failure(self, now: float, breaker: bool, count: bool) -> None:
        if not breaker:
            if count:
                self._count_window(now, failed=False)
            return
        self.consecutive_failures += 1
        if count:
            self._count_window(now, failed=True)
        if self.state is HALF_OPEN or (self.state is CLOSED and self._should_trip()):
            self._trip(now)

    def _repeated(self, fingerprint: int, now: float) -> bool:
        """Whether this request failed here within the window; remembers it either way."""
        recent = self.recent_failures
        if recent is None:
            recent = self.recent_failures = {}
        seen = recent.get(fingerprint)
        window = self.policy.window_s
        recent[fingerprint] = now
        if seen is not None and now - seen < window:
            return True
        if len(recent) > self.policy.remembered_failures:
            for old in [f for f, at in recent.items() if now - at >= window]:
                del recent[old]
            while len(recent) > self.policy.remembered_failures:
                del recent[next(iter(recent))]  # the oldest entry (dicts keep insertion order)
        return False

    def completed(self, now: float) -> None:
        """A request the upstream rightly refused (the client's fault): counts, but says nothing of health."""
        self.requests += 1
        self._count_window(now, failed=False)

    def hold(self, until: float, now: float, label: str | None) -> None:
        """Rest the channel until `until` (a Retry-After); never shortens a longer hold.

        `label` is the upstream error that asked for it; None when the hold is our own limiter's.
        """
        if label is not None:
            self.last_error = label
        if until > self.hold_until:
            # Not a breaker change, so `changed_at` stays: holds merge as a maximum, not by recency.
            self.hold_until = until
            self.dirty = True

    def disable(self, now: float, label: str) -> None:
        """Take the channel out until `restore`: its credentials were refused."""
        self.last_error = label
        if self.state is not DISABLED:
            self._set_state(DISABLED, now)

    def restore(self, now: float) -> None:
        """Back in service, with a clean slate: a person said so, or a probe proved it."""
        self._set_state(CLOSED, now)
        self.consecutive_failures = 0
        self.trips = 0
        self.cooldown_until = 0.0
        self.hold_until = 0.0
        self.probing_since = 0.0

    def _should_trip(self) -> bool:
        policy = self.policy
        if self.consecutive_failures >= policy.failures:
            return True
        n = self.window_requests
        return n >= policy.min_requests and self.window_failures >= policy.failure_rate * n

    def _trip(self, now: float) -> None:
        self.trips += 1
        self.cooldown_until = now + self.policy.cooldown(self.trips)
        self.probing_since = 0.0
        self._set_state(OPEN, now)

    def _count_window(self, now: float, failed: bool) -> None:
        if now - self.window_start >= self.policy.window_s:
            self.window_start = now
            self.window_requests = 0
            self.window_failures = 0
        self.window_requests += 1
        if failed:
            self.window_failures += 1

    def _set_state(self, state: str, now: float) -> None:
        self.state = state
        self.changed_at = now
        self.dirty = True

    # -- plain data --------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """Plain data for status pages and for the shared store (see `adopt`)."""
        return {
            "name": self.name,
            "upstream": self.upstream,
            "state": self.state,
            "consecutive_failures": self.consecutive_failures,
            "trips": self.trips,
            "cooldown_until": self.cooldown_until if self.state in (OPEN, HALF_OPEN) else None,
            "retry_after_until": self.hold_until or None,
            "last_error": self.last_error,
            "in_flight": self.in_flight,
            "ewma_latency_s": self.ewma_latency,
            "requests": self.requests,
            "failures": self.failures,
            "changed_at": self.changed_at,
        }

    def adopt(self, record: Mapping[str, Any]) -> bool:
        """Merge another process's view: the later breaker change wins, the longer hold wins.

        Counters, in-flight and latency stay local: they describe this process's traffic.
        Returns whether anything changed. An adopted change is not marked dirty, so it is not
        published back.
        """
        changed = False
        hold = record.get("retry_after_until") or 0.0
        if hold > self.hold_until:
            self.hold_until = float(hold)
            changed = True
        at = float(record.get("changed_at") or 0.0)
        state = _STATES.get(record.get("state", ""))
        if state is None or at <= self.changed_at:
            return changed
        self.state = state
        self.changed_at = at
        self.trips = int(record.get("trips") or 0)
        self.consecutive_failures = int(record.get("consecutive_failures") or 0)
        self.cooldown_until = float(record.get("cooldown_until") or 0.0)
        self.last_error = record.get("last_error", self.last_error)
        self.probing_since = 0.0
        return True
