"""Retry decisions: which errors to retry, how long to wait, and a per-deployment retry budget.

The budget stops a struggling deployment from being hit by a retry storm: retries may be only a
share of its recent requests, with a small floor so a quiet deployment can still retry.
"""

from __future__ import annotations

from collections import deque

from breakwater.core.config import RetryPolicy
from breakwater.core.errors import UpstreamError
from breakwater.engine.ports import Clock, RandomSource

# 2**62 times any sane base delay is far above any max_delay; the clamp only avoids float overflow
_MAX_EXPONENT = 62


def backoff_delay(
    attempt: int,
    policy: RetryPolicy,
    rng: RandomSource,
    retry_after: float | None,
    remaining: float,
) -> float | None:
    """Seconds to wait before retry number ``attempt`` (1 = first retry), or None to give up.

    Full jitter: a uniform draw in [0, min(max_delay, base * 2^(attempt-1))], raised to
    ``retry_after`` when the upstream sent one. None when the wait would reach or pass the end of
    the request's time budget (``remaining`` seconds): sleeping until the deadline leaves no time
    for the attempt itself.
    """
    if attempt < 1:
        raise ValueError(f"attempt must be >= 1, got {attempt}")
    ceiling = min(policy.max_delay_s, policy.base_delay_s * 2.0 ** min(attempt - 1, _MAX_EXPONENT))
    delay = rng.random() * ceiling
    if retry_after is not None:
        delay = max(delay, retry_after)
    if delay >= remaining:
        return None
    return delay


def should_retry(error: BaseException) -> bool:
    """True only for upstream failures the error tree marks retryable (429, 5xx, 529, timeouts...)."""
    return isinstance(error, UpstreamError) and error.retryable


class RetryBudget:
    """Caps a deployment's retries to a share of its requests over a sliding window."""

    def __init__(self, policy: RetryPolicy, clock: Clock) -> None:
        self._policy = policy
        self._clock = clock
        # monotonic times of first attempts and of retries within the window, oldest first
        self._requests: deque[float] = deque()
        self._retries: deque[float] = deque()

    def record_request(self) -> None:
        """Count a first attempt (not a retry) to the deployment."""
        now = self._clock.monotonic()
        self._prune(now)
        self._requests.append(now)

    def try_spend(self) -> bool:
        """Take one retry from the budget if there is one left; False means do not retry."""
        now = self._clock.monotonic()
        self._prune(now)
        allowed = max(float(self._policy.budget_min_retries), self._policy.budget_ratio * len(self._requests))
        if len(self._retries) >= allowed:
            return False
        self._retries.append(now)
        return True

    def snapshot(self) -> dict[str, object]:
        """Requests and retries in the current window, for metrics."""
        self._prune(self._clock.monotonic())
        return {"window_requests": len(self._requests), "window_retries": len(self._retries)}

    def _prune(self, now: float) -> None:
        horizon = now - self._policy.budget_window_s
        for times in (self._requests, self._retries):
            while times and times[0] <= horizon:
                times.popleft()
