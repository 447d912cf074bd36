"""Retry decisions: full-jitter backoff, which errors are retried, and the per-deployment retry budget."""

from __future__ import annotations

import pytest

from breakwater.core.config import RetryPolicy
from breakwater.core.errors import (
    AuthenticationFailed,
    ContentFiltered,
    ContextLengthExceeded,
    InvalidRequest,
    MalformedResponse,
    Overloaded,
    RateLimited,
    UpstreamAuthError,
    UpstreamBadRequest,
    UpstreamConnectionError,
    UpstreamError,
    UpstreamNotFound,
    UpstreamPermissionError,
    UpstreamServerError,
    UpstreamTimeout,
    classify_status,
)
from breakwater.engine.calls.retry import RetryBudget, backoff_delay, should_retry
from breakwater.infra.clock import ManualClock as FakeClock


class FixedRandom:
    def __init__(self, value: float) -> None:
        self.value = value

    def random(self) -> float:
        return self.value


POLICY = RetryPolicy(base_delay_s=0.5, max_delay_s=3.0)


def test_full_jitter_bounds() -> None:
    """The delay is the random draw times the capped exponential ceiling: 0 at draw 0, near the ceiling at draw ~1."""
    assert backoff_delay(1, POLICY, FixedRandom(0.0), None, 60) == 0.0
    assert backoff_delay(1, POLICY, FixedRandom(0.5), None, 60) == 0.25
    assert backoff_delay(2, POLICY, FixedRandom(0.999), None, 60) == pytest.approx(0.999)


def test_exponential_growth_capped_by_max_delay() -> None:
    """The ceiling doubles per attempt (0.5, 1, 2, ...) and stops at max_delay_s, even for huge attempt numbers."""
    ceilings = [backoff_delay(n, POLICY, FixedRandom(1.0), None, 60) for n in (1, 2, 3, 4, 5, 1000)]
    assert ceilings == [0.5, 1.0, 2.0, 3.0, 3.0, 3.0]


def test_retry_after_is_a_floor() -> None:
    """An upstream Retry-After raises the delay to at least that, but a longer jittered delay is kept."""
    assert backoff_delay(1, POLICY, FixedRandom(0.1), 2.0, 60) == 2.0
    assert backoff_delay(4, POLICY, FixedRandom(1.0), 0.5, 60) == 3.0


def test_none_when_the_wait_does_not_fit_the_budget() -> None:
    """backoff_delay returns None when the wait would reach the request's deadline, so the caller gives up."""
    assert backoff_delay(1, POLICY, FixedRandom(0.5), 5.0, 4.0) is None
    assert backoff_delay(3, POLICY, FixedRandom(1.0), None, 2.0) is None
    assert backoff_delay(3, POLICY, FixedRandom(1.0), None, 2.1) == 2.0


def test_attempt_must_be_positive() -> None:
    """Attempt numbers start at 1 (the first retry); 0 is a caller bug."""
    with pytest.raises(ValueError):
        backoff_delay(0, POLICY, FixedRandom(0.5), None, 60)


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (RateLimited("x", retry_after=1.0), True),
        (Overloaded("x"), True),
        (UpstreamServerError("x"), True),
        (UpstreamTimeout("x"), True),
        (UpstreamConnectionError("x"), True),
        (MalformedResponse("x"), True),
        (UpstreamBadRequest("x"), False),
        (ContextLengthExceeded("x"), False),
        (ContentFiltered("x"), False),
        (UpstreamAuthError("x"), False),
        (UpstreamPermissionError("x"), False),
        (UpstreamNotFound("x"), False),
        (UpstreamError("x"), False),
        (InvalidRequest("x"), False),
        (AuthenticationFailed("x"), False),
        (ValueError("x"), False),
    ],
)
def test_should_retry_matrix(error: BaseException, expected: bool) -> None:
    """Only upstream errors the tree marks retryable are retried; client errors and foreign exceptions never are."""
    assert should_retry(error) is expected


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (400, False),
        (401, False),
        (403, False),
        (404, False),
        (422, False),
        (408, True),
        (409, True),
        (429, True),
        (500, True),
        (503, True),
        (529, True),
    ],
)
def test_should_retry_by_upstream_status(status: int, expected: bool) -> None:
    """Classified upstream statuses retry for 408/409/429/5xx/529 and never for 400/401/403/404/422."""
    assert should_retry(classify_status(status, "boom", provider="p")) is expected


def test_budget_allows_min_retries_at_low_volume() -> None:
    """A quiet deployment may still retry budget_min_retries times per window."""
    budget = RetryBudget(RetryPolicy(budget_ratio=0.2, budget_min_retries=3), FakeClock())
    budget.record_request()
    assert [budget.try_spend() for _ in range(4)] == [True, True, True, False]


def test_budget_caps_at_ratio_under_high_volume() -> None:
    """Under load, retries are capped at budget_ratio of the requests in the window."""
    budget = RetryBudget(RetryPolicy(budget_ratio=0.2, budget_min_retries=3), FakeClock())
    for _ in range(100):
        budget.record_request()
    spent = sum(budget.try_spend() for _ in range(50))
    assert spent == 20


def test_budget_recovers_after_the_window() -> None:
    """Once budget_window_s has passed, old requests and retries fall out and the budget is available again."""
    clock = FakeClock()
    budget = RetryBudget(RetryPolicy(budget_window_s=10, budget_min_retries=2, budget_ratio=0.1), clock)
    budget.record_request()
    assert budget.try_spend()
    assert budget.try_spend()
    assert not budget.try_spend()
    clock.now += 9.9
    assert not budget.try_spend()
    clock.now += 0.1
    assert budget.try_spend()
    assert budget.snapshot() == {"window_requests": 0, "window_retries": 1}
