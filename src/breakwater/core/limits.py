"""What a caller may consume: request and token rates, concurrency, and spend over a period.

One ``Limits`` value describes every scope that can be limited (a virtual key, a team, a user,
a tag, a route), so one mechanism enforces them all (``engine/limits/quota.py``). Budgets count money
as whole nano-dollars (1e-9 USD) so that counters can be plain 64-bit integers in Redis and in
memory and still add up exactly (the smallest per-token price on any list is far above that).

Budget periods are calendar periods in UTC: a day starts at 00:00, a week on Monday 00:00, a
month on the 1st; ``total`` never resets.

Pure: time is passed in.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_HALF_UP, Decimal
from typing import Any, Literal

Period = Literal["day", "week", "month", "total"]
PERIODS: tuple[Period, ...] = ("day", "week", "month", "total")

#: nano-dollars per dollar
NANO = Decimal(1_000_000_000)


@dataclass(frozen=True, slots=True)
class Budget:
    """A spend cap in USD over a calendar period."""

    usd: Decimal
    period: Period = "month"

    @property
    def cap_nano(self) -> int:
        return to_nano(self.usd)


@dataclass(frozen=True, slots=True)
class Limits:
    """Caps for one scope; ``None`` means no cap of that kind."""

    #: requests per minute (a sliding 60-second window)
    rpm: int | None = None
    #: tokens (input + output) per minute: the estimate is reserved when a request starts and
    #: replaced by the real usage when it ends
    tpm: int | None = None
    #: requests in flight at once (a stream counts until it ends)
    max_concurrent: int | None = None
    budget: Budget | None = None

    @property
    def empty(self) -> bool:
        return self.rpm is None and self.tpm is None and self.max_concurrent is None and self.budget is None

    @property
    def counts_tokens(self) -> bool:
        """Admission reserves counted tokens (a tpm limit) or their cost (a budget)."""
        return self.tpm is not None or self.budget is not None

    def to_json(self) -> dict[str, Any]:
        """Plain JSON (the stores' column, the admin API); the budget's USD as a string, exact."""
        out: dict[str, Any] = {}
        for name in ("rpm", "tpm", "max_concurrent"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        if self.budget is not None:
            out["budget"] = {"usd": str(self.budget.usd), "period": self.budget.period}
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> Limits:
        """What ``to_json`` wrote (stores hold only validated values)."""
        if not data:
            return NO_LIMITS
        budget = data.get("budget")
        return cls(
            rpm=data.get("rpm"),
            tpm=data.get("tpm"),
            max_concurrent=data.get("max_concurrent"),
            budget=None if budget is None else Budget(Decimal(str(budget["usd"])), budget.get("period", "month")),
        )


NO_LIMITS = Limits()


def to_nano(usd: Decimal) -> int:
    """Whole nano-dollars, rounded half up (settled costs and caps)."""
    return int((usd * NANO).to_integral_value(ROUND_HALF_UP))


def to_nano_ceiling(usd: Decimal) -> int:
    """Whole nano-dollars, rounded up (reservations: never below the real figure)."""
    return int((usd * NANO).to_integral_value(ROUND_CEILING))


def from_nano(nano: int) -> Decimal:
    return Decimal(nano) / NANO


@dataclass(frozen=True, slots=True)
class PeriodSpan:
    """The current calendar period: ``id`` names it in counter keys (``m202611``)."""

    id: str
    start: float
    #: ``None`` for ``total``
    end: float | None


def period_span(period: Period, now: float) -> PeriodSpan:
    """The period of kind ``period`` that contains ``now`` (unix seconds, UTC calendar)."""
    if period == "total":
        return PeriodSpan("total", 0.0, None)
    today = dt.datetime.fromtimestamp(now, dt.UTC).date()
    if period == "day":
        first = today
        nxt = first + dt.timedelta(days=1)
        name = f"d{first:%Y%m%d}"
    elif period == "week":
        first = today - dt.timedelta(days=today.weekday())
        nxt = first + dt.timedelta(days=7)
        year, week, _ = first.isocalendar()
        name = f"w{year}{week:02d}"
    else:
        first = today.replace(day=1)
        nxt = (first + dt.timedelta(days=32)).replace(day=1)
        name = f"m{first:%Y%m}"
    return PeriodSpan(name, _midnight(first), _midnight(nxt))


def _midnight(day: dt.date) -> float:
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp()
