"""The per-request metrics and the ledger gauges, read back by parsing the exposition text."""

from __future__ import annotations

import dataclasses
from decimal import Decimal
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from breakwater.observability.ledger.row import LedgerRow
from breakwater.observability.ledger.writer import LedgerWriter
from breakwater.observability.metrics import LedgerCollector
from breakwater.observability.request_metrics import RequestMetrics
from tests.observability.ledger.rows import make_row

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def _samples(registry: CollectorRegistry) -> Samples:
    text = generate_latest(registry).decode()
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def _get(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, frozenset(labels.items()))]


def _row(**changes: object) -> LedgerRow:
    base = dataclasses.replace(
        make_row(0),
        route="fast",
        deployment="d1",
        status=200,
        error_class=None,
        finish_reason="stop",
        input_tokens=100,
        cached_input_tokens=40,
        cache_write_tokens=0,
        output_tokens=20,
        reasoning_tokens=5,
        cost_usd=Decimal("0.0015"),
        latency_ms=300.0,
        ttft_ms=80.0,
        stream=True,
        usage_estimated=False,
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def _metrics() -> tuple[RequestMetrics, CollectorRegistry]:
    registry = CollectorRegistry(auto_describe=False)
    return RequestMetrics(["fast", "openai/*"], ["d1", "d2"], registry), registry


def test_counts_sums_and_buckets() -> None:
    """Requests, tokens, cost, duration and TTFT histograms hold exactly what the rows carried."""
    m, registry = _metrics()
    m.observe(_row())
    m.observe(_row(latency_ms=2000.0, ttft_ms=600.0, cost_usd=Decimal("0.0025"), output_tokens=30))
    m.observe(_row(stream=False, ttft_ms=None, latency_ms=40.0))
    s = _samples(registry)

    assert _get(s, "breakwater_requests_total", route="fast", deployment="d1", status="200") == 3
    assert _get(s, "breakwater_tokens_total", route="fast", deployment="d1", kind="input") == 300
    assert _get(s, "breakwater_tokens_total", route="fast", deployment="d1", kind="cached_input") == 120
    assert _get(s, "breakwater_tokens_total", route="fast", deployment="d1", kind="output") == 70
    assert _get(s, "breakwater_tokens_total", route="fast", deployment="d1", kind="reasoning") == 15
    assert _get(s, "breakwater_tokens_total", route="fast", deployment="d1", kind="cache_write") == 0
    assert abs(_get(s, "breakwater_cost_usd_total", route="fast", deployment="d1") - 0.0055) < 1e-12

    dur = "breakwater_request_duration_seconds"
    assert _get(s, f"{dur}_count", route="fast") == 3
    assert abs(_get(s, f"{dur}_sum", route="fast") - 2.34) < 1e-9
    assert _get(s, f"{dur}_bucket", route="fast", le="0.05") == 1
    assert _get(s, f"{dur}_bucket", route="fast", le="0.5") == 2
    assert _get(s, f"{dur}_bucket", route="fast", le="1.0") == 2
    assert _get(s, f"{dur}_bucket", route="fast", le="2.5") == 3
    assert _get(s, f"{dur}_bucket", route="fast", le="+Inf") == 3

    ttft = "breakwater_time_to_first_token_seconds"
    assert _get(s, f"{ttft}_count", route="fast") == 2  # the plain request has no TTFT
    assert abs(_get(s, f"{ttft}_sum", route="fast") - 0.68) < 1e-9
    assert _get(s, f"{ttft}_bucket", route="fast", le="0.1") == 1
    assert _get(s, f"{ttft}_bucket", route="fast", le="0.75") == 2
    assert _get(s, "breakwater_finish_reasons_total", route="fast", reason="stop") == 3


def test_upstream_time_and_gateway_overhead_histograms() -> None:
    """Upstream time and the gateway's own overhead each get a histogram; a request that never
    reached an upstream (no upstream time) counts in the overhead only."""
    m, registry = _metrics()
    m.observe(_row(upstream_ms=290.0, overhead_ms=0.4))
    m.observe(_row(upstream_ms=1500.0, overhead_ms=3.0))
    m.observe(_row(route="nope", deployment="", status=404, upstream_ms=None, overhead_ms=0.2))
    s = _samples(registry)
    up, over = "breakwater_upstream_duration_seconds", "breakwater_gateway_overhead_seconds"
    assert _get(s, f"{up}_count", route="fast") == 2
    assert abs(_get(s, f"{up}_sum", route="fast") - 1.79) < 1e-9
    assert _get(s, f"{up}_bucket", route="fast", le="0.5") == 1
    assert _get(s, f"{up}_count", route="other") == 0
    assert _get(s, f"{over}_count", route="fast") == 2
    assert _get(s, f"{over}_bucket", route="fast", le="0.0005") == 1
    assert _get(s, f"{over}_bucket", route="fast", le="0.005") == 2
    assert _get(s, f"{over}_count", route="other") == 1


def test_errors_estimates_and_unpriced() -> None:
    """Failures count by status and error class; estimated usage and unknown prices are counted."""
    m, registry = _metrics()
    m.observe(_row(status=503, error_class="UpstreamUnavailable", finish_reason=None, cost_usd=Decimal(0)))
    m.observe(_row(status=503, error_class="UpstreamUnavailable", finish_reason=None, cost_usd=Decimal(0)))
    m.observe(_row(deployment="d2", cost_usd=None, usage_estimated=True))
    m.observe(_row(route="nope", deployment="", status=404, error_class="ModelNotFound", cost_usd=None))
    s = _samples(registry)

    assert _get(s, "breakwater_requests_total", route="fast", deployment="d1", status="503") == 2
    assert _get(s, "breakwater_requests_total", route="fast", deployment="d2", status="200") == 1
    assert _get(s, "breakwater_requests_total", route="other", deployment="", status="404") == 1
    assert _get(s, "breakwater_errors_total", route="fast", error_class="UpstreamUnavailable") == 2
    assert _get(s, "breakwater_errors_total", route="other", error_class="ModelNotFound") == 1
    assert _get(s, "breakwater_usage_estimated_total", route="fast") == 1
    assert _get(s, "breakwater_unpriced_requests_total", deployment="d2") == 1
    assert ("breakwater_unpriced_requests_total", frozenset({("deployment", "")})) not in s  # no deployment chosen
    assert _get(s, "breakwater_cost_usd_total", route="fast", deployment="d1") == 0
    assert _get(s, "breakwater_finish_reasons_total", route="fast", reason="stop") == 1


def test_labels_stay_bounded() -> None:
    """Unknown route names become 'other'; routes made from a wildcard take the pattern; users and tags never show."""
    m, registry = _metrics()
    for i in range(50):
        m.observe(_row(route=f"made-up-{i}", deployment="", status=404, user=f"u{i}", tags={"team": f"t{i}"}))
        m.observe(_row(route=f"openai/model-{i}", deployment=f"openai/model-{i}"))
    assert m.route_label("openai/") == "other"  # the bare prefix names no model
    s = _samples(registry)
    assert _get(s, "breakwater_requests_total", route="other", deployment="", status="404") == 50
    assert _get(s, "breakwater_requests_total", route="openai/*", deployment="openai/*", status="200") == 50
    requests = {k for k in s if k[0] == "breakwater_requests_total"}
    assert len(requests) == 2
    text = generate_latest(registry).decode()
    assert "u1" not in text and "team" not in text


def test_apps_do_not_share_series() -> None:
    """Two metrics objects in one process count separately (a registry each, nothing global)."""
    a, reg_a = _metrics()
    b, reg_b = _metrics()
    a.observe(_row())
    assert _get(_samples(reg_a), "breakwater_requests_total", route="fast", deployment="d1", status="200") == 1
    assert (
        "breakwater_requests_total",
        frozenset({("route", "fast"), ("deployment", "d1"), ("status", "200")}),
    ) not in (_samples(reg_b))
    b.observe(_row())


class _NoStore:
    async def write(self, rows: list[LedgerRow], *, behind: bool = False) -> None:
        raise AssertionError("not written in this test")


def test_ledger_gauges_read_the_writer(tmp_path: Path) -> None:
    """Pending, spooled and dropped rows and the write lag are read from the writer when scraped."""
    writer = LedgerWriter(_NoStore(), tmp_path / "spool")
    registry = CollectorRegistry(auto_describe=False)
    registry.register(LedgerCollector(writer))
    s = _samples(registry)
    assert _get(s, "breakwater_ledger_pending_rows") == 0
    assert ("breakwater_ledger_write_lag_seconds", frozenset()) not in s  # nothing written yet

    writer.submit(make_row(1))
    writer.submit(make_row(2))
    writer.spooled_rows, writer.dropped, writer.last_write_lag_s = 7, 3, 0.25
    s = _samples(registry)
    assert _get(s, "breakwater_ledger_pending_rows") == 2
    assert _get(s, "breakwater_ledger_spool_rows") == 7
    assert _get(s, "breakwater_ledger_dropped_rows_total") == 3
    assert _get(s, "breakwater_ledger_write_lag_seconds") == 0.25
