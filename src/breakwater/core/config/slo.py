"""A route's service-level objectives: what share of its requests must go well over a rolling
window, and so how many may go badly (the error budget; docs/slo.md)."""

from __future__ import annotations

from pydantic import Field, model_validator

from breakwater.core.config.base import _Model

#: the longest rolling window an objective may span (the ledger's retention must cover it)
MAX_WINDOW_S = 90 * 86400.0


class ThresholdObjective(_Model):
    """``latency`` / ``ttft``: the share of answered requests faster than ``threshold_ms``."""

    threshold_ms: float = Field(gt=0, le=3_600_000)
    #: e.g. 0.95: 95% of them under the threshold
    target: float = Field(gt=0, lt=1)


class RouteSlo(_Model):
    """``routes.X.slo``: at least one objective; each has its own error budget over ``window_s``."""

    #: the share of requests that did not fail for a gateway or upstream reason (0.999);
    #: requests refused for the client's own fault (4xx) are not counted (docs/slo.md)
    availability: float | None = Field(default=None, gt=0, lt=1)
    #: non-streamed answers: the share of total latency under ``threshold_ms``
    latency: ThresholdObjective | None = None
    #: streamed answers: the share whose first token came under ``threshold_ms``
    ttft: ThresholdObjective | None = None
    #: the largest share of checked answers that may be refusals (0.02); needs the refusal detector
    refusal_rate: float | None = Field(default=None, gt=0, lt=1)
    #: the rolling window the objectives (and their budgets) are measured over, in seconds (28 days)
    window_s: float = Field(default=28 * 86400.0, ge=86400, le=MAX_WINDOW_S)
    #: requests an alert's long window must hold before a burn-rate alert may fire
    min_requests: int = Field(default=10, ge=1, le=1_000_000)

    @model_validator(mode="after")
    def _some_objective(self) -> RouteSlo:
        if self.availability is None and self.latency is None and self.ttft is None and self.refusal_rate is None:
            raise ValueError("slo needs at least one objective: availability, latency, ttft or refusal_rate")
        return self
