"""The ``/metrics`` body: live state read when scraped, plus the per-request metrics.

The request path only bumps plain integers on each deployment's ``DeploymentStats``; the
collectors here turn them, the circuit breakers, the queues and the ledger writer into metric
families at scrape time, so they cost the request path nothing. Those live-state values are
per process: with several workers each scrape sees the worker that answered it (no ``pid``
label: it would churn series on every restart and still show one worker per scrape).

The per-request counters and histograms (``request_metrics.py``) are exact across workers: in
multiprocess mode (``PROMETHEUS_MULTIPROC_DIR`` set, as ``breakwater serve --workers N`` does)
every scrape sums them over all workers' files with prometheus-client's ``MultiProcessCollector``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from typing import Protocol

from prometheus_client import CollectorRegistry, generate_latest, multiprocess
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from breakwater.engine.access.directory import Directory
from breakwater.engine.cache.stage import CacheStage
from breakwater.engine.calls.gateway import Gateway
from breakwater.engine.calls.stats import DeploymentStats
from breakwater.engine.drift.stage import DriftStage
from breakwater.engine.limits.quota import Quota
from breakwater.engine.prompts.stage import PromptsStage
from breakwater.engine.router.stage import RouterStage
from breakwater.engine.shadow.stage import ShadowStage
from breakwater.observability.ledger.writer import LedgerWriter
from breakwater.observability.request_metrics import RequestMetrics
from breakwater.observability.retirement_metrics import RetirementCollector
from breakwater.observability.slo_alerts import SloMonitor
from breakwater.observability.slo_metrics import SloCollector
from breakwater.observability.stage_metrics import (
    CacheCollector,
    DriftCollector,
    PromptsCollector,
    RouterCollector,
    ShadowCollector,
)

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
    (
        "overflowed",
        "breakwater_deployment_overflowed",
        "Times the deployment was passed over for the next one because it was full (routes with overflow).",
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


class TokenCounts(Protocol):
    """An access-token source's counts (``infra/google_auth.AccessTokens``, for Vertex providers)."""

    provider: str
    refreshes: int
    failures: int


class TokensCollector(Collector):
    """Access-token refreshes per provider, by result: a failing refresh shows before requests fail."""

    def __init__(self, sources: Sequence[TokenCounts]) -> None:
        self._sources = sources

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily(
            "breakwater_token_refreshes",
            "Access-token refreshes of providers that use them (Vertex AI), by result (ok, failed).",
            labels=["provider", "result"],
        )
        for source in self._sources:
            family.add_metric([source.provider, "ok"], source.refreshes)
            family.add_metric([source.provider, "failed"], source.failures)
        yield family


class ConfigCollector(Collector):
    """Which configuration this process runs: its stored version and its hash."""

    def __init__(self, version: int | None, config_hash: str) -> None:
        self._version = version
        self._hash = config_hash

    def collect(self) -> Iterator[Metric]:
        version = GaugeMetricFamily(
            "breakwater_config_version",
            "The stored configuration version this process runs (0: a config file or the embedded default).",
        )
        version.add_metric([], self._version or 0)
        yield version
        info = GaugeMetricFamily(
            "breakwater_config_info", "The running configuration's hash (as /readyz shows it).", labels=["hash"]
        )
        info.add_metric([self._hash], 1)
        yield info


class LedgerCollector(Collector):
    """Health of the ledger writer: rows waiting, spooled, dropped, and how far behind it writes."""

    def __init__(self, writer: LedgerWriter) -> None:
        self._writer = writer

    def collect(self) -> Iterator[Metric]:
        w = self._writer
        yield GaugeMetricFamily(
            "breakwater_ledger_pending_rows", "Ledger rows in memory, not yet written nor spooled.", value=w.pending
        )
        yield GaugeMetricFamily(
            "breakwater_ledger_spool_rows", "Ledger rows in the disk spool, not yet replayed.", value=w.spooled_rows
        )
        yield CounterMetricFamily(
            "breakwater_ledger_dropped_rows",
            "Ledger rows lost: neither stored nor spooled (each is logged at ERROR).",
            value=w.dropped,
        )
        lag = GaugeMetricFamily(
            "breakwater_ledger_write_lag_seconds",
            "Age of the oldest row of the last batch the store accepted (absent before the first write).",
        )
        if w.last_write_lag_s is not None:
            lag.add_metric([], w.last_write_lag_s)
        yield lag


class LimitsCollector(Collector):
    """Keys, limits and budgets: refused keys and requests, the counter backend's health,
    settlements, alerts."""

    def __init__(self, quota: Quota, directory: Directory | None) -> None:
        self._quota = quota
        self._directory = directory

    def collect(self) -> Iterator[Metric]:
        if self._directory is not None:
            failures = CounterMetricFamily(
                "breakwater_auth_failures",
                "Requests refused at authentication, by reason (missing_api_key, invalid_api_key, key_revoked, ...).",
                labels=["reason"],
            )
            for reason, count in sorted(self._directory.refusals.items()):
                failures.add_metric([reason], count)
            yield failures
        q = self._quota
        refused = CounterMetricFamily(
            "breakwater_limit_refusals",
            "Requests refused by a limit or budget, by the scope that refused (key, team, user, tag, route, "
            "session) and the limit (rpm, tpm, concurrent, budget, session_calls, session_spend).",
            labels=["scope", "limit"],
        )
        for (scope, limit), count in sorted(q.refusals.items()):
            refused.add_metric([scope, limit], count)
        yield refused
        yield GaugeMetricFamily(
            "breakwater_limits_backend_up",
            "1 while the limit counters answer (memory always does); 0 while Redis is unreachable.",
            value=1.0 if q.healthy else 0.0,
        )
        yield CounterMetricFamily(
            "breakwater_limits_local_admissions",
            "Requests admitted on local counters because Redis was unreachable.",
            value=q.local_admissions,
        )
        yield CounterMetricFamily(
            "breakwater_limits_late_admissions_undone",
            "Admissions Redis made after their request had gone ahead without it; their reservations were given back.",
            value=q.late_admissions_undone,
        )
        yield GaugeMetricFamily(
            "breakwater_limits_settlements_pending",
            "Settlements (real usage in place of reservations) waiting to be applied, e.g. for Redis to return.",
            value=q.pending,
        )
        yield CounterMetricFamily(
            "breakwater_limits_settlements_dropped",
            "Settlements lost: too many waited while Redis was unreachable (each is logged at ERROR).",
            value=q.dropped,
        )
        yield CounterMetricFamily(
            "breakwater_budget_alerts", "Budget alerts fired by this process.", value=q.alerts_fired
        )


class Metrics:
    """The ``/metrics`` body for one process, and the request metrics its recorders feed.

    The request metrics live as long as the process (a reload must not reset counters); the
    live-state collectors follow the running configuration (``bind``).

    Args:
        routes: configured route names (the request metrics' route label set).
        deployments: configured deployment names.
        multiproc_dir: ``PROMETHEUS_MULTIPROC_DIR`` when several workers share the request metrics.
    """

    def __init__(self, routes: Iterable[str], deployments: Iterable[str], multiproc_dir: str | None = None) -> None:
        self.multiproc_dir = multiproc_dir
        self.registry = CollectorRegistry(auto_describe=False)
        if multiproc_dir is None:
            self.requests = RequestMetrics(routes, deployments, self.registry)
        else:
            # every worker writes the request metrics to the shared files; a scrape sums them all
            self.requests = RequestMetrics(routes, deployments, None)
            multiprocess.MultiProcessCollector(self.registry, path=multiproc_dir)  # type: ignore[no-untyped-call]
        self._bound: list[Collector] = []

    def bind(
        self,
        gateway: Gateway,
        ledger: LedgerWriter | None = None,
        *,
        quota: Quota | None = None,
        directory: Directory | None = None,
        cache: CacheStage | None = None,
        router: RouterStage | None = None,
        shadow: ShadowStage | None = None,
        drift: DriftStage | None = None,
        slo: SloMonitor | None = None,
        prompts: PromptsStage | None = None,
        routes: Iterable[str] | None = None,
        deployments: Iterable[str] | None = None,
        config: tuple[int | None, str] = (None, ""),
        tokens: Sequence[TokenCounts] = (),
        retirements: RetirementCollector | None = None,
    ) -> None:
        """Read live state from these (the running configuration's), instead of the previous ones.

        Args:
            gateway: breakers, load and attempt counters (per worker).
            ledger: the ledger writer, or ``None`` when the ledger is disabled (per worker).
            quota: limits and budgets (per worker).
            directory: the keys, for refused credentials (``None``: access control off).
            cache: the answer cache's stage (``None``: no route caches).
            router: the router stage (``None``: no route has branches).
            shadow: the shadow stage (``None``: no route mirrors traffic).
            drift: the drift stage (``None``: no route's answers are graded).
            slo: the SLO monitor's last view (``None``: no route has an ``slo``).
            prompts: the prompts stage (``None``: no prompts configured).
            routes, deployments: the new label sets of the request metrics, when they changed.
            config: the running configuration's stored version (``None``: from a file) and hash.
            tokens: the access-token sources (Vertex providers), for their refresh counts.
            retirements: the deployments whose model is being retired (``None``: none).
        """
        for collector in self._bound:
            self.registry.unregister(collector)
        bound: list[Collector] = [GatewayCollector(gateway), ConfigCollector(*config)]
        if ledger is not None:
            bound.append(LedgerCollector(ledger))
        if quota is not None:
            bound.append(LimitsCollector(quota, directory))
        if cache is not None:
            bound.append(CacheCollector(cache))
        if router is not None:
            bound.append(RouterCollector(router))
        if shadow is not None:
            bound.append(ShadowCollector(shadow))
        if drift is not None:
            bound.append(DriftCollector(drift))
        if slo is not None:
            bound.append(SloCollector(slo))
        if prompts is not None:
            bound.append(PromptsCollector(prompts))
        if tokens:
            bound.append(TokensCollector(tokens))
        if retirements is not None:
            bound.append(retirements)
        for collector in bound:
            self.registry.register(collector)
        self._bound = bound
        if routes is not None and deployments is not None:
            self.requests.relabel(routes, deployments)

    def render(self) -> bytes:
        return generate_latest(self.registry)

    def close(self) -> None:
        """At shutdown: drop this worker's live gauge files (its counters stay, still counted)."""
        if self.multiproc_dir is not None:
            multiprocess.mark_process_dead(os.getpid(), self.multiproc_dir)  # type: ignore[no-untyped-call]
