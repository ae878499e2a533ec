"""A failure talking to an upstream (pyreqwest's errors, a timeout) as the error a client should see.

Why apart from the client (server/upstream_client.py): the mapping decides what the router does next
(a connect error retries elsewhere at once, a cut answer may not) and what the client is told, never
naming the upstream's hosts or keys; hyper names the phase of a failure only in its cause chain.
"""

from __future__ import annotations

import asyncio

from pyreqwest import exceptions as rq

from sluicegate.config.model import Timeouts
from sluicegate.protocol.errors import GatewayError, UpstreamTimeout, UpstreamUnavailable


def map_error(exc: BaseException, timeouts: Timeouts, *, before_headers: bool) -> BaseException:
    """A network failure as the GatewayError a client should see (without upstream names or keys)."""
    if isinstance(exc, asyncio.CancelledError | GatewayError):
        return exc
    if isinstance(exc, rq.ConnectTimeoutError):  # only the connect timeout is reqwest's
        return UpstreamTimeout(
            f"Could not connect to the upstream within {timeouts.connect:g}s (connect timeout).",
            code="upstream_connect_timeout",
        )
    if isinstance(exc, rq.RequestTimeoutError):  # not set on the client; should one fire, say where
        return map_error(TimeoutError(), timeouts, before_headers=before_headers)
    if isinstance(exc, TimeoutError):
        return UpstreamTimeout(
            f"The upstream did not start answering within {timeouts.first_byte:g}s (first_byte timeout)."
            if before_headers
            else f"The upstream sent nothing for {timeouts.idle:g}s (idle timeout).",
            code="upstream_first_byte_timeout" if before_headers else "upstream_idle_timeout",
        )
    if isinstance(exc, rq.BuilderError):
        return exc  # the gateway's own request could not be built: its fault, not the upstream's
    if not isinstance(exc, rq.PyreqwestError):
        return exc
    if before_headers and _connecting(exc):
        return UpstreamUnavailable(
            "The upstream could not be reached (connection refused or unreachable).",
            code="upstream_connect_error",
        )
    if not before_headers or isinstance(exc, rq.NetworkError) or _causes_say(exc, _CLOSED):
        # Once the headers came, a body can only fail by its connection or its framing (cut short of
        # its Content-Length, a broken chunk), which aiohttp reported as a ClientPayloadError.
        return UpstreamUnavailable(
            "The upstream closed the connection before answering."
            if before_headers
            else "The upstream closed the connection mid-answer.",
            code="upstream_disconnected",
        )
    return UpstreamUnavailable("The upstream sent an invalid response.", code="bad_upstream_response")


_CONNECTING = ("client error (Connect)", "tcp connect error", "dns error")
_CLOSED = ("connection closed", "connection reset", "broken pipe", "end of file")


def _causes_say(exc: BaseException, phrases: tuple[str, ...]) -> bool:
    """Whether a pyreqwest error's cause chain (hyper's and the OS's messages) names one of `phrases`."""
    details = getattr(exc, "details", None) or {}
    for cause in details.get("causes") or ():
        message = cause.get("message", "") if isinstance(cause, dict) else ""
        if any(phrase in message for phrase in phrases):
            return True
    return False


def _connecting(exc: BaseException) -> bool:
    """Whether the failure happened while connecting (refused, unreachable, DNS, TLS handshake) rather
    than on a connection that then closed: hyper-util names the phase in the cause chain."""
    return isinstance(exc, rq.ConnectError) and _causes_say(exc, _CONNECTING)
