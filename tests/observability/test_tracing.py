"""Traces built after the request: one SERVER span per request, one CLIENT span per upstream attempt,
GenAI semantic-convention attributes, the request's own trace id, and no content unless asked."""

from __future__ import annotations

import dataclasses
from decimal import Decimal
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from breakwater.core.config import Provider, TracingSettings
from breakwater.core.prices import PriceBook
from breakwater.core.types import ChatRequest, Message, TextPart, Usage
from breakwater.engine.context import RequestContext, RouteOutcome
from breakwater.observability.ledger.row import LedgerRow
from breakwater.observability.recorder import Recorder
from breakwater.observability.tracing import Tracer, exporter_processor, provider_systems, traces_url

T0 = 1_700_000_000.0  # wall clock at the request's start
M0 = 500.0  # the monotonic time that matches it
TRACE_ID = 0x0AF7651916CD43DD8448EB211C80319C
PARENT_SPAN = 0xB7AD6B7169203331
SYSTEMS = {"oai": "openai", "claude": "anthropic"}


def ns(seconds_after_start: float) -> int:
    return int((T0 + seconds_after_start) * 1e9)


def make_tracer(**settings: Any) -> tuple[Tracer, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    tracer = Tracer(TracingSettings(enabled=True, exporter="none", **settings), SYSTEMS, SimpleSpanProcessor(exporter))
    return tracer, exporter


def make_request(**fields: Any) -> ChatRequest:
    return ChatRequest(model="smart", messages=[Message(role="user", content=[TextPart("my secret plan")])], **fields)


def make_ctx(*, stream: bool = False, parent: bool = False) -> RequestContext:
    """A request to route ``smart`` whose first attempt (``d-claude``) failed and second (``d-oai``) served."""
    ctx = RequestContext("req-1", outcome=RouteOutcome(route="smart", deployment="d-oai", provider="oai", attempts=2))
    ctx.started_at, ctx.started_mono, ctx.stream = T0, M0, stream
    ctx.outcome.upstream_model, ctx.outcome.fallback = "gpt-4o", True
    ctx.trace.trace_id = TRACE_ID
    if parent:
        ctx.trace.parent_span_id = PARENT_SPAN
    ctx.outcome.attempt_log = [
        ("d-claude", "claude", "claude-3", M0 + 0.01, M0 + 0.1, "Overloaded"),
        ("d-oai", "oai", "gpt-4o", M0 + 0.2, M0 + 0.5, None),
    ]
    ctx.tally.usage = Usage(input_tokens=120, output_tokens=30, cached_input_tokens=100, cache_creation_input_tokens=7)
    ctx.tally.finish_reason, ctx.tally.model = "stop", "gpt-4o-2024-08-06"
    if stream:
        ctx.tally.first_event_at = M0 + 0.25
    return ctx


def make_row(ctx: RequestContext, **changes: Any) -> LedgerRow:
    row = LedgerRow(
        id="row-1",
        request_id=ctx.request_id,
        trace_id=f"{ctx.trace.trace_id:032x}",
        ts=T0,
        key_id="",
        user="",
        tags={},
        route="smart",
        deployment="d-oai",
        provider="oai",
        upstream_model="gpt-4o-2024-08-06",
        attempts=2,
        fallback=True,
        status=200,
        error_class=None,
        finish_reason="stop",
        input_tokens=120,
        cached_input_tokens=100,
        cache_write_tokens=7,
        output_tokens=30,
        reasoning_tokens=0,
        cost_usd=Decimal("0.00123"),
        latency_ms=600.0,
        ttft_ms=250.0 if ctx.stream else None,
        output_tps=None,
        stream=ctx.stream,
        cache=None,
        usage_estimated=False,
        prompt=None,
        response=None,
    )
    return dataclasses.replace(row, **changes)


def spans(exporter: InMemorySpanExporter) -> tuple[ReadableSpan, list[ReadableSpan]]:
    """The server span and the client spans (in start order)."""
    finished = exporter.get_finished_spans()
    servers = [s for s in finished if s.kind is SpanKind.SERVER]
    assert len(servers) == 1
    clients = sorted((s for s in finished if s.kind is SpanKind.CLIENT), key=lambda s: s.start_time or 0)
    assert len(finished) == 1 + len(clients)
    return servers[0], clients


def test_the_server_span_carries_the_request_and_its_answer() -> None:
    """The SERVER span is named ``chat {route}`` and has every GenAI and breakwater attribute."""
    tracer, exporter = make_tracer()
    ctx = make_ctx()
    tracer.record(ctx, make_request(max_tokens=64, temperature=0.5, top_p=0.9), make_row(ctx), M0 + 0.6)
    server, _ = spans(exporter)
    attrs = dict(server.attributes or {})
    assert server.name == "chat smart"
    assert attrs.pop("gen_ai.operation.name") == "chat"
    assert attrs.pop("gen_ai.request.model") == "smart"
    assert attrs.pop("gen_ai.provider.name") == "openai"
    assert attrs.pop("gen_ai.request.max_tokens") == 64
    assert attrs.pop("gen_ai.request.temperature") == 0.5
    assert attrs.pop("gen_ai.request.top_p") == 0.9
    assert attrs.pop("gen_ai.response.model") == "gpt-4o-2024-08-06"
    assert attrs.pop("gen_ai.response.finish_reasons") == ("stop",)
    assert attrs.pop("gen_ai.usage.input_tokens") == 120
    assert attrs.pop("gen_ai.usage.output_tokens") == 30
    assert attrs.pop("gen_ai.usage.cache_read.input_tokens") == 100
    assert attrs.pop("gen_ai.usage.cache_creation.input_tokens") == 7
    assert attrs.pop("breakwater.usage_estimated") is False
    assert attrs.pop("breakwater.cost_usd") == pytest.approx(0.00123)
    assert attrs.pop("breakwater.request_id") == "req-1"
    assert attrs.pop("breakwater.route") == "smart"
    assert attrs.pop("breakwater.deployment") == "d-oai"
    assert attrs.pop("breakwater.stream") is False
    assert attrs.pop("breakwater.attempts") == 2
    assert attrs.pop("breakwater.fallback") is True
    assert attrs.pop("http.response.status_code") == 200
    assert attrs == {}, "no attribute left unchecked"
    assert server.status.status_code is StatusCode.UNSET
    assert server.resource.attributes["service.name"] == "breakwater"


def test_a_root_span_uses_the_request_trace_id_and_its_times() -> None:
    """Without a caller span the server span is a root in the request's own trace, timed from the context."""
    tracer, exporter = make_tracer()
    ctx = make_ctx()
    tracer.record(ctx, make_request(), make_row(ctx), M0 + 0.6)
    server, clients = spans(exporter)
    assert server.parent is None
    assert server.context is not None and server.context.trace_id == TRACE_ID
    assert (server.start_time, server.end_time) == (ns(0.0), ns(0.6))
    assert all(c.context is not None and c.context.trace_id == TRACE_ID for c in clients)


def test_a_caller_traceparent_parents_the_server_span() -> None:
    """With a ``traceparent`` the server span is the child of the caller's remote span."""
    tracer, exporter = make_tracer()
    ctx = make_ctx(parent=True)
    tracer.record(ctx, make_request(), make_row(ctx), M0 + 0.6)
    server, _ = spans(exporter)
    assert server.parent is not None and server.parent.is_remote
    assert (server.parent.trace_id, server.parent.span_id) == (TRACE_ID, PARENT_SPAN)
    assert server.context is not None and server.context.trace_id == TRACE_ID


def test_each_attempt_is_a_client_span_under_the_server_span() -> None:
    """Attempts are CLIENT children in order; the failed one has error.type and status ERROR."""
    tracer, exporter = make_tracer()
    ctx = make_ctx()
    tracer.record(ctx, make_request(max_tokens=64), make_row(ctx), M0 + 0.6)
    server, (failed, served) = spans(exporter)
    assert server.context is not None
    for span in (failed, served):
        assert span.parent is not None and span.parent.span_id == server.context.span_id
        assert server.start_time is not None and server.end_time is not None
        assert span.start_time is not None and span.end_time is not None
        assert server.start_time <= span.start_time <= span.end_time <= server.end_time
    assert failed.end_time is not None and served.start_time is not None
    assert failed.end_time <= served.start_time
    assert failed.name == "chat claude-3"
    assert (failed.start_time, failed.end_time) == (ns(0.01), ns(0.1))
    assert dict(failed.attributes or {}) == {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "anthropic",
        "gen_ai.request.model": "claude-3",
        "gen_ai.request.max_tokens": 64,
        "breakwater.request_id": "req-1",
        "breakwater.deployment": "d-claude",
        "breakwater.attempt": 1,
        "error.type": "Overloaded",
    }
    assert failed.status.status_code is StatusCode.ERROR
    assert served.name == "chat gpt-4o"
    assert (served.start_time, served.end_time) == (ns(0.2), ns(0.5))
    assert dict(served.attributes or {}) == {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-4o",
        "gen_ai.request.max_tokens": 64,
        "gen_ai.response.model": "gpt-4o-2024-08-06",
        "gen_ai.response.finish_reasons": ("stop",),
        "gen_ai.usage.input_tokens": 120,
        "gen_ai.usage.output_tokens": 30,
        "gen_ai.usage.cache_read.input_tokens": 100,
        "gen_ai.usage.cache_creation.input_tokens": 7,
        "breakwater.usage_estimated": False,
        "breakwater.cost_usd": pytest.approx(0.00123),
        "breakwater.request_id": "req-1",
        "breakwater.deployment": "d-oai",
        "breakwater.attempt": 2,
    }
    assert served.status.status_code is StatusCode.UNSET


def test_a_stream_reports_time_to_first_chunk_and_lasts_until_it_ends() -> None:
    """A streamed answer's serving attempt ends with the stream, and both spans carry the TTFT in seconds."""
    tracer, exporter = make_tracer()
    ctx = make_ctx(stream=True)
    tracer.record(ctx, make_request(stream=True), make_row(ctx), M0 + 0.9)
    server, (_, served) = spans(exporter)
    assert (server.attributes or {})["gen_ai.response.time_to_first_chunk"] == pytest.approx(0.25)
    assert (served.attributes or {})["gen_ai.response.time_to_first_chunk"] == pytest.approx(0.05)
    assert served.end_time == server.end_time == ns(0.9)


def test_a_failed_request_has_error_type_and_status_error() -> None:
    """A request nothing could serve: error.type on the server span, status ERROR, no usage."""
    tracer, exporter = make_tracer()
    ctx = make_ctx()
    ctx.outcome.attempt_log = ctx.outcome.attempt_log[:1]
    ctx.outcome.deployment = None
    row = make_row(
        ctx, status=503, error_class="Unavailable", deployment="", finish_reason=None, input_tokens=0,
        output_tokens=0, cost_usd=None,
    )  # fmt: skip
    tracer.record(ctx, make_request(), row, M0 + 0.2)
    server, (failed,) = spans(exporter)
    attrs = server.attributes or {}
    assert attrs["error.type"] == "Unavailable" and attrs["http.response.status_code"] == 503
    assert server.status.status_code is StatusCode.ERROR
    assert "gen_ai.usage.input_tokens" not in attrs and "breakwater.deployment" not in attrs
    assert failed.status.status_code is StatusCode.ERROR


def test_no_content_unless_capture_content() -> None:
    """Prompts stay out of spans by default; ``capture_content`` puts them in one span event only."""
    tracer, exporter = make_tracer()
    ctx = make_ctx()
    tracer.record(ctx, make_request(), make_row(ctx), M0 + 0.6)
    for span in exporter.get_finished_spans():
        assert not span.events
        assert "my secret plan" not in repr(dict(span.attributes or {}))

    tracer, exporter = make_tracer(capture_content=True)
    tracer.record(ctx, make_request(), make_row(ctx), M0 + 0.6)
    server, clients = spans(exporter)
    assert "my secret plan" not in repr(dict(server.attributes or {}))
    (event,) = server.events
    assert event.name == "gen_ai.client.inference.operation.details"
    assert "my secret plan" in str((event.attributes or {})["gen_ai.input.messages"])
    assert all(not c.events for c in clients)


@pytest.mark.parametrize(("rate", "kept"), [(1.0, True), (0.0, False)])
def test_sample_rate_applies_to_new_traces(rate: float, kept: bool) -> None:
    """``sample_rate`` keeps or drops traces the gateway starts."""
    tracer, exporter = make_tracer(sample_rate=rate)
    ctx = make_ctx()
    tracer.record(ctx, make_request(), make_row(ctx), M0 + 0.6)
    assert bool(exporter.get_finished_spans()) is kept


@pytest.mark.parametrize("sampled", [True, False])
def test_the_caller_sampling_decision_wins(sampled: bool) -> None:
    """A caller's ``traceparent`` flags decide, whatever ``sample_rate`` says."""
    tracer, exporter = make_tracer(sample_rate=0.0 if sampled else 1.0)
    ctx = make_ctx(parent=True)
    ctx.trace.sampled = sampled
    tracer.record(ctx, make_request(), make_row(ctx), M0 + 0.6)
    assert bool(exporter.get_finished_spans()) is sampled


def test_the_recorder_names_the_trace_and_hands_it_to_the_tracer() -> None:
    """The ledger row carries the 32-hex trace id and the tracer gets the same request."""
    tracer, exporter = make_tracer()
    rows: list[LedgerRow] = []
    recorder = Recorder(rows.append, PriceBook({}), lambda provider: None, tracer=tracer)
    ctx = make_ctx()
    row = recorder.record(ctx, make_request(), 200, None, M0 + 0.6)
    assert rows == [row] and row.trace_id == "0af7651916cd43dd8448eb211c80319c"
    server, _ = spans(exporter)
    assert server.context is not None and f"{server.context.trace_id:032x}" == row.trace_id


def test_provider_names_follow_the_semantic_conventions() -> None:
    """Vendors' own APIs map to their semconv names; mocks and self-hosted servers keep our name."""
    providers = {
        "a": Provider(type="openai"),
        "b": Provider(type="anthropic"),
        "c": Provider(type="gemini"),
        "d": Provider(type="openai", host="azure", base_url="https://x.openai.azure.com", api_version="2024-10-21"),
        "e": Provider(type="openai", host="groq"),
        "f": Provider(type="openai", base_url="http://127.0.0.1:8000/v1"),
        "g": Provider(type="mock"),
        "h": Provider(type="openai", host="vllm"),
    }
    assert provider_systems(providers) == {
        "a": "openai", "b": "anthropic", "c": "gcp.gemini", "d": "azure.ai.openai", "e": "groq", "f": "f",
        "g": "g", "h": "h",
    }  # fmt: skip


def test_a_bare_collector_address_gets_the_traces_path() -> None:
    """``http://host:4318`` is completed to the OTLP/HTTP traces path; a full URL is kept."""
    assert traces_url("http://collector:4318") == "http://collector:4318/v1/traces"
    assert traces_url("http://collector:4318/") == "http://collector:4318/v1/traces"
    assert traces_url("https://otel.example/custom/traces") == "https://otel.example/custom/traces"


def test_otlp_exports_to_the_configured_traces_url() -> None:
    """``exporter: otlp`` batches spans to the collector's ``/v1/traces`` (built, never sent here)."""
    settings = TracingSettings(enabled=True, exporter="otlp", endpoint="http://127.0.0.1:4318")
    processor = exporter_processor(settings, {"x-team": "t1"})
    assert isinstance(processor, BatchSpanProcessor)
    try:
        exporter: Any = processor._batch_processor._exporter  # no public accessor
        assert exporter._endpoint == "http://127.0.0.1:4318/v1/traces"
    finally:
        processor.shutdown()
    assert exporter_processor(TracingSettings(exporter="none"), {}) is None


def test_a_broken_trace_never_fails_the_request(caplog: pytest.LogCaptureFixture) -> None:
    """An error while building spans is logged with the request id, not raised into the request."""
    tracer, _ = make_tracer()
    ctx = make_ctx()
    ctx.outcome.attempt_log = [("d", "p", "m", M0, M0 + 1)]  # type: ignore[list-item]  # a malformed record
    tracer.record(ctx, make_request(), make_row(ctx), M0 + 1)
    assert "trace of request req-1 not recorded" in caplog.text
