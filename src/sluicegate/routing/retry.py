"""What an upstream failure means: is it worth another channel, and whose fault is it.

Every failure the I/O shell sees (a refused connection, a silent upstream, an HTTP error status)
is turned into one `Outcome` here, once, so that the router, the breaker and the logs all agree
on what happened. The verdicts follow one rule: retry what another channel could plausibly serve
(the upstream or our credentials were at fault), never what any upstream would refuse the same
way (the client's request was at fault), and never anything once bytes have reached the client.
"""

from __future__ import annotations

import calendar
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC
from email.utils import parsedate_to_datetime

# Outcome kinds. Plain strings so they serialise as-is into status JSON and logs.
SUCCESS = "success"
CONNECT_ERROR = "connect_error"  # could not connect, or the connection broke before any byte
TIMEOUT_FIRST_BYTE = "timeout_first_byte"  # connected, but no response before the timeout
RATE_LIMITED = "rate_limited"  # 429 without a balance hint
SERVER_ERROR = "server_error"  # 5xx, and 408 (the upstream gave up on itself)
AUTH_ERROR = "auth_error"  # 401/403 from the upstream: our provider key is refused
BALANCE_ERROR = "balance_error"  # 402, or a body saying the account is out of balance/quota
CLIENT_ERROR = "client_error"  # 400/404/413/422 and other 4xx: the request itself is wrong
CUT_MID_STREAM = "cut_mid_stream"  # failed after bytes reached the client: never retried
BAD_RESPONSE = "bad_response"  # unusable answer (unexpected status, unparseable body)
OVER_LIMIT = "over_limit"  # the gateway's own limiter declined the channel: no upstream saw the request

# Another channel may well succeed where this one failed.
RETRYABLE_KINDS = frozenset(
    {
        CONNECT_ERROR,
        TIMEOUT_FIRST_BYTE,
        RATE_LIMITED,
        SERVER_ERROR,
        AUTH_ERROR,
        BALANCE_ERROR,
        BAD_RESPONSE,
        OVER_LIMIT,
    }
)
# Evidence that the channel itself is unhealthy: these count towards opening its breaker.
# Rate limits are not ill health (the upstream is fine, just busy: Retry-After handles them),
# and credential errors disable the key instead.
BREAKER_KINDS = frozenset({CONNECT_ERROR, TIMEOUT_FIRST_BYTE, SERVER_ERROR, CUT_MID_STREAM, BAD_RESPONSE})
# Failures that may be the request's own doing (a shape the upstream cannot serve answers 500, or its
# stream breaks): the breaker counts one request's retries once (see health.ChannelHealth.failed).
# Connect errors and first-byte timeouts are about the channel whatever the request.
REQUEST_SHAPED_KINDS = frozenset({SERVER_ERROR, BAD_RESPONSE, CUT_MID_STREAM})
# The gateway's credentials are refused: disable the key until a person or a probe restores it.
KEY_KINDS = frozenset({AUTH_ERROR, BALANCE_ERROR})

# Phrases upstreams use for "the account is out of money/quota", whatever status they pick:
# OpenAI sends 429 insufficient_quota, DeepSeek 402, Anthropic a 400 "credit balance is too low",
# Qwen (DashScope) "Arrearage". Matched lower-case in the first few KiB of the body only.
_BALANCE_PHRASES = (
    b"insufficient_quota",
    b"insufficient quota",
    b"insufficient balance",
    b"insufficient_balance",
    b"insufficient_user_quota",
    b"exceeded your current quota",
    b"credit balance is too low",
    b"billing_hard_limit",
    b"arrearage",
)
_BODY_SCAN_BYTES = 4096


@dataclass(frozen=True, slots=True)
class Outcome:
    """One attempt's failure (or success), classified once for every consumer.

    `retry_after` is in seconds from now, already parsed and never negative; `hint` is one of a
    fixed set of phrases we matched in the body (never body text, so it is safe to log).
    """

    kind: str
    status: int | None = None
    retry_after: float | None = None
    hint: str | None = None

    @property
    def retryable(self) -> bool:
        """Whether another attempt (normally on another channel) could succeed."""
        return self.kind in RETRYABLE_KINDS

    @property
    def label(self) -> str:
        """A short, secret-free description for status pages: kind plus status, if any."""
        return self.kind if self.status is None else f"{self.kind}:{self.status}"


# Outcomes the shell reports without an HTTP response; shared so the error path allocates nothing.
CONNECT_FAILED = Outcome(CONNECT_ERROR)
FIRST_BYTE_TIMED_OUT = Outcome(TIMEOUT_FIRST_BYTE)
STREAM_CUT = Outcome(CUT_MID_STREAM)
UNUSABLE_RESPONSE = Outcome(BAD_RESPONSE)
DECLINED = Outcome(OVER_LIMIT)


def over_limit(retry_after: float | None = None) -> Outcome:
    """The outcome for a channel the gateway's own limiter refused after `next()` handed it out.

    Another channel is tried; this one rests for `retry_after` seconds if given (the limiter knows
    when it frees up), and its health and counters are untouched: no upstream was involved.
    """
    return DECLINED if retry_after is None else Outcome(OVER_LIMIT, None, retry_after)


def parse_retry_after(value: str, now_epoch: float) -> float | None:
    """Seconds to wait from a Retry-After value: delta-seconds or an HTTP date (RFC 9110 10.2.3).

    Returns None for a value we cannot read, so a garbled header never blocks a channel; a date
    in the past means "now" (0.0). Fractional seconds are accepted because some upstreams send them.
    """
    text = value.strip()
    if not text:
        return None
    if text[0].isdigit() or text[0] == ".":
        try:
            seconds = float(text)
        except ValueError:
            return None
        return seconds if math.isfinite(seconds) and seconds >= 0 else None
    try:
        when = parsedate_to_datetime(text)
        if when.tzinfo is None:  # "-0000": HTTP dates are always GMT anyway
            when = when.replace(tzinfo=UTC)
        epoch = when.timestamp()
    except (TypeError, ValueError, IndexError, OverflowError):
        try:  # the obsolete asctime form, which RFC 9110 still asks recipients to accept
            epoch = float(calendar.timegm(time.strptime(text, "%a %b %d %H:%M:%S %Y")))
        except ValueError:
            return None
    return max(0.0, epoch - now_epoch)


def _header(headers: Mapping[str, str], name: str) -> str | None:
    # pyreqwest's HeaderMap is case-insensitive; a plain dict from tests or other clients may not be.
    value = headers.get(name)
    if value is None:
        value = headers.get(name.title())
    return value


def retry_after_from_headers(headers: Mapping[str, str] | None, now_epoch: float) -> float | None:
    """The wait an upstream asked for: OpenAI's `retry-after-ms` first (finer), then `Retry-After`."""
    if not headers:
        return None
    millis = _header(headers, "retry-after-ms")
    if millis is not None:
        seconds = parse_retry_after(millis, now_epoch)
        if seconds is not None:
            return seconds / 1000.0
    value = _header(headers, "retry-after")
    return None if value is None else parse_retry_after(value, now_epoch)


# Google answers a wrong or revoked API key with 400 INVALID_ARGUMENT, reason API_KEY_INVALID: a
# credential error (the gateway's), not the client's bad request.
_AUTH_PHRASES = (b"api_key_invalid", b"api key not valid", b"api key expired")


def _auth_hint(body: bytes | None) -> bool:
    if not body:
        return False
    sample = body[:_BODY_SCAN_BYTES].lower()
    return any(phrase in sample for phrase in _AUTH_PHRASES)


def _balance_hint(body: bytes | None) -> str | None:
    if not body:
        return None
    sample = body[:_BODY_SCAN_BYTES].lower()
    for phrase in _BALANCE_PHRASES:
        if phrase in sample:
            return phrase.decode()
    return None


def classify(
    status: int,
    body: bytes | None = None,
    headers: Mapping[str, str] | None = None,
    now_epoch: float = 0.0,
) -> Outcome:
    """Classify an upstream HTTP response; `now_epoch` (wall clock) is only used for HTTP-date Retry-After.

    Call it with the status, the (small) error body and the headers of a response that arrived
    before anything was sent to the client. 400/404/413/422 are the client's fault and are never
    retried, except that a body announcing an exhausted balance makes any status a balance error
    (Anthropic reports it as a 400): that is our credential's fault, not the client's.
    """
    if 200 <= status < 300:
        return Outcome(SUCCESS, status)
    if status >= 400:
        hint = _balance_hint(body)
        if status == 402 or (hint is not None and status < 500):
            return Outcome(BALANCE_ERROR, status, None, hint)
        if status == 401 or status == 403 or (status == 400 and _auth_hint(body)):
            return Outcome(AUTH_ERROR, status)
        if status == 429:
            return Outcome(RATE_LIMITED, status, retry_after_from_headers(headers, now_epoch))
        if status == 408 or status >= 500:
            return Outcome(SERVER_ERROR, status, retry_after_from_headers(headers, now_epoch))
        return Outcome(CLIENT_ERROR, status)
    return Outcome(BAD_RESPONSE, status)  # 1xx/3xx: an upstream API should never answer so


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How hard one request tries before giving up (routing.max_attempts, routing.deadline_s).

    `rate_limit_hold_s` is how long a channel rests after a 429 that named no Retry-After;
    `max_retry_after_s` caps what an upstream may ask for, so a wrong header cannot park a
    channel for a day.
    """

    max_attempts: int = 3
    deadline_s: float = 60.0
    rate_limit_hold_s: float = 1.0
    max_retry_after_s: float = 600.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("routing.max_attempts must be at least 1")
        if not self.deadline_s > 0:
            raise ValueError("routing.deadline_s must be positive")
        if self.rate_limit_hold_s < 0 or self.max_retry_after_s < 0:
            raise ValueError("rate_limit_hold_s and max_retry_after_s must not be negative")

    def hold_for(self, outcome: Outcome) -> float | None:
        """Seconds the channel must rest after this outcome, or None when it need not."""
        if outcome.retry_after is not None:
            return min(outcome.retry_after, self.max_retry_after_s)
        if outcome.kind == RATE_LIMITED:
            return self.rate_limit_hold_s
        return None
