"""A route's service-level objectives: what share of its requests must go well over a rolling
window, and so how many may go badly (the error budget; docs/slo.md)."""

from __future__ import annotations

from typing import Any

from pydantic import Field, model_validator

from breakwater.core.config.base import _Model
from breakwater.core.config.problems import Problem

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


def slo_problems(data: dict[str, Any]) -> list[Problem]:
    """Routes whose ``slo`` the ledger cannot measure: the ledger is off, or it keeps rows for less
    time than the SLO window (the budget would forget failures it should still count).

    Works on the raw mapping, like ``references.cross_check``, which calls it.
    """
    routes, ledger = data.get("routes"), data.get("ledger")
    if not isinstance(routes, dict):
        return []
    ledger = ledger if isinstance(ledger, dict) else {}
    enabled = ledger.get("enabled", True) is not False
    retention = ledger.get("retention_days", 30.0)
    problems = []
    for name, route in routes.items():
        slo = route.get("slo") if isinstance(route, dict) else None
        if not isinstance(slo, dict):
            continue
        window = slo.get("window_s", 28 * 86400.0)
        if not enabled:
            problems.append(
                Problem(f"routes.{name}.slo", "an slo is measured from the ledger: ledger.enabled is false")
            )
        elif isinstance(retention, int | float) and isinstance(window, int | float) and retention * 86400 < window:
            problems.append(
                Problem(
                    f"routes.{name}.slo.window_s",
                    f"the window ({window / 86400:g} days) is longer than ledger.retention_days ({retention:g}):"
                    " the budget would forget failures it should still count",
                )
            )
    return problems
