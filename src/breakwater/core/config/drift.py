"""A route's drift watch: a sampled share of its answered requests graded off the request path by
eval assertions, the rolling score compared with the window before it (docs/evals.md)."""

from __future__ import annotations

from typing import Any

from pydantic import Field, model_validator

from breakwater.core.config.base import _Model

#: how many windows the baseline may span (bounds the buckets a route keeps in memory)
MAX_BASELINE_WINDOWS = 720


class RouteDrift(_Model):
    """``routes.X.drift``.

    The assertions are eval assertions (``engine/evals/asserts.py``, the promptfoo-style subset of
    docs/evals.md). Here they are only required to be mappings; each one is read by the eval
    reader when the configuration is checked (``runtime/drifting.check_drift``, part of
    ``check-config``, ``serve`` and every reload), which reports a mistake with its path
    (``routes.X.drift.asserts[0].type``): the reader lives in the engine, above this layer.
    """

    #: the share of the route's answered requests graded (0.01 = 1%)
    share: float = Field(default=0.05, gt=0, le=1)
    #: the eval assertions every sampled answer is graded by
    asserts: list[dict[str, Any]] = Field(min_length=1)
    #: the sample passes when the assertions' weighted mean score reaches it (else: every one passes)
    threshold: float | None = Field(default=None, ge=0, le=1)
    #: the route that grades ``llm-rubric`` and ``factuality`` (another route of this config)
    judge: str | None = Field(default=None, min_length=1)
    #: the rolling window whose mean score is watched, in seconds
    window_s: float = Field(default=3600.0, ge=60, le=7 * 86400)
    #: the window just before it that the score is compared with, in seconds
    baseline_s: float = Field(default=86400.0, ge=60, le=30 * 86400)
    #: the relative drop that alerts: current < baseline * (1 - margin)
    margin: float = Field(default=0.05, gt=0, lt=1)
    #: graded samples needed in each window before the watch may alert
    min_samples: int = Field(default=20, ge=1, le=1_000_000)
    #: sampled answers waiting to be graded; beyond it a sample is dropped (counted)
    queue: int = Field(default=100, ge=1, le=100_000)
    #: samples graded at once, per process
    concurrency: int = Field(default=2, ge=1, le=256)

    @model_validator(mode="after")
    def _baseline_covers_the_window(self) -> RouteDrift:
        if self.baseline_s < self.window_s:
            raise ValueError("baseline_s must be at least window_s (a shorter baseline is noisier than the window)")
        if self.baseline_s > MAX_BASELINE_WINDOWS * self.window_s:
            raise ValueError(f"baseline_s must be at most {MAX_BASELINE_WINDOWS} times window_s")
        return self
