"""The batch runner's metrics (``engine/batches/runner.py``), read when ``/metrics`` is scraped.

Per process, like the other live-state collectors: each worker runs its own runner.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from breakwater.engine.batches.runner import BatchRunner


class BatchCollector(Collector):
    """Batches running, lines in flight, lines run by outcome, waits for interactive traffic,
    expired files swept."""

    def __init__(self, runner: BatchRunner) -> None:
        self._runner = runner

    def collect(self) -> Iterator[Metric]:
        runner = self._runner
        yield GaugeMetricFamily(
            "breakwater_batches_running", "Batches this process works on now.", value=runner.running
        )
        yield GaugeMetricFamily(
            "breakwater_batch_lines_in_flight", "Batch lines of this process in flight now.", value=runner.in_flight
        )
        lines = CounterMetricFamily(
            "breakwater_batch_lines",
            "Batch lines run: answered (ok), failed (an error status after the last attempt), tried again "
            "(retried), refused by the gateway's own limits and sent again (throttled).",
            labels=["outcome"],
        )
        for outcome, count in runner.counts.items():
            lines.add_metric([outcome], count)
        yield lines
        yield CounterMetricFamily(
            "breakwater_batch_yields",
            "Times a batch line waited because interactive traffic kept the gateway busy.",
            value=runner.yields,
        )
        yield CounterMetricFamily(
            "breakwater_batch_files_expired",
            "Expired batch files this process's sweeps deleted (another replica may delete the rest).",
            value=runner.swept,
        )
