"""Routing: which upstream channel serves a request, failover before the first byte, and health.

Sans-IO: everything here is plain data and decisions; the server module does the HTTP. Start at
`Router` (router.py) and `Attempts` (attempts.py); docs/channels.md describes the configuration.
"""

from sluicegate.routing.attempts import Admit, Attempts, NoChannel
from sluicegate.routing.channel import Channel
from sluicegate.routing.health import CLOSED, DISABLED, HALF_OPEN, OPEN, BreakerPolicy, ChannelHealth
from sluicegate.routing.healthstore import HealthStore, InMemoryHealthStore, sync_health
from sluicegate.routing.keyring import KeyRing
from sluicegate.routing.retry import (
    CONNECT_FAILED,
    FIRST_BYTE_TIMED_OUT,
    STREAM_CUT,
    UNUSABLE_RESPONSE,
    Outcome,
    RetryPolicy,
    classify,
    over_limit,
    parse_retry_after,
    retry_after_from_headers,
)
from sluicegate.routing.router import Probe, Router
from sluicegate.routing.selection import STRATEGIES, Candidate, strategy_named

__all__ = [
    "CLOSED",
    "CONNECT_FAILED",
    "DISABLED",
    "FIRST_BYTE_TIMED_OUT",
    "HALF_OPEN",
    "OPEN",
    "STRATEGIES",
    "STREAM_CUT",
    "UNUSABLE_RESPONSE",
    "Admit",
    "Attempts",
    "BreakerPolicy",
    "Candidate",
    "Channel",
    "ChannelHealth",
    "HealthStore",
    "InMemoryHealthStore",
    "KeyRing",
    "NoChannel",
    "Outcome",
    "Probe",
    "RetryPolicy",
    "Router",
    "classify",
    "over_limit",
    "parse_retry_after",
    "retry_after_from_headers",
    "strategy_named",
    "sync_health",
]
