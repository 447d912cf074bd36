"""The request-path stages' live state as metric families, read at scrape time (``metrics.py``
binds them): the shadow stage's mirrors, the drift watch's scores, the router's choices, the
prompts rendered, the caches' entries and hits. Per process, like the other live-state metrics.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import cast

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric, SummaryMetricFamily
from prometheus_client.registry import Collector

from breakwater.engine.cache.stage import CacheStage
from breakwater.engine.cache.store import CacheStats
from breakwater.engine.drift.stage import DriftStage
from breakwater.engine.prompts.stage import PromptsStage
from breakwater.engine.router.stage import RouterStage
from breakwater.engine.shadow.stage import ShadowStage


class ShadowCollector(Collector):
    """Shadow traffic per route: mirrored, dropped (queue full), failed candidate calls, queued."""

    def __init__(self, stage: ShadowStage) -> None:
        self._stage = stage

    def collect(self) -> Iterator[Metric]:
        stage, counts = self._stage, self._stage.counts
        family = CounterMetricFamily(
            "breakwater_shadow_requests",
            "Requests of a shadowed route by what happened to their mirror: mirrored (queued for the "
            "candidate), dropped (its queue was full, or the gateway stopped), failed (the candidate call failed), "
            "shed (not mirrored: the route's error budget burns fast).",
            labels=["route", "result"],
        )
        results = (("mirrored", counts.mirrored), ("dropped", counts.dropped), ("failed", counts.failed))
        for result, by_route in (*results, ("shed", counts.shed)):
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
            "or the gateway stopped), failed (grading failed unexpectedly), shed (not graded: the route's error "
            "budget burns fast).",
            labels=["route", "result"],
        )
        results = (("scored", counts.scored), ("dropped", counts.dropped), ("failed", counts.failed))
        for result, by_route in (*results, ("shed", counts.shed)):
            for route, n in sorted(by_route.items()):
                samples.add_metric([route, result], n)
        yield from (score, baseline, in_window, alerting, queued, samples)


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
        stats = cast(CacheStats | None, store if hasattr(store, "evictions") else None)
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
