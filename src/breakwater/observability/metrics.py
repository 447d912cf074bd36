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
from collections.abc import Iterable, Iterator
from typing import cast

from prometheus_client import CollectorRegistry, generate_latest, multiprocess
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric, SummaryMetricFamily
from prometheus_client.registry import Collector

from breakwater.engine.access.directory import Directory
from breakwater.engine.cache.stage import CacheStage
from breakwater.engine.cache.store import CacheStats
from breakwater.engine.calls.gateway import Gateway
from breakwater.engine.calls.stats import DeploymentStats
from breakwater.engine.drift.stage import DriftStage
from breakwater.engine.limits.quota import Quota
from breakwater.engine.prompts.stage import PromptsStage
from breakwater.engine.router.stage import RouterStage
from breakwater.engine.shadow.stage import ShadowStage
from breakwater.observability.ledger.writer import LedgerWriter
from breakwater.observability.request_metrics import RequestMetrics

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


class ShadowCollector(Collector):
    """Shadow traffic per route: mirrored, dropped (queue full), failed candidate calls, queued."""

    def __init__(self, stage: ShadowStage) -> None:
        self._stage = stage

    def collect(self) -> Iterator[Metric]:
        stage, counts = self._stage, self._stage.counts
        family = CounterMetricFamily(
            "breakwater_shadow_requests",
            "Requests of a shadowed route by what happened to their mirror: mirrored (queued for the "
            "candidate), dropped (its queue was full, or the gateway stopped), failed (the candidate call failed).",
            labels=["route", "result"],
        )
        for result, by_route in (("mirrored", counts.mirrored), ("dropped", counts.dropped), ("failed", counts.failed)):
            for route, n in sorted(by_route.items()):
                family.add_metric([route, result], n)
        yield family
        queued = GaugeMetricFamily(
            "breakwater_shadow_queue_depth", "Mirrors waiting for a candidate call.", labels=["route"]
        )
        for route in sorted(stage.plans):
            queued.add_metric([route], stage.queued(route))
        yield queued


class DriftCollector(Collector):
    """The drift watch per route: the rolling eval score, its baseline, samples by what became of them."""

    def __init__(self, stage: DriftStage) -> None:
        self._stage = stage

    def collect(self) -> Iterator[Metric]:
        stage, counts = self._stage, self._stage.counts
        score = GaugeMetricFamily(
            "breakwater_eval_score",
            "Mean eval score of the route's graded samples over its drift window (this process's samples).",
            labels=["route"],
        )
        baseline = GaugeMetricFamily(
            "breakwater_eval_baseline_score",
            "Mean eval score over the baseline window just before the drift window.",
            labels=["route"],
        )
        in_window = GaugeMetricFamily(
            "breakwater_eval_window_samples", "Graded samples in each window.", labels=["route", "window"]
        )
        alerting = GaugeMetricFamily(
            "breakwater_eval_alerting", "1 while the route's quality_drop alert is active.", labels=["route"]
        )
        queued = GaugeMetricFamily("breakwater_eval_queue_depth", "Samples waiting to be graded.", labels=["route"])
        for route in sorted(stage.plans):
            reading = stage.reading(route)
            if reading.current is not None:
                score.add_metric([route], reading.current)
            if reading.baseline is not None:
                baseline.add_metric([route], reading.baseline)
            in_window.add_metric([route, "current"], reading.current_samples)
            in_window.add_metric([route, "baseline"], reading.baseline_samples)
            alerting.add_metric([route], 1.0 if stage.watches[route].alerting else 0.0)
            queued.add_metric([route], stage.queued(route))
        samples = CounterMetricFamily(
            "breakwater_eval_samples",
            "Sampled answers of a watched route by what became of them: scored, dropped (the queue was full, "
            "or the gateway stopped), failed (grading failed unexpectedly).",
            labels=["route", "result"],
        )
        for result, by_route in (("scored", counts.scored), ("dropped", counts.dropped), ("failed", counts.failed)):
            for route, n in sorted(by_route.items()):
                samples.add_metric([route, result], n)
        yield from (score, baseline, in_window, alerting, queued, samples)


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


class RouterCollector(Collector):
    """Branching routes: requests by the branch that took them, cascade escalations, learned-router failures."""

    def __init__(self, stage: RouterStage) -> None:
        self._stage = stage

    def collect(self) -> Iterator[Metric]:
        stage = self._stage
        chosen = CounterMetricFamily(
            "breakwater_route_branch",
            "Requests on branching routes, by the branch that took them.",
            labels=["route", "branch"],
        )
        for (route, branch), n in sorted(stage.chosen.items()):
            chosen.add_metric([route, branch], n)
        yield chosen
        yield CounterMetricFamily(
            "breakwater_cascade_escalations",
            "Cascade steps whose answer failed its checks (or whose call failed), so the next step was asked.",
            value=stage.counts.escalations,
        )
        yield CounterMetricFamily(
            "breakwater_router_learned_failures",
            "Learned-router scores that failed (the route's default branch was used).",
            value=stage.counts.learned_failures,
        )


class PromptsCollector(Collector):
    """The prompt registry: requests rendered, by prompt and version."""

    def __init__(self, stage: PromptsStage) -> None:
        self._stage = stage

    def collect(self) -> Iterator[Metric]:
        rendered = CounterMetricFamily(
            "breakwater_prompt_requests",
            "Requests given a prompt of the registry, by prompt and version.",
            labels=["prompt", "version"],
        )
        for (prompt, version), n in sorted(self._stage.rendered.items()):
            rendered.add_metric([prompt, str(version)], n)
        yield rendered


class CacheCollector(Collector):
    """The answer cache: lookups and their time, stores, entries kept out, and the store's size."""

    def __init__(self, stage: CacheStage) -> None:
        self._stage = stage

    def collect(self) -> Iterator[Metric]:
        counts, store = self._stage.counts, self._stage.store
        yield CounterMetricFamily("breakwater_cache_lookups", "Cache lookups made.", value=counts.lookups)
        yield SummaryMetricFamily(
            "breakwater_cache_lookup_seconds",
            "Time spent looking entries up (count and sum).",
            count_value=counts.lookups,
            sum_value=counts.lookup_s,
        )
        yield CounterMetricFamily("breakwater_cache_stores", "Answers stored.", value=counts.stores)
        yield CounterMetricFamily(
            "breakwater_cache_too_large", "Answers not stored: larger than max_entry_bytes.", value=counts.too_large
        )
        yield CounterMetricFamily(
            "breakwater_cache_corrupt",
            "Stored values that did not decode (deleted, served as misses).",
            value=counts.corrupt,
        )
        yield CounterMetricFamily(
            "breakwater_cache_unavailable",
            "Lookups and stores skipped because the store did not answer in time (Redis down or slow).",
            value=counts.unavailable,
        )
        yield CounterMetricFamily(
            "breakwater_cache_embed_failures",
            "Semantic lookups skipped because the embedder failed (cache.embedder: an embeddings route).",
            value=counts.embed_failures,
        )
        stats = cast("CacheStats | None", store if hasattr(store, "evictions") else None)
        if stats is not None:  # the memory store counts itself; Redis keeps its own figures
            labels = ["backend"]
            for name, doc, value, kind in (
                ("breakwater_cache_entries", "Entries held.", stats.entries, GaugeMetricFamily),
                ("breakwater_cache_bytes", "Bytes held, values and per-entry overhead.", stats.bytes, GaugeMetricFamily),
                ("breakwater_cache_evictions", "Entries evicted to stay within max_bytes.", stats.evictions,
                 CounterMetricFamily),
            ):  # fmt: skip
                family = kind(name, doc, labels=labels)
                family.add_metric([store.backend], value)
                yield family


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
        prompts: PromptsStage | None = None,
        routes: Iterable[str] | None = None,
        deployments: Iterable[str] | None = None,
        config: tuple[int | None, str] = (None, ""),
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
            prompts: the prompts stage (``None``: no prompts configured).
            routes, deployments: the new label sets of the request metrics, when they changed.
            config: the running configuration's stored version (``None``: from a file) and hash.
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
        if prompts is not None:
            bound.append(PromptsCollector(prompts))
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
