"""A canary's guards and ramp: ``routes.X.variants.guards`` and ``routes.X.variants.ramp``
(docs/safe-change.md#automatic-rollback)."""

from __future__ import annotations

import itertools

from pydantic import Field, field_validator

from breakwater.core.config.base import _Model


class Guards(_Model):
    """How much worse than its control a canary may be before its weight is set to 0.

    Each limit is compared by a sequential test (``engine/rollout/sequential.py``), so checking
    often does not trip on noise; ``None`` turns a guard off.
    """

    #: the canary's error rate (status >= 500, or a failed stream) may exceed the control's by this share
    max_error_rate_increase: float | None = Field(default=0.02, ge=0, le=1)
    #: the canary's latency (geometric mean) may be this many times the control's
    max_latency_ratio: float | None = Field(default=1.5, gt=1)
    #: the canary's cost per request may be this many times the control's
    max_cost_ratio: float | None = Field(default=None, gt=1)
    #: the canary's refusal rate may exceed the control's by this share
    max_refusal_rate_increase: float | None = Field(default=0.05, ge=0, le=1)
    #: the share of the canary's drift-graded answers that fail may exceed the control's by this
    #: share (needs ``drift`` on both arms' routes: docs/evals.md#eval-gated-rollout)
    max_eval_fail_increase: float | None = Field(default=None, ge=0, le=1)
    #: requests each side needs before any guard may trip
    min_requests: int = Field(default=100, ge=5)
    #: seconds between checks
    check_s: float = Field(default=30.0, ge=1)
    #: the requests looked at: those of the last this many seconds
    window_s: float = Field(default=3600.0, ge=60)
    #: the sequential test's error rate: a canary as good as its control is rolled back in at most
    #: this share of rollouts, however long it runs
    alpha: float = Field(default=0.05, gt=0, lt=0.5)


class EvalGate(_Model):
    """An eval suite a canary must pass before each ramp step (docs/evals.md#eval-gated-rollout).

    The suite runs against the canary's arm and the control's (their targets, with their pinned
    prompt versions; no cache); a canary under ``min_pass_rate``, or more than ``max_drop`` below
    the control's pass rate, is rolled back instead of advanced.
    """

    #: the suite file (``breakwater eval`` format), relative to the config file
    suite: str = Field(min_length=1)
    #: the canary's pass rate must reach this (``None``: no absolute floor)
    min_pass_rate: float | None = Field(default=None, ge=0, le=1)
    #: the canary's pass rate may be this much below the control's (0.05 = 5 points)
    max_drop: float = Field(default=0.0, ge=0, le=1)
    #: cases answered at once, per arm
    concurrency: int = Field(default=4, ge=1, le=64)


class Ramp(_Model):
    """A canary's weight advanced in steps while its guards hold."""

    #: the canary's share of the route's traffic at each step, in percent, increasing (the last
    #: is usually 100); the control gets the rest
    steps: list[float] = Field(min_length=1)
    #: seconds the guards must hold at a step (with ``min_requests`` on each side) before the next
    hold_s: float = Field(default=3600.0, ge=1)
    #: an eval suite the canary must also pass before each step
    gate: EvalGate | None = None

    @field_validator("steps")
    @classmethod
    def _increasing(cls, value: list[float]) -> list[float]:
        if any(not 0 < s <= 100 for s in value) or any(b <= a for a, b in itertools.pairwise(value)):
            raise ValueError("steps are percentages above 0 and up to 100, increasing")
        return value
