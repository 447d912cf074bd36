"""OpenTelemetry traces following the GenAI semantic conventions, built after a request ends.

The request path pays only for a few attribute writes on its ``RequestContext`` (trace id, one
tuple per upstream attempt). Once the last byte went out, ``Tracer.record`` turns that context
and the request's ledger row into spans with their real start and end times:

```
chat {route}              SERVER  the whole request, child of the caller's ``traceparent`` span
├── chat {upstream model} CLIENT  attempt 1 (failed: error.type, status ERROR)
└── chat {upstream model} CLIENT  attempt 2 (served: response model, usage, finish reasons)
```

Attribute names follow the GenAI conventions as of semantic-conventions 1.38 (``gen_ai.provider.name``
replaced ``gen_ai.system``; cache tokens are ``gen_ai.usage.cache_read.input_tokens`` and
``gen_ai.usage.cache_creation.input_tokens``). Prompts and answers are never attributes; with
``capture_content`` they go into one span event. Keys, headers and config secrets never appear.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

import orjson
from opentelemetry import trace
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, Status, StatusCode, TraceFlags

from breakwater.core.config import Provider, TracingSettings
from breakwater.core.types import ChatRequest, TextPart
from breakwater.engine.context import RequestContext
from breakwater.observability.ledger.row import LedgerRow

log = logging.getLogger("breakwater.tracing")

OPERATION = "chat"

#: ``host`` (OpenAI-compatible rows) or wire ``type`` -> the semconv ``gen_ai.provider.name`` value
_SYSTEMS = {
    "openai": "openai",
    "azure": "azure.ai.openai",
    "anthropic": "anthropic",
    "gemini": "gcp.gemini",
    "vertex": "gcp.vertex_ai",
    "groq": "groq",
    "deepseek": "deepseek",
    "mistral": "mistral_ai",
    "bedrock": "aws.bedrock",
}

#: ratio sampling compares the trace id's low 64 bits (random in W3C ids) with this bound
_BOUND = 1 << 64


def provider_systems(providers: Mapping[str, Provider]) -> dict[str, str]:
    """Provider name -> ``gen_ai.provider.name``: the vendor's semconv value when the provider calls
    that vendor's own API, else the provider's name (mocks, self-hosted and other compatible hosts)."""
    systems: dict[str, str] = {}
    for name, p in providers.items():
        if p.type == "mock" or p.host in ("mock", "custom"):
            systems[name] = name
        elif p.host is not None:
            systems[name] = _SYSTEMS.get(p.host, name)
        elif p.type == "openai" and p.base_url:
            systems[name] = name  # an OpenAI-compatible server that is not OpenAI
        else:
            systems[name] = _SYSTEMS.get(p.type, name)
    return systems


def exporter_processor(settings: TracingSettings, headers: Mapping[str, str]) -> SpanProcessor | None:
    """The batching span processor for ``settings.exporter`` (``none``: no processor).

    Args:
        settings: the ``tracing`` config block.
        headers: the export headers with ``env:``/``file:`` references already resolved.
    """
    if settings.exporter == "otlp":
        # imported here: only a gateway that exports OTLP loads protobuf and requests
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        endpoint = None if settings.endpoint is None else traces_url(settings.endpoint)
        return BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint, headers=dict(headers) or None))
    if settings.exporter == "console":
        return BatchSpanProcessor(ConsoleSpanExporter())
    return None


def traces_url(endpoint: str) -> str:
    """``http://collector:4318`` -> ``http://collector:4318/v1/traces``; a URL with a path is kept."""
    return endpoint.rstrip("/") + "/v1/traces" if urlsplit(endpoint).path in ("", "/") else endpoint


class _PresetIds(RandomIdGenerator):
    """Random ids, except the next trace id can be set: a root span then carries the trace id the
    request already had (and its ledger row already names)."""

    def __init__(self) -> None:
        self.next_trace_id = 0

    def generate_trace_id(self) -> int:
        trace_id, self.next_trace_id = self.next_trace_id, 0
        return trace_id or super().generate_trace_id()


class Tracer:
    """Builds one request's spans from its context and ledger row, and owns the span pipeline."""

    def __init__(
        self,
        settings: TracingSettings,
        systems: Mapping[str, str],
        processor: SpanProcessor | None = None,
    ) -> None:
        """
        Args:
            settings: the ``tracing`` config block (``service_name``, ``sample_rate``, ``capture_content``).
            systems: provider name -> ``gen_ai.provider.name`` (``provider_systems``).
            processor: where finished spans go (``exporter_processor``; tests pass an in-memory one).
        """
        self._ids = _PresetIds()
        self.provider = TracerProvider(
            resource=Resource.create({SERVICE_NAME: settings.service_name}), id_generator=self._ids
        )
        if processor is not None:
            self.provider.add_span_processor(processor)
        self._tracer = self.provider.get_tracer("breakwater")
        self._systems = dict(systems)
        self._bound = int(settings.sample_rate * _BOUND)
        self._capture = settings.capture_content

    def add_span_processor(self, processor: SpanProcessor) -> None:
        self.provider.add_span_processor(processor)

    def sampled(self, ctx: RequestContext) -> bool:
        """The caller's decision when it sent a ``traceparent``, else ``sample_rate`` on the trace id
        (deterministic: every replica keeps or drops the same traces)."""
        tc = ctx.trace
        if tc.parent_span_id is not None:
            return tc.sampled
        return (tc.trace_id & (_BOUND - 1)) < self._bound

    def record(self, ctx: RequestContext, request: ChatRequest | None, row: LedgerRow, now_mono: float) -> None:
        """Emit the request's spans (when sampled). Never raises: a broken trace must not fail the
        request that has already been answered, so a failure is logged with the request id."""
        if not ctx.trace.trace_id or not self.sampled(ctx):
            return
        try:
            self._record(ctx, request, row, now_mono)
        except Exception:  # telemetry never fails a served request; logged with context
            log.exception("trace of request %s not recorded", ctx.request_id, extra={"request_id": ctx.request_id})

    def shutdown(self) -> None:
        """Flush queued spans and stop the export thread (blocking: call it off the event loop)."""
        self.provider.shutdown()

    def _record(self, ctx: RequestContext, request: ChatRequest | None, row: LedgerRow, now_mono: float) -> None:
        offset = ctx.started_at - ctx.started_mono

        def ns(mono: float) -> int:
            return int((offset + mono) * 1e9)

        tc = ctx.trace
        if tc.parent_span_id is not None:
            remote = SpanContext(
                tc.trace_id, tc.parent_span_id, is_remote=True, trace_flags=TraceFlags(TraceFlags.SAMPLED)
            )
            parent = trace.set_span_in_context(NonRecordingSpan(remote))
        else:
            parent = None
            self._ids.next_trace_id = tc.trace_id
        model = request.model if request is not None else row.route
        params = _request_params(request)
        attributes: dict[str, Any] = {
            "gen_ai.operation.name": OPERATION,
            "gen_ai.request.model": model,
            **params,
            "breakwater.request_id": row.request_id,
            "breakwater.route": row.route,
            "breakwater.stream": row.stream,
            "breakwater.attempts": row.attempts,
            "breakwater.fallback": row.fallback,
            "http.response.status_code": row.status,
        }
        if ctx.outcome.provider:
            attributes["gen_ai.provider.name"] = self._systems.get(ctx.outcome.provider, ctx.outcome.provider)
        if row.deployment:
            attributes["breakwater.deployment"] = row.deployment
            attributes.update(_response(row))
        if row.ttft_ms is not None:
            attributes["gen_ai.response.time_to_first_chunk"] = row.ttft_ms / 1000
        if row.error_class is not None:
            attributes["error.type"] = row.error_class
        server = self._tracer.start_span(
            f"{OPERATION} {model}" if model else OPERATION,
            context=parent,
            kind=SpanKind.SERVER,
            attributes=attributes,
            start_time=ns(ctx.started_mono),
        )
        self._ids.next_trace_id = 0
        if row.error_class is not None:
            server.set_status(Status(StatusCode.ERROR, row.error_class))
        if self._capture and request is not None:
            server.add_event("gen_ai.client.inference.operation.details", _content(request, ctx), ns(now_mono))
        inside = trace.set_span_in_context(server)
        attempts = ctx.outcome.attempt_log
        served = max((i for i, a in enumerate(attempts) if a[5] is None), default=-1)
        for i, (deployment, provider, upstream, start, end, error) in enumerate(attempts):
            if ctx.stream and error is None:
                # a stream's attempt returns once the upstream answered; it lasts until the stream ends
                end = attempts[i + 1][3] if i + 1 < len(attempts) else now_mono
            child: dict[str, Any] = {
                "gen_ai.operation.name": OPERATION,
                "gen_ai.provider.name": self._systems.get(provider, provider),
                "gen_ai.request.model": upstream,
                **params,
                "breakwater.request_id": row.request_id,
                "breakwater.deployment": deployment,
                "breakwater.attempt": i + 1,
            }
            if i == served:
                child.update(_response(row))
                first = ctx.tally.first_event_at
                if ctx.stream and first is not None and first >= start:
                    child["gen_ai.response.time_to_first_chunk"] = first - start
            if error is not None:
                child["error.type"] = error
            span = self._tracer.start_span(
                f"{OPERATION} {upstream}", context=inside, kind=SpanKind.CLIENT, attributes=child, start_time=ns(start)
            )
            if error is not None:
                span.set_status(Status(StatusCode.ERROR, error))
            span.end(end_time=max(ns(end), ns(start)))
        server.end(end_time=max(ns(now_mono), ns(ctx.started_mono)))


def _request_params(request: ChatRequest | None) -> dict[str, Any]:
    params: dict[str, Any] = {}
    if request is None:
        return params
    if request.max_tokens is not None:
        params["gen_ai.request.max_tokens"] = request.max_tokens
    if request.temperature is not None:
        params["gen_ai.request.temperature"] = request.temperature
    if request.top_p is not None:
        params["gen_ai.request.top_p"] = request.top_p
    return params


def _response(row: LedgerRow) -> dict[str, Any]:
    """What the serving upstream answered: model, finish reason, usage, cost (from the ledger row)."""
    attributes: dict[str, Any] = {}
    if row.upstream_model:
        attributes["gen_ai.response.model"] = row.upstream_model
    if row.finish_reason is not None:
        attributes["gen_ai.response.finish_reasons"] = (row.finish_reason,)
    if row.input_tokens or row.output_tokens:
        attributes["gen_ai.usage.input_tokens"] = row.input_tokens
        attributes["gen_ai.usage.output_tokens"] = row.output_tokens
        attributes["gen_ai.usage.cache_read.input_tokens"] = row.cached_input_tokens
        attributes["gen_ai.usage.cache_creation.input_tokens"] = row.cache_write_tokens
        attributes["breakwater.usage_estimated"] = row.usage_estimated
    if row.cost_usd is not None:
        attributes["breakwater.cost_usd"] = float(row.cost_usd)
    return attributes


def _content(request: ChatRequest, ctx: RequestContext) -> dict[str, str]:
    """The prompt (and the answer's text when it was kept) in the semconv message shape, as JSON."""
    prompt = [(m.role, [p.text for p in m.content if isinstance(p, TextPart)]) for m in request.messages]
    content = {"gen_ai.input.messages": _messages(prompt)}
    text = ctx.tally.output_text
    if text is not None:
        content["gen_ai.output.messages"] = _messages([("assistant", [text])])
    return content


def _messages(messages: Sequence[tuple[str, list[str]]]) -> str:
    return orjson.dumps(
        [{"role": role, "parts": [{"type": "text", "content": text} for text in texts]} for role, texts in messages]
    ).decode()
