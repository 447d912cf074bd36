"""``/metrics`` for deployments whose model is being retired: days left, and a deprecated flag.

Read at scrape time from the injected clock, so the gauge counts down without a reload and an
alert on it (``breakwater_deployment_retirement_days < 30``) fires ahead of the date.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from breakwater.core.retirement import Retirement
from breakwater.engine.ports import Clock


class RetirementCollector(Collector):
    """The running configuration's retiring deployments (``core/retirement.py``)."""

    def __init__(self, retirements: Sequence[Retirement], clock: Clock) -> None:
        self._retirements = tuple(retirements)
        self._clock = clock

    def collect(self) -> Iterator[Metric]:
        now = self._clock.time()
        days = GaugeMetricFamily(
            "breakwater_deployment_retirement_days",
            "Days until the deployment's model is retired (its retires: date); negative once past.",
            labels=["deployment", "model"],
        )
        flag = GaugeMetricFamily(
            "breakwater_deployment_deprecated",
            "1 for a deployment whose model is being retired: a retires: date (source config) or "
            "the price list's deprecated mark (source price-list).",
            labels=["deployment", "model", "source"],
        )
        for retirement in self._retirements:
            left = retirement.days_left(now)
            if left is not None:
                days.add_metric([retirement.deployment, retirement.model], left)
            flag.add_metric([retirement.deployment, retirement.model, retirement.source], 1)
        yield days
        yield flag
