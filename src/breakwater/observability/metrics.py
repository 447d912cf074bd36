"""Prometheus metrics read from the gateway's live state when scraped.

The request path only bumps plain integers on each deployment's ``DeploymentStats``; this
collector turns them, the circuit breakers and the queues into metric families at scrape time,
so metrics cost the request path nothing. The values are per process: with several workers
each scrape sees the worker that answered it.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from breakwater.engine.gateway import Gateway
from breakwater.engine.stats import DeploymentStats

BREAKER_STATES = ("closed", "half_open", "open")
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

_COUNTERS = (
    ("attempts", "breakwater_upstream_attempts", "Upstream attempts sent to the deployment."),
    ("failures", "breakwater_upstream_failures", "Attempts that failed in a way that counts against the breaker."),
    ("retries", "breakwater_retries", "Attempts that came back to a deployment already tried (after a backoff)."),
    ("fallbacks", "breakwater_fallbacks", "Attempts served by a deployment other than the request's first choice."),
    (
        "skipped",
        "breakwater_deployment_skipped",
        "Times the deployment was passed over (breaker open or cooling, full).",
    ),
)


class GatewayCollector(Collector):
    """Breaker state, load and counters of every deployment the gateway has used."""

    def __init__(self, gateway: Gateway) -> None:
        self._gateway = gateway

    def collect(self) -> Iterator[Metric]:
        gw = self._gateway
        state = GaugeMetricFamily(
            "breakwater_breaker_state",
            "Circuit breaker state per deployment: 1 for the current state, 0 for the others.",
            labels=["deployment", "state"],
        )
        cooling = GaugeMetricFamily(
            "breakwater_breaker_cooling_seconds",
            "Seconds left before a deployment cooling down after a 429 is tried again.",
            labels=["deployment"],
        )
        for name, breaker in sorted(gw.breakers.items()):
            snap = breaker.snapshot()
            for s in BREAKER_STATES:
                state.add_metric([name, s], 1.0 if snap["state"] == s else 0.0)
            cooling.add_metric([name], float(snap["cooling_remaining_s"]))  # type: ignore[arg-type]
        yield state
        yield cooling

        stats = sorted(gw.stats.items())
        in_flight = GaugeMetricFamily(
            "breakwater_in_flight",
            "Attempts in flight to the deployment (streams until they end).",
            labels=["deployment"],
        )
        latency = GaugeMetricFamily(
            "breakwater_deployment_latency_seconds",
            "Moving average of recent successful attempts: whole answer (plain) or first events (stream).",
            labels=["deployment", "kind"],
        )
        for name, st in stats:
            in_flight.add_metric([name], st.in_flight)
            for kind, value in (("plain", st.latency_s), ("stream", st.ttft_s)):
                if value is not None:
                    latency.add_metric([name, kind], value)
        yield in_flight
        yield latency
        for field, metric, doc in _COUNTERS:
            family = CounterMetricFamily(metric, doc, labels=["deployment"])
            for name, st in stats:
                family.add_metric([name], _count(st, field))
            yield family

        queued = GaugeMetricFamily(
            "breakwater_queue_depth",
            "Requests waiting for a slot at a deployment's max_concurrency.",
            labels=["deployment"],
        )
        for name, limiter in sorted(gw.limiters.items()):
            queued.add_metric([name], limiter.queued)
        yield queued


def _count(stats: DeploymentStats, field: str) -> int:
    value: int = getattr(stats, field)
    return value


class Metrics:
    """The ``/metrics`` body for one gateway."""

    def __init__(self, gateway: Gateway) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(GatewayCollector(gateway))

    def render(self) -> bytes:
        return generate_latest(self.registry)
