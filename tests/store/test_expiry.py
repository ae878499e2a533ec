"""Expiry text as people type it on the command line."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from sluicegate.store.expiry import InvalidExpiry, parse_expiry

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC).timestamp()


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30d", 30 * 86400), ("12h", 12 * 3600), ("90m", 90 * 60), ("2w", 14 * 86400), (" 7D ", 7 * 86400)],
)
def test_durations_count_from_now(text: str, seconds: int) -> None:
    assert parse_expiry(text, NOW) == NOW + seconds


def test_a_date_means_midnight_utc_that_day() -> None:
    assert parse_expiry("2026-12-31", NOW) == datetime(2026, 12, 31, tzinfo=UTC).timestamp()


def test_a_date_time_without_zone_is_utc() -> None:
    assert parse_expiry("2026-12-31T18:30:00", NOW) == datetime(2026, 12, 31, 18, 30, tzinfo=UTC).timestamp()


def test_a_date_time_with_a_zone_keeps_it() -> None:
    assert parse_expiry("2026-12-31T08:00:00+08:00", NOW) == datetime(2026, 12, 31, tzinfo=UTC).timestamp()


@pytest.mark.parametrize("text", ["never", "NEVER", "none"])
def test_never_means_no_expiry(text: str) -> None:
    assert parse_expiry(text, NOW) is None


@pytest.mark.parametrize("text", ["30x", "soon", "2026-13-01", "-5d", "0d"])
def test_unreadable_expiries_are_refused(text: str) -> None:
    with pytest.raises(InvalidExpiry):
        parse_expiry(text, NOW)


def test_an_expiry_in_the_past_is_refused() -> None:
    with pytest.raises(InvalidExpiry, match="in the past"):
        parse_expiry("2026-01-01", NOW)
