"""``/metrics`` for the routes' SLOs: the view ``SloMonitor.refresh`` left behind (docs/slo.md).

A scrape never queries the ledger: it reads the last background measurement, at most
``observability/slo.REFRESH_S`` old. Figures with no request in their window are left out
rather than shown as 0 (an idle route is not a perfect one).
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from breakwater.observability.slo_alerts import SloMonitor


class SloCollector(Collector):
    """The running configuration's SLO monitor."""

    def __init__(self, monitor: SloMonitor) -> None:
        self._monitor = monitor

    def collect(self) -> Iterator[Metric]:
        labels = ["route", "objective"]
        target = GaugeMetricFamily(
            "breakwater_slo_target", "The objective's target share of good requests.", labels=labels
        )
        current = GaugeMetricFamily(
            "breakwater_slo_current", "The share of good requests over the SLO window.", labels=labels
        )
        remaining = GaugeMetricFamily(
            "breakwater_slo_error_budget_remaining",
            "The share of the SLO window's error budget left (negative once overspent).",
            labels=labels,
        )
        burn = GaugeMetricFamily(
            "breakwater_slo_burn_rate",
            "The bad share over a window divided by the allowed bad share (1: the budget lasts exactly the SLO window).",
            labels=[*labels, "window"],
        )
        alerting = GaugeMetricFamily(
            "breakwater_slo_burn_alert_active",
            "1 while a burn-rate rule holds for the objective (docs/slo.md).",
            labels=[*labels, "rule"],
        )
        active = self._monitor.active
        for status in self._monitor.view:
            o = status.objective
            key = [o.route, o.name]
            target.add_metric(key, o.target)
            if status.current is not None:
                current.add_metric(key, status.current)
            if status.budget_remaining is not None:
                remaining.add_metric(key, status.budget_remaining)
            for window, rate in status.burn.items():
                if rate is not None:
                    burn.add_metric([*key, window], rate)
        for route, objective, rule in sorted(active):
            alerting.add_metric([route, objective, rule], 1)
        yield target
        yield current
        yield remaining
        yield burn
        yield alerting
