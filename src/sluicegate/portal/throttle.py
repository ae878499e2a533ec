"""Login throttling: too many failed sign-ins for one name, or from one address, in a window → refuse.

Pure and in memory, per worker process: with N workers an attacker gets at most N times the allowance
before every worker refuses, which still turns a password guess into hours per thousand tries. Shared
counting (Redis) is not worth its round trip here; docs/portal.md says so. A successful sign-in clears
the name's failures but not the address's, so knowing one password does not reset the count of
guesses made from that address at other names.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable

MAX_TRACKED = 100_000  # names + addresses remembered; beyond this the oldest are forgotten


class LoginThrottle:
    def __init__(
        self, max_failures: int, window_s: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.max_failures = max_failures
        self.window_s = window_s
        self._clock = clock
        self._failures: dict[str, deque[float]] = {}

    def _recent(self, subject: str, now: float) -> deque[float] | None:
        times = self._failures.get(subject)
        if times is None:
            return None
        while times and times[0] <= now - self.window_s:
            times.popleft()
        if not times:
            del self._failures[subject]
            return None
        return times

    def retry_after(self, *subjects: str) -> int:
        """Seconds until a sign-in for these subjects may be tried again; 0 when it may now."""
        now = self._clock()
        wait = 0.0
        for subject in subjects:
            times = self._recent(subject, now)
            if times is not None and len(times) >= self.max_failures:
                # Allowed again once enough of the counted failures have left the window.
                wait = max(wait, times[len(times) - self.max_failures] + self.window_s - now)
        return math.ceil(wait) if wait > 0 else 0

    def failed(self, *subjects: str) -> None:
        now = self._clock()
        for subject in subjects:
            times = self._recent(subject, now)
            if times is None:
                if len(self._failures) >= MAX_TRACKED:
                    self._failures.pop(next(iter(self._failures)))
                times = self._failures[subject] = deque(maxlen=self.max_failures)
            times.append(now)

    def succeeded(self, subject: str) -> None:
        self._failures.pop(subject, None)
