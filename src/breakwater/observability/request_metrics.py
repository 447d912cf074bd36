"""Per-request Prometheus metrics, fed one ``LedgerRow`` per finished request.

``RequestMetrics.observe`` runs on the request path (the recorder's sink), so it only looks up
labelled children it has cached by label tuple and bumps them: no label validation, no registry
lookup per request. Labels stay bounded: a route or deployment name that is not in the config
(a 404 for whatever model name the client sent) becomes ``other``; one made from a wildcard
route (``openai/gpt-4o`` under ``openai/*``) becomes the pattern. Users and tags are never labels.

With several worker processes (``PROMETHEUS_MULTIPROC_DIR`` set before ``prometheus_client`` is
imported), the values live in that directory's memory-mapped files and ``/metrics`` sums them
over every worker (``observability/metrics.py``); otherwise they live in a registry per app, so
many apps in one process (tests) never share a series.
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Histogram

from breakwater.observability.ledger.row import LedgerRow

OTHER = "other"
"""Label for a route or deployment name the config does not know."""

TOKEN_KINDS = ("input", "cached_input", "cache_write", "output", "reasoning")

#: parameter names that are labels of ``breakwater_dropped_params``; any other (a client's own
#: field, a content type) counts as ``other``, so a client cannot grow the series without bound
MODELLED_PARAMS = frozenset(
    {
        "max_tokens", "temperature", "top_p", "top_k", "stop", "seed", "n", "presence_penalty",
        "frequency_penalty", "logprobs", "top_logprobs", "tools", "tool_choice", "parallel_tool_calls",
        "response_format", "user", "cache_control",
    }
)  # fmt: skip

# LLM requests run from tens of milliseconds (a cache hit, an error) to minutes (long generations)
DURATION_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
TTFT_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 10.0, 30.0)
# the gateway's own share is sub-millisecond when healthy: the buckets resolve that range
#: feedback scores run from 0 to 1 (a 1-5 rating n maps to (n - 1) / 4: these edges)
FEEDBACK_BUCKETS = (0.0, 0.25, 0.5, 0.75, 1.0)
OVERHEAD_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)


class _Children:
    """The labelled children one (route, deployment) pair bumps on every request."""

    __slots__ = ("cost", "duration", "estimated", "overhead", "tokens", "ttft", "unpriced", "upstream")

    def __init__(self, m: RequestMetrics, route: str, deployment: str) -> None:
        self.duration = m.duration.labels(route)
        self.ttft = m.ttft.labels(route)
        self.upstream = m.upstream.labels(route)
        self.overhead = m.overhead.labels(route)
        self.tokens = tuple(m.tokens.labels(route, deployment, kind) for kind in TOKEN_KINDS)
        self.cost = m.cost.labels(route, deployment)
        self.estimated = m.usage_estimated.labels(route)
        self.unpriced = m.unpriced.labels(deployment) if deployment else None


class RequestMetrics:
    """Request counters and histograms of one app.

    Args:
        routes: configured route names; ``prefix/*`` patterns cover the routes made from them.
        deployments: configured deployment names.
        registry: where the metrics are registered; ``None`` in multiprocess mode, where the
            ``MultiProcessCollector`` reads them from the shared directory instead.
    """

    def __init__(self, routes: Iterable[str], deployments: Iterable[str], registry: CollectorRegistry | None) -> None:
        self.relabel(routes, deployments)
        self.requests = Counter(
            "breakwater_requests",
            "Finished requests by HTTP status (499: the client went away).",
            ["route", "deployment", "status"],
            registry=registry,
        )
        self.duration = Histogram(
            "breakwater_request_duration_seconds",
            "Whole request time, first byte in to last byte out.",
            ["route"],
            buckets=DURATION_BUCKETS,
            registry=registry,
        )
        self.ttft = Histogram(
            "breakwater_time_to_first_token_seconds",
            "Streams only: request start to the first event from upstream.",
            ["route"],
            buckets=TTFT_BUCKETS,
            registry=registry,
        )
        self.upstream = Histogram(
            "breakwater_upstream_duration_seconds",
            "Time spent in upstream calls, every attempt (a stream: to its last event).",
            ["route"],
            buckets=DURATION_BUCKETS,
            registry=registry,
        )
        self.overhead = Histogram(
            "breakwater_gateway_overhead_seconds",
            "Request time the gateway added: total minus upstream time, backoff and queue waits.",
            ["route"],
            buckets=OVERHEAD_BUCKETS,
            registry=registry,
        )
        self.tokens = Counter(
            "breakwater_tokens",
            "Tokens by kind (as reported upstream, or estimated; see breakwater_usage_estimated_total).",
            ["route", "deployment", "kind"],
            registry=registry,
        )
        self.cost = Counter(
            "breakwater_cost_usd",
            "Cost in US dollars at the deployment's price (unpriced requests add nothing).",
            ["route", "deployment"],
            registry=registry,
        )
        self.errors = Counter(
            "breakwater_errors", "Failed requests by error class.", ["route", "error_class"], registry=registry
        )
        self.finish_reasons = Counter(
            "breakwater_finish_reasons", "Answers by finish reason.", ["route", "reason"], registry=registry
        )
        self.usage_estimated = Counter(
            "breakwater_usage_estimated",
            "Requests whose token counts were estimated (upstream reported no usage).",
            ["route"],
            registry=registry,
        )
        self.unpriced = Counter(
            "breakwater_unpriced_requests",
            "Requests sent to a deployment whose price is unknown (no cost recorded).",
            ["deployment"],
            registry=registry,
        )
        self.dropped = Counter(
            "breakwater_dropped_params",
            "Request parameters dropped because the deployment could not honour them (other: fields the "
            "gateway does not model).",
            ["route", "param"],
            registry=registry,
        )
        self.dlp_findings = Counter(
            "breakwater_dlp_findings",
            "Personal data and secrets found in requests, by kind and the action taken (docs/guardrails.md).",
            ["kind", "action", "route"],
            registry=registry,
        )
        self.trimmed = Counter(
            "breakwater_trimmed_requests",
            "Requests whose oldest turns the history trimmer removed, by what replaced them: summary or nothing (drop).",
            ["route", "mode"],
            registry=registry,
        )
        self.trimmed_messages = Counter(
            "breakwater_trimmed_messages",
            "Messages the history trimmer removed from prompts.",
            ["route"],
            registry=registry,
        )
        self.trimmed_tokens = Counter(
            "breakwater_trimmed_tokens",
            "Estimated prompt tokens the history trimmer removed (before any summary was added).",
            ["route"],
            registry=registry,
        )
        self.cache_results = Counter(
            "breakwater_cache_requests",
            "Requests on caching routes by what the cache did: hit, stale, miss or bypass.",
            ["route", "result"],
            registry=registry,
        )
        self.feedback = Counter(
            "breakwater_feedback",
            "User feedback received on requests (POST /v1/feedback).",
            ["route"],
            registry=registry,
        )
        self.feedback_score = Histogram(
            "breakwater_feedback_score",
            "Scores of the feedback received, from 0 (bad) to 1 (good).",
            ["route"],
            buckets=FEEDBACK_BUCKETS,
            registry=registry,
        )
        self.variants = Counter(
            "breakwater_variant_requests",
            "Requests on routes with variants, by the variant (arm) that took them.",
            ["route", "variant"],
            registry=registry,
        )
        self.refusals = Counter(
            "breakwater_refusals",
            "Answers the refusal detector found to be refusals, by route and variant ('' without variants).",
            ["route", "variant"],
            registry=registry,
        )
        self.output_checks = Counter(
            "breakwater_output_checks",
            "Output-check findings by route, check (canary, verbatim, deny, dlp, structured) and action "
            "(blocked, flagged, stripped, redacted, retried, repaired).",
            ["route", "check", "action"],
            registry=registry,
        )
        self._output: dict[tuple[str, str], Counter] = {}
        self.injection_attempts = Counter(
            "breakwater_injection_attempts",
            "Requests whose user turns or tool results scored as prompt-injection attempts, by route, key "
            "(its id: bounded by the key store) and action taken (logged, flagged, blocked).",
            ["route", "key", "action"],
            registry=registry,
        )
        self._variants: dict[tuple[str, str], Counter] = {}
        self._refusals: dict[tuple[str, str], Counter] = {}
        self._pairs: dict[tuple[str, str], _Children] = {}
        self._cache: dict[tuple[str, str], Counter] = {}
        self._statuses: dict[tuple[str, str, int], Counter] = {}
        self._errors: dict[tuple[str, str], Counter] = {}
        self._reasons: dict[tuple[str, str], Counter] = {}
        self._dropped: dict[tuple[str, str], Counter] = {}

    def relabel(self, routes: Iterable[str], deployments: Iterable[str]) -> None:
        """The route and deployment names that get their own label values (a reload changes them)."""
        names = set(routes)
        self._wildcards = {n[:-1] for n in names if n.endswith("/*")}  # "openai/"
        self._routes = names - {p + "*" for p in self._wildcards}
        self._deployments = set(deployments)

    def route_label(self, name: str) -> str:
        if name in self._routes:
            return name
        prefix, sep, rest = name.partition("/")
        if sep and rest and prefix + "/" in self._wildcards:
            return prefix + "/*"
        return OTHER

    def deployment_label(self, name: str) -> str:
        """The name, its wildcard pattern, ``other``, or ``""`` when no deployment was chosen."""
        if not name or name in self._deployments:
            return name
        return self.route_label(name)  # wildcard routes name their one deployment after the model

    def observe(self, row: LedgerRow) -> None:
        """Count one finished request."""
        route = self.route_label(row.route)
        deployment = self.deployment_label(row.deployment)
        pair = self._pairs.get((route, deployment))
        if pair is None:
            pair = self._pairs[(route, deployment)] = _Children(self, route, deployment)
        key = (route, deployment, row.status)
        requests = self._statuses.get(key)
        if requests is None:
            requests = self._statuses[key] = self.requests.labels(route, deployment, str(row.status))
        requests.inc()
        pair.duration.observe(row.latency_ms / 1000)
        if row.stream and row.ttft_ms is not None:
            pair.ttft.observe(row.ttft_ms / 1000)
        if row.upstream_ms is not None:
            pair.upstream.observe(row.upstream_ms / 1000)
        if row.overhead_ms is not None:
            pair.overhead.observe(row.overhead_ms / 1000)
        for child, count in zip(
            pair.tokens,
            (
                row.input_tokens,
                row.cached_input_tokens,
                row.cache_write_tokens,
                row.output_tokens,
                row.reasoning_tokens,
            ),
            strict=True,
        ):
            if count:
                child.inc(count)
        if row.cost_usd is not None:
            if row.cost_usd:
                pair.cost.inc(float(row.cost_usd))
        elif pair.unpriced is not None:
            pair.unpriced.inc()
        if row.usage_estimated:
            pair.estimated.inc()
        if row.error_class is not None:
            self._counter(self._errors, self.errors, route, row.error_class).inc()
        if row.finish_reason is not None:
            self._counter(self._reasons, self.finish_reasons, route, row.finish_reason).inc()
        if row.cache is not None:
            self._counter(self._cache, self.cache_results, route, row.cache).inc()
        if row.variant is not None:
            self._counter(self._variants, self.variants, route, row.variant).inc()
        if row.refused:
            self._counter(self._refusals, self.refusals, route, row.variant or "").inc()
        if row.output_flags:
            for flag in row.output_flags.split(","):
                finding = self._output.get((route, flag))
                if finding is None:
                    check, _, action = flag.partition(":")
                    finding = self._output[(route, flag)] = self.output_checks.labels(route, check, action)
                finding.inc()
        if row.injection_action is not None:
            self.injection_attempts.labels(route, row.key_id, row.injection_action).inc()
        if row.dlp_findings:
            for entry in row.dlp_findings.split(","):
                kind, action, found = entry.split(":")
                self.dlp_findings.labels(kind, action, route).inc(int(found))
        if row.trimmed_messages:
            self.trimmed.labels(route, "summary" if row.trim_summary else "drop").inc()
            self.trimmed_messages.labels(route).inc(row.trimmed_messages)
            self.trimmed_tokens.labels(route).inc(row.trimmed_tokens or 0)
        if row.dropped_params:
            for param in row.dropped_params.split(","):
                label = param if param in MODELLED_PARAMS else OTHER
                self._counter(self._dropped, self.dropped, route, label).inc()

    def observe_feedback(self, route: str, score: float) -> None:
        """Count one feedback on a request of ``route`` (off the request path: no child cache)."""
        label = self.route_label(route)
        self.feedback.labels(label).inc()
        self.feedback_score.labels(label).observe(score)

    @staticmethod
    def _counter(cache: dict[tuple[str, str], Counter], family: Counter, route: str, value: str) -> Counter:
        child = cache.get((route, value))
        if child is None:
            child = cache[(route, value)] = family.labels(route, value)
        return child
