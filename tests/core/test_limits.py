"""Limits records and budget periods: JSON round trip, exact nano-dollars, UTC calendar periods."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from breakwater.core.limits import NO_LIMITS, Budget, Limits, from_nano, period_span, to_nano, to_nano_ceiling


def _ts(text: str) -> float:
    return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC).timestamp()


def test_limits_round_trip_through_json_exactly() -> None:
    """A budget's dollars survive the store's JSON as a string, with every digit."""
    limits = Limits(rpm=60, tpm=10_000, max_concurrent=4, budget=Budget(Decimal("12.345678901"), "week"))
    data = limits.to_json()
    assert data["budget"] == {"usd": "12.345678901", "period": "week"}
    assert Limits.from_json(data) == limits
    assert Limits.from_json({}) is NO_LIMITS and NO_LIMITS.empty and not limits.empty


def test_money_is_counted_in_whole_nano_dollars() -> None:
    """Costs round half up, reservations round up, and converting back is exact."""
    assert to_nano(Decimal("0.0000000015")) == 2 and to_nano(Decimal("0.0000000014")) == 1
    assert to_nano_ceiling(Decimal("0.0000000011")) == 2
    assert from_nano(to_nano(Decimal("3.25"))) == Decimal("3.25")
    assert Budget(Decimal("1")).cap_nano == 1_000_000_000


@pytest.mark.parametrize(
    ("period", "now", "expected_id", "start", "end"),
    [
        ("day", "2026-11-28T23:59:59", "d20261128", "2026-11-28T00:00:00", "2026-11-29T00:00:00"),
        ("week", "2026-11-28T12:00:00", "w202648", "2026-11-23T00:00:00", "2026-11-30T00:00:00"),  # Monday to Monday
        ("month", "2026-12-31T12:00:00", "m202612", "2026-12-01T00:00:00", "2027-01-01T00:00:00"),
        ("month", "2028-02-29T12:00:00", "m202802", "2028-02-01T00:00:00", "2028-03-01T00:00:00"),
    ],
)
def test_periods_are_utc_calendar_periods(period: str, now: str, expected_id: str, start: str, end: str) -> None:
    """Days start at midnight UTC, weeks on Monday, months on the 1st; each period has its own id."""
    span = period_span(period, _ts(now))  # type: ignore[arg-type]
    assert (span.id, span.start, span.end) == (expected_id, _ts(start), _ts(end))


def test_a_total_budget_never_resets() -> None:
    """``total`` is one period for ever."""
    assert period_span("total", _ts("2030-01-01T00:00:00")).end is None
