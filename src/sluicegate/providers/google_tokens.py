"""OAuth access tokens for Vertex AI from a service-account file, kept fresh off the hot path.

google-auth does the work (reading the key file, signing the JWT assertion, exchanging it at the
file's `token_uri`); its refresh is blocking HTTP, so it never runs on the event loop: one daemon
thread per Vertex upstream, started when the upstream is built (at serve start), fetches the first
token and refreshes each one `margin` seconds before it expires; building a request only reads the
current token (an attribute read). Only a request that arrives before the very first token waits
for it, and never on the event loop: it awaits a future that the thread resolves through
`loop.call_soon_threadsafe` (bounded by the upstream's connect timeout), so /healthz and every other
request keep being served meanwhile. A refresh that fails is retried with a short backoff while the
old token is still valid.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import threading
from collections.abc import Awaitable
from typing import Any

from sluicegate.protocol.errors import UpstreamUnavailable

log = logging.getLogger("sluicegate.vertex")

SCOPES = ("https://www.googleapis.com/auth/cloud-platform",)
REFRESH_MARGIN_S = 300.0  # refresh five minutes before expiry (tokens live an hour)
RETRY_S = 5.0


class GoogleTokens:
    """The current access token of one service account, refreshed by its own thread."""

    def __init__(self, credentials_file: str, margin_s: float = REFRESH_MARGIN_S) -> None:
        try:
            from google.auth.transport.requests import Request
            from google.oauth2 import service_account
        except ImportError:  # pragma: no cover - the optional extra is missing
            raise RuntimeError("preset vertex needs google-auth: pip install 'sluicegate[vertex]'") from None
        self._credentials: Any = service_account.Credentials.from_service_account_file(
            credentials_file, scopes=list(SCOPES)
        )
        self._request = Request()
        self._margin = margin_s
        self._token: str | None = None
        self._ready = threading.Event()
        self._stop = threading.Event()
        self.refreshes = 0
        self._start = threading.Lock()
        self._thread: threading.Thread | None = None
        # Requests on an event loop waiting for the first token (guarded by `_start`).
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []
        self.start()

    def start(self) -> None:
        """Start the refreshing thread (once; the constructor does)."""
        with self._start:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="vertex-token", daemon=True)
                self._thread.start()

    def current(self, wait_s: float = 0.0) -> str:
        """The token to send. On the event loop call it after `pending()`; a blocking caller (a test,
        a script) may wait up to `wait_s` for the very first token."""
        token = self._token
        if token is None and wait_s > 0 and self._ready.wait(wait_s):
            token = self._token
        if token is None:
            raise _not_yet()
        return token

    def pending(self, timeout_s: float) -> Awaitable[None] | None:
        """None once there is a token (the hot path: no await); before, an awaitable that resolves
        when the first token arrives, or raises UpstreamUnavailable after `timeout_s`."""
        return None if self._token is not None else self._first_token(timeout_s)

    async def _first_token(self, timeout_s: float) -> None:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        with self._start:
            if self._token is not None:
                return
            self._waiters.append((loop, future))
        try:
            await asyncio.wait_for(future, timeout_s)
        except TimeoutError:
            raise _not_yet() from None
        finally:
            with self._start:
                if (loop, future) in self._waiters:
                    self._waiters.remove((loop, future))

    def _wake_waiters(self) -> None:
        with self._start:
            waiters, self._waiters = self._waiters, []
        for loop, future in waiters:
            try:
                loop.call_soon_threadsafe(_resolve, future)
            except RuntimeError:  # that loop has closed: nobody is waiting there any more
                pass

    def close(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._credentials.refresh(self._request)
                with self._start:
                    self._token = self._credentials.token
                self.refreshes += 1
                self._ready.set()
                self._wake_waiters()
                wait = self._seconds_left() - self._margin
            except Exception as exc:  # any failure: log (no secret in it) and retry
                log.error("vertex: token refresh failed (%s); retrying", type(exc).__name__)
                wait = RETRY_S
            self._stop.wait(max(wait, 1.0))

    def _seconds_left(self) -> float:
        expiry = self._credentials.expiry  # naive UTC, as google-auth keeps it
        if expiry is None:
            return 3600.0
        now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        return (expiry - now).total_seconds()


def _not_yet() -> UpstreamUnavailable:
    return UpstreamUnavailable(
        "The gateway could not get an access token for Vertex AI yet.", code="upstream_auth_pending"
    )


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():  # a waiter that timed out has cancelled its future
        future.set_result(None)
