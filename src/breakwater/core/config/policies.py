"""How calls are made: timeouts, the retry policy and the circuit breaker.

Timeouts apply to a deployment or a whole route, the retry policy to a route, the breaker to a
deployment; the engine reads all three.
"""

from __future__ import annotations

from pydantic import Field

from breakwater.core.config.base import _Model


class Timeouts(_Model):
    """Seconds. ``None`` means no limit of that kind (the total limit always applies)."""

    connect: float = Field(default=10.0, gt=0)
    total: float = Field(default=600.0, gt=0)
    first_token: float | None = Field(default=None, gt=0)
    idle: float | None = Field(default=None, gt=0)


class RetryPolicy(_Model):
    """How a route retries retryable failures (429, 5xx, 529, timeouts, connection errors).

    Backoff is exponential with full jitter: a random delay in [0, min(max_delay, base * 2^n)],
    raised to the upstream's Retry-After when it sent one, and never past the request's deadline.
    """

    max_attempts: int = Field(default=3, ge=1, le=20)
    base_delay_s: float = Field(default=0.2, ge=0)
    max_delay_s: float = Field(default=5.0, ge=0)
    #: retries may be at most this share of a deployment's requests over the window (retry budget)
    budget_ratio: float = Field(default=0.2, ge=0, le=1)
    budget_window_s: float = Field(default=10.0, gt=0)
    #: retries always allowed per window, so a quiet deployment can still retry
    budget_min_retries: int = Field(default=3, ge=0)


class BreakerPolicy(_Model):
    """One circuit breaker per deployment: closed -> open -> half-open -> closed."""

    consecutive_failures: int = Field(default=5, ge=1)
    failure_rate: float = Field(default=0.5, gt=0, le=1)
    window_s: float = Field(default=30.0, gt=0)
    min_volume: int = Field(default=20, ge=1)
    cooldown_s: float = Field(default=30.0, gt=0)
    half_open_probes: int = Field(default=1, ge=1)
    #: a 429 takes the deployment out of rotation for its Retry-After (without counting a failure)
    cool_down_on_429: bool = True
