"""Reading the expiry people type (`30d`, `12h`, `90m`, `2026-12-31`, `never`) as epoch seconds.

A pure function of the text and the current time, so the CLI, the admin API and tests agree on
what `--expires 30d` means.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime

_RELATIVE = re.compile(r"^(\d+)\s*([wdhm])$")
_UNIT_SECONDS = {"w": 7 * 86400, "d": 86400, "h": 3600, "m": 60}
NEVER = ("never", "none", "")


class InvalidExpiry(ValueError):
    """The expiry text is neither a duration, a date, a date-time nor `never`."""


def parse_expiry(text: str, now: float) -> float | None:
    """Epoch seconds at which a key expires, or None for `never`.

    Durations count from `now` (`30d`, `12h`, `90m`, `2w`); a date means 00:00 UTC that day; an
    ISO 8601 date-time without a zone is read as UTC. Times not after `now` are refused, since a
    key that is born expired is always a typo.
    """
    value = text.strip().lower()
    if value in NEVER:
        return None
    match = _RELATIVE.match(value)
    if match:
        amount = int(match.group(1))
        if amount == 0:
            raise InvalidExpiry(f"expiry {text!r} is zero; use a positive duration or 'never'")
        return now + amount * _UNIT_SECONDS[match.group(2)]
    try:
        if len(value) == 10:
            moment = datetime.combine(date.fromisoformat(value), datetime.min.time(), UTC)
        else:
            moment = datetime.fromisoformat(text.strip())
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=UTC)
    except ValueError:
        raise InvalidExpiry(
            f"invalid expiry {text!r}: use a duration (30d, 12h, 90m), a date (2026-12-31), "
            "an ISO date-time, or 'never'"
        ) from None
    expires_at = moment.timestamp()
    if expires_at <= now:
        raise InvalidExpiry(f"expiry {text!r} is in the past")
    return expires_at
