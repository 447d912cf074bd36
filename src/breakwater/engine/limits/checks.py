"""The terms of a limit check: what a request belongs to, what it asks for, what each counter
check is for, and what the client is told when a check admits or refuses it.

``engine/limits/quota.py`` does the admitting; this module holds its vocabulary and its replies, worded
like OpenAI's own: the ``x-ratelimit-*`` headers (reset times in Go's duration format, as
OpenAI writes them) and one error per kind of refusal.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

from breakwater.core.errors import (
    BreakwaterError,
    LimitExceeded,
    QuotaExceeded,
    RequestsLimitExceeded,
    TokensLimitExceeded,
)
from breakwater.core.limits import Budget, Limits, from_nano
from breakwater.engine.limits.counters import Check, Reading, Window

Kind = Literal["rpm", "tpm", "concurrent", "budget", "session_calls", "session_spend"]
Headers = list[tuple[bytes, bytes]]


@dataclass(frozen=True, slots=True)
class Scope:
    """One thing with limits that a request belongs to."""

    #: ``key`` | ``team`` | ``user`` | ``tag`` | ``route``
    kind: str
    #: its id in counter keys: key id, team name, user name, ``k=v``, route name
    subject: str
    #: how an error message names it: ``key bw-1a2b3c4d``, ``user 'alice'``
    label: str
    limits: Limits


@dataclass(frozen=True, slots=True)
class Demand:
    """What a request may consume, estimated before it is sent."""

    #: prompt tokens (estimated) plus the output it may ask for
    tokens: int
    #: its maximum cost in nano-dollars (0 when no price is known)
    cost_nano: int


@dataclass(frozen=True, slots=True)
class Sessions:
    """Per-session caps (``access.sessions``)."""

    max_calls: int | None = None
    max_spend_usd: Decimal | None = None
    idle_ttl_s: int = 86_400

    @property
    def active(self) -> bool:
        return self.max_calls is not None or self.max_spend_usd is not None


@dataclass(frozen=True, slots=True)
class BudgetAlert:
    """Spend in a period first crossed ``share`` of a budget."""

    scope: str
    subject: str
    label: str
    share: float
    spent_usd: Decimal
    budget_usd: Decimal
    period: str
    period_id: str
    at: float

    def message(self) -> str:
        return (
            f"{self.label} has spent ${self.spent_usd:.2f} of its ${self.budget_usd:.2f} {self.period} budget "
            f"({self.share:.0%} crossed)"
        )


@dataclass(frozen=True, slots=True)
class CheckMeta:
    """What a check is for: its kind, scope and, for spend checks, the budget and its counters."""

    kind: Kind
    scope: Scope | None
    budget: Budget | None = None
    #: the settled-spend counter of a budget (alerts, the admin view)
    spent_key: str | None = None
    period_id: str = ""
    period_end: float | None = None


def refusal(check: Check, meta: CheckMeta, reading: Reading, now: float) -> BreakwaterError:
    """The error for a refused check, worded like OpenAI's own rate-limit messages."""
    label = meta.scope.label if meta.scope is not None else f"session '{meta.period_id}'"
    if meta.kind in ("rpm", "tpm"):
        assert isinstance(check, Window)
        wait = max((reading.fits_at or check.slot + 1) - now, 1.0)
        unit = "requests" if meta.kind == "rpm" else "tokens"
        cls: type[LimitExceeded] = RequestsLimitExceeded if meta.kind == "rpm" else TokensLimitExceeded
        return cls(
            f"Rate limit reached for {label} on {unit} per min ({meta.kind.upper()}): Limit {check.limit}, "
            f"Used {reading.count}, Requested {check.amount}. Please try again in {go_duration(wait)}.",
            retry_after=wait,
        )
    if meta.kind == "concurrent":
        return LimitExceeded(
            f"Too many requests in flight for {label}: its limit is {check.limit} at once; retry when one ends",
            retry_after=1.0,
            code="concurrency_limit_exceeded",
        )
    if meta.kind == "session_calls":
        return QuotaExceeded(
            f"Session '{meta.period_id}' reached its limit of {check.limit} calls; start a new session "
            "or raise access.sessions.max_calls",
            code="session_limit_exceeded",
        )
    budget = meta.budget
    assert budget is not None
    if meta.kind == "session_spend":
        return QuotaExceeded(
            f"Session '{meta.period_id}' reached its spend limit of ${budget.usd}; start a new session "
            "or raise access.sessions.max_spend_usd",
            code="session_limit_exceeded",
        )
    resets = "" if meta.period_end is None else f"; it resets in {go_duration(meta.period_end - now)}"
    return QuotaExceeded(
        f"Budget exhausted for {label}: ${budget.usd} per {budget.period if budget.period != 'total' else 'all time'}"
        f" (${from_nano(reading.count):.2f} spent or reserved){resets}",
        retry_after=None if meta.period_end is None else meta.period_end - now,
        code="budget_exceeded",
    )


def rate_headers(
    checks: Sequence[Check], metas: Sequence[CheckMeta], readings: Sequence[Reading], now: float
) -> Headers:
    """OpenAI's ``x-ratelimit-*`` headers for the tightest request and token windows."""
    headers: Headers = []
    for kind, unit in (("rpm", b"requests"), ("tpm", b"tokens")):
        best: tuple[int, Window, Reading] | None = None
        for check, meta, reading in zip(checks, metas, readings, strict=True):
            if meta.kind == kind and isinstance(check, Window):
                remaining = max(check.limit - reading.count, 0)
                if best is None or remaining < best[0]:
                    best = (remaining, check, reading)
        if best is None:
            continue
        remaining, check, reading = best
        reset = 0.0 if reading.oldest is None else max(reading.oldest + check.buckets - now, 0.0)
        headers += [
            (b"x-ratelimit-limit-" + unit, str(check.limit).encode()),
            (b"x-ratelimit-remaining-" + unit, str(remaining).encode()),
            (b"x-ratelimit-reset-" + unit, go_duration(reset).encode()),
        ]
    return headers


def go_duration(seconds: float) -> str:
    """Go's duration format, as OpenAI writes its reset headers: ``20ms``, ``1.5s``, ``6m0s``, ``2h3m0s``."""
    if seconds < 1:
        return f"{round(seconds * 1000)}ms"
    if seconds < 60:
        return f"{seconds:.3f}".rstrip("0").rstrip(".") + "s"
    whole = int(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return (f"{hours}h" if hours else "") + f"{minutes}m{secs}s"
