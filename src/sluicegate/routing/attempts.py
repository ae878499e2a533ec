"""One request's walk over its channels: pick, report, fail over, and know when to stop.

The I/O shell drives it, one attempt at a time (no hedging):

    attempts = router.plan(public_model)
    while True:
        channel = attempts.next(admit)          # a Channel, or a NoChannel (falsy) saying why not
        if not channel:
            after a failed attempt with reason not_retryable / attempts_exhausted / deadline: relay
            the last upstream error response kept aside; otherwise answer channel.status with
            Retry-After: channel.retry_after when it is not None; stop
        send to channel.upstream as channel.model, with provider key `attempts.key`
        (None: the upstream has no key ring, use its configured key)
        connection error -> record_failure(CONNECT_FAILED); no first byte in time -> FIRST_BYTE_TIMED_OUT
        error status -> read the (small) body, record_failure(classify(status, body, headers, time.time()))
        an unusable 2xx (unparseable) -> record_failure(UNUSABLE_RESPONSE)
        first byte relayed to the client -> attempts.record_first_byte(ttfb)
        done -> attempts.record_success(latency); stop
        stream broke after that -> attempts.record_failure(STREAM_CUT); stop
        client went away -> attempts.record_cancelled(); stop

Every attempt started by `next` must end in exactly one record_success / record_failure /
record_cancelled, which keeps in-flight counts (least-busy) and half-open probes honest.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sluicegate.routing.channel import Channel
from sluicegate.routing.health import CLOSED, DISABLED, HALF_OPEN
from sluicegate.routing.keyring import KeyRing
from sluicegate.routing.retry import (
    AUTH_ERROR,
    BREAKER_KINDS,
    CLIENT_ERROR,
    CUT_MID_STREAM,
    KEY_KINDS,
    OVER_LIMIT,
    REQUEST_SHAPED_KINDS,
    SUCCESS,
    Outcome,
    RetryPolicy,
)
from sluicegate.routing.selection import Candidate, Strategy

Admit = Callable[[Channel], bool]

# NoChannel reasons
UNKNOWN_MODEL = "unknown_model"  # 404: no route for this public model
RATE_LIMITED = "rate_limited"  # 429: every channel is resting after a Retry-After, or over its limit
UNAVAILABLE = "unavailable"  # 503: every channel is open (breaker) or disabled
EXHAUSTED = "attempts_exhausted"  # 502: max_attempts used up; `last` says what the last one got
DEADLINE = "deadline"  # 504: deadline_s passed since plan()
NOT_RETRYABLE = "not_retryable"  # the last failure is the client's: relay `last` as it is
COMMITTED = "committed"  # bytes already reached the client (or the request is over): no retry


@dataclass(frozen=True, slots=True)
class NoChannel:
    """Why no channel is offered: the reason, the HTTP status to answer with, when to come back.

    Falsy, so `if not (channel := attempts.next()):` reads naturally. `retry_after` is in seconds
    (None when unknown, e.g. only a person can re-enable the credentials); `last` is the outcome
    of the previous attempt, which the shell may prefer to relay.
    """

    reason: str
    status: int
    retry_after: float | None = None
    last: Outcome | None = None

    def __bool__(self) -> bool:
        return False


class Upstream:
    """What channels of one upstream share: its provider keys, and so their fate on a refused key."""

    __slots__ = ("keys", "members", "name")

    def __init__(self, name: str, keys: KeyRing | None) -> None:
        self.name = name
        self.keys = keys
        self.members: list[Candidate] = []  # one per distinct channel name

    def key_refused(self, key: str | None, now: float, label: str) -> None:
        """An account-level refusal (401, 402, no balance): retire the key, or the whole upstream."""
        ring = self.keys
        if ring is not None and key is not None:
            ring.disable(key, label, now)
            if ring.available:
                return
        for member in self.members:
            member.health.disable(now, label)

    def sync(self, now: float) -> None:
        """Make channel states follow the key ring after keys changed (a probe, a reset, a merge)."""
        ring = self.keys
        if ring is None:
            return
        for member in self.members:
            health = member.health
            if ring.available and health.state is DISABLED:
                health.restore(now)
            elif not ring.available:
                health.disable(now, "no_usable_key")


class Route:
    """A public model's channels, grouped into tiers by priority (best first)."""

    __slots__ = ("candidates", "model", "single", "tiers")

    def __init__(self, model: str, candidates: Sequence[Candidate]) -> None:
        self.model = model
        self.candidates = tuple(candidates)
        priorities = sorted({c.channel.priority for c in self.candidates})
        self.tiers = tuple(tuple(c for c in self.candidates if c.channel.priority == p) for p in priorities)
        # The common case, one channel: next() takes a path with no list, no strategy, no draw.
        self.single = self.candidates[0] if len(self.candidates) == 1 else None


class RoutingContext:
    """What every Attempts of one router shares; made by the Router, read on the hot path."""

    __slots__ = ("now", "policy", "rng", "strategy", "upstreams")

    def __init__(
        self,
        now: Callable[[], float],
        rng: random.Random,
        strategy: Strategy,
        policy: RetryPolicy,
        upstreams: dict[str, Upstream],
    ) -> None:
        self.now = now
        self.rng = rng
        self.strategy = strategy
        self.policy = policy
        self.upstreams = upstreams


def apply_outcome(
    candidate: Candidate,
    upstream: Upstream,
    key: str | None,
    outcome: Outcome,
    now: float,
    policy: RetryPolicy,
    count: bool = True,
    fingerprint: int | None = None,
) -> bool:
    """Update a channel's health (and its upstream's keys) for one failed attempt or probe.

    `fingerprint` identifies the request (see `Attempts`); it matters only for request-shaped
    failures. Returns whether the failure was set aside as a retry of a request that failed there
    before (`ChannelHealth.failed`).
    """
    discounted = False
    health = candidate.health
    kind = outcome.kind
    if kind == OVER_LIMIT:  # our own limiter said no: nothing happened upstream
        hold = policy.hold_for(outcome)
        if hold is not None:
            health.hold(now + hold, now, None)
        return False
    if kind in BREAKER_KINDS:
        shaped = fingerprint if kind in REQUEST_SHAPED_KINDS else None
        discounted = health.failed(now, outcome.label, breaker=True, count=count, fingerprint=shaped)
    elif kind == CLIENT_ERROR or kind == SUCCESS:
        if count:
            health.completed(now)
    else:
        health.failed(now, outcome.label, breaker=False, count=count)
    if kind == AUTH_ERROR and outcome.status == 403:
        # Authenticated but not allowed *this*: usually one model or resource, not the account.
        health.disable(now, outcome.label)
    elif kind in KEY_KINDS:
        upstream.key_refused(key, now, outcome.label)
    hold = policy.hold_for(outcome)
    if hold is not None:
        health.hold(now + hold, now, outcome.label)
    return discounted


class Attempts:
    """The attempts of one request. Not thread-safe; one per request, used by one task."""

    __slots__ = (
        "_body",
        "_committed",
        "_count",
        "_ctx",
        "_current",
        "_discounted",
        "_route",
        "_started",
        "_tried",
        "_ttfb",
        "key",
        "last",
    )

    def __init__(
        self, ctx: RoutingContext, route: Route | None, started: float, body: bytes | None = None
    ) -> None:
        """`body` is the request's bytes, kept by reference and hashed only if an attempt fails in
        a way that may be the request's doing, so that its retries count once against a channel."""
        self._ctx = ctx
        self._body = body
        self._discounted: list[Candidate] | None = None  # failures set aside as a request's retries
        self._route = route
        self._started = started
        self._count = 0
        self._tried: list[Candidate] | None = None
        self._current: Candidate | None = None
        self._committed = False
        self._ttfb: float | None = None
        self.key: str | None = None  # provider key id for the current attempt; None: the upstream's own
        self.last: Outcome | None = None  # outcome of the previous failed attempt

    @property
    def in_progress(self) -> bool:
        """Whether an attempt was started by `next` and not yet recorded."""
        return self._current is not None

    @property
    def count(self) -> int:
        """Attempts started so far."""
        return self._count

    def next(self, admit: Admit | None = None) -> Channel | NoChannel:
        """The channel for the next attempt (and `self.key`), or why there is none.

        `admit(channel)` lets the limiter veto a channel that is over its own rpm/tpm; it is
        asked only about the channel about to be returned (and then about alternatives, if it
        says no), so it may reserve capacity when it says yes.
        """
        if self._current is not None:
            raise RuntimeError("record the current attempt's outcome before asking for another channel")
        route = self._route
        if route is None:
            return NoChannel(UNKNOWN_MODEL, 404)
        ctx = self._ctx
        if self._count:
            refusal = self._retry_refusal(ctx)
            if refusal is not None:
                return refusal
            now = ctx.now()
            if now - self._started >= ctx.policy.deadline_s:
                return NoChannel(DEADLINE, 504, None, self.last)
        else:
            now = self._started
        single = route.single
        if single is not None:
            # The common case, inlined: no list, no strategy, no random draw, no extra calls.
            health = single.health
            if (health.state is CLOSED and not health.hold_until) or health.usable(now):
                if admit is None or admit(single.channel):
                    self._count += 1
                    self._current = single
                    ring = single.keys
                    if ring is not None:
                        self.key = ring.next()
                    health.in_flight += 1
                    health.last_used = now
                    if health.state is HALF_OPEN:
                        health.probing_since = now
                    return single.channel
            return self._refusal(route, now, admit is not None)
        refused = False
        tried = self._tried
        # A half-open channel's trial should be the health keeper's probe, not a user's request (which
        # would wait out a hanging upstream's timeout): while any other channel is usable, use it; only
        # then consider half-open ones too. `usable()` is called first because it is what moves an open
        # channel to half-open.
        for skip_half_open in (True, False):
            for exclude in (tried, None) if tried else (None,):
                for tier in route.tiers:
                    pool = [
                        c
                        for c in tier
                        if (exclude is None or c not in exclude)
                        and c.health.usable(now)
                        and not (skip_half_open and c.health.state is HALF_OPEN)
                    ]
                    while pool:
                        pick = pool[0] if len(pool) == 1 else ctx.strategy(pool, ctx.rng)
                        if admit is None or admit(pick.channel):
                            return self._begin(pick, now)
                        refused = True
                        pool.remove(pick)
        return self._refusal(route, now, refused)

    def record_first_byte(self, ttfb: float) -> None:
        """Bytes reached the client: from here on nothing is retried. `ttfb` feeds the latency EWMA."""
        self._committed = True
        self._ttfb = ttfb

    def record_success(self, latency: float | None = None) -> None:
        """The attempt succeeded; latency is the time to first byte if one was recorded, else `latency`."""
        candidate = self._current
        if candidate is None:
            raise RuntimeError("no attempt in progress: call next() first, and record each attempt once")
        self._current = None
        self._committed = True
        ttfb = self._ttfb
        health = candidate.health
        health.request_succeeded(self._started, ttfb if ttfb is not None else latency)
        if health.state is not CLOSED:
            health.trial_succeeded(self._ctx.now())
        if self._discounted is not None:
            # The request that failed there as a "retry" worked here: those channels failed it.
            now = self._ctx.now()
            for failed in self._discounted:
                failed.health.confirm_failure(now)

    def record_failure(self, outcome: Outcome) -> bool:
        """The attempt failed; returns whether the request may go on to another attempt.

        False after bytes reached the client, for failures that are the client's fault, and
        when the attempt budget or the deadline is spent. `next()` gives the same verdict, with
        the reason and status to answer with.
        """
        candidate = self._take_current()
        ctx = self._ctx
        now = ctx.now()
        candidate.health.release()
        self.last = outcome
        # Only a failed attempt needs remembering (so the retry avoids it): success allocates nothing.
        if self._tried is None:
            self._tried = [candidate]
        else:
            self._tried.append(candidate)
        body = self._body
        discounted = apply_outcome(
            candidate,
            ctx.upstreams[candidate.channel.upstream],
            self.key,
            outcome,
            now,
            ctx.policy,
            fingerprint=hash(body) if body and outcome.kind in REQUEST_SHAPED_KINDS else None,
        )
        if discounted:
            if self._discounted is None:
                self._discounted = [candidate]
            else:
                self._discounted.append(candidate)
        if self._committed or outcome.kind == CUT_MID_STREAM:
            self._committed = True
            return False
        policy = ctx.policy
        return (
            outcome.retryable
            and self._count < policy.max_attempts
            and now - self._started < policy.deadline_s
        )

    def record_cancelled(self) -> None:
        """The client went away: free the slot, say nothing about the channel's health."""
        self._take_current().health.release()
        self._committed = True

    # -- internals ---------------------------------------------------------------------------

    def _begin(self, candidate: Candidate, now: float) -> Channel:
        self._count += 1
        self._current = candidate
        ring = candidate.keys
        self.key = ring.next() if ring is not None else None
        candidate.health.start(now)
        return candidate.channel

    def _take_current(self) -> Candidate:
        candidate = self._current
        if candidate is None:
            raise RuntimeError("no attempt in progress: call next() first, and record each attempt once")
        self._current = None
        return candidate

    def _retry_refusal(self, ctx: RoutingContext) -> NoChannel | None:
        last = self.last
        if self._committed:
            return NoChannel(COMMITTED, 502, None, last)
        if last is not None and not last.retryable:
            return NoChannel(NOT_RETRYABLE, last.status or 502, None, last)
        if self._count >= ctx.policy.max_attempts:
            return NoChannel(EXHAUSTED, 502, None, last)
        return None

    def _refusal(self, route: Route, now: float, refused: bool) -> NoChannel:
        """Nothing usable: 429 if the soonest way out is a Retry-After or a limit, else 503."""
        soonest: float | None = None
        held = False
        for candidate in route.candidates:
            health = candidate.health
            at = health.available_at(now)
            if at is None or at <= now:
                continue
            if soonest is None or at < soonest:
                soonest = at
                held = health.state is CLOSED  # closed yet not usable: resting after a Retry-After
        retry_after = None if soonest is None else soonest - now
        if refused or held:
            return NoChannel(RATE_LIMITED, 429, retry_after, self.last)
        return NoChannel(UNAVAILABLE, 503, retry_after, self.last)
