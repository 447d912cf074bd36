"""Traces end to end: the OpenAI SDK calls a running gateway with tracing on and a ``traceparent``;
the spans (caught by an in-memory exporter) and the ledger row name the caller's trace."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from breakwater.core.config import ConfigError, build_config
from breakwater.server.app import BreakwaterApp, create_app
from breakwater.server.endpoints import RequestIds
from tests.server.conftest import PLANTED_SECRET, mock_config
from tests.server.running import HELLO, openai_sdk, serve
from tests.server.test_ledger import _row

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = "00f067aa0ba902b7"


@pytest.fixture(scope="module")
def traced(
    mock_server_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, InMemorySpanExporter, Path]]:
    """A gateway with tracing on (no exporter of its own) plus an in-memory one; and its ledger."""
    ledger = tmp_path_factory.mktemp("traced") / "ledger.db"
    config = mock_config(mock_server_url)
    config["ledger"] = {
        "url": f"sqlite:///{ledger}",
        "spool_path": str(ledger.with_suffix(".spool")),
        "flush_interval_s": 0.05,
    }
    config["tracing"] = {"enabled": True, "exporter": "none", "service_name": "bw-test"}
    app = create_app(build_config(config), environ={"PLANTED_KEY": PLANTED_SECRET})
    assert app.tracer is not None
    exporter = InMemorySpanExporter()
    app.tracer.add_span_processor(SimpleSpanProcessor(exporter))
    with serve(app) as url:
        yield url, exporter, ledger


def _spans(
    exporter: InMemorySpanExporter, request_id: str, timeout_s: float = 10.0
) -> tuple[ReadableSpan, list[ReadableSpan]]:
    """The server span of ``request_id`` and its client spans, once recorded (bounded wait)."""
    deadline = time.monotonic() + timeout_s
    while True:
        mine = [
            s for s in exporter.get_finished_spans() if (s.attributes or {}).get("breakwater.request_id") == request_id
        ]
        servers = [s for s in mine if s.kind is SpanKind.SERVER]
        if servers:
            return servers[0], [s for s in mine if s.kind is SpanKind.CLIENT]
        if time.monotonic() > deadline:
            raise AssertionError(f"no server span for {request_id} after {timeout_s}s")
        time.sleep(0.02)


@pytest.mark.parametrize("model", ["mock", "remote"])
def test_a_traceparent_call_is_traced_under_the_caller_span(
    traced: tuple[str, InMemorySpanExporter, Path], model: str
) -> None:
    """The server span joins the caller's trace as the child of its span; the client span has the
    GenAI attributes; the ledger row names the same trace; no key or header reaches a span."""
    url, exporter, ledger = traced
    client = openai_sdk(url, "sk-client-key-123")
    raw = client.chat.completions.with_raw_response.create(
        model=model,
        messages=HELLO,
        max_tokens=50,
        temperature=0.3,
        extra_headers={"traceparent": f"00-{TRACE}-{PARENT}-01"},
    )
    completion = raw.parse()
    rid = raw.headers["x-request-id"]
    server, clients = _spans(exporter, rid)
    assert server.name == f"chat {model}"
    assert server.context is not None and f"{server.context.trace_id:032x}" == TRACE
    assert server.parent is not None and server.parent.is_remote and f"{server.parent.span_id:016x}" == PARENT
    assert server.resource.attributes["service.name"] == "bw-test"
    (attempt,) = clients
    assert attempt.parent is not None and attempt.parent.span_id == server.context.span_id
    attrs = attempt.attributes or {}
    assert attempt.name == "chat mock-gpt"
    assert attrs["gen_ai.operation.name"] == "chat"
    assert attrs["gen_ai.provider.name"] == ("mock-openai" if model == "mock" else "remote-openai")
    assert attrs["gen_ai.request.model"] == "mock-gpt"
    assert attrs["gen_ai.request.max_tokens"] == 50 and attrs["gen_ai.request.temperature"] == 0.3
    assert attrs["gen_ai.response.model"] == completion.model
    assert attrs["gen_ai.response.finish_reasons"] == (completion.choices[0].finish_reason,)
    assert completion.usage is not None
    assert attrs["gen_ai.usage.input_tokens"] == completion.usage.prompt_tokens
    assert attrs["gen_ai.usage.output_tokens"] == completion.usage.completion_tokens
    assert attrs["breakwater.deployment"] == ("d-openai" if model == "mock" else "r-openai")
    cost = attrs["breakwater.cost_usd"]
    assert isinstance(cost, float) and cost > 0
    assert server.status.status_code is StatusCode.UNSET and attempt.status.status_code is StatusCode.UNSET
    assert _row(ledger, rid)["trace_id"] == TRACE
    for span in (server, attempt):
        text = repr(dict(span.attributes or {}))
        assert PLANTED_SECRET not in text and "sk-client-key-123" not in text and "Hello there" not in text


def test_a_call_without_traceparent_starts_the_trace_its_row_names(
    traced: tuple[str, InMemorySpanExporter, Path],
) -> None:
    """Without a caller span the server span is a root whose trace id is the ledger row's."""
    url, exporter, ledger = traced
    client = openai_sdk(url)
    stream = client.chat.completions.create(model="mock", messages=HELLO, stream=True)
    for _ in stream:
        pass
    rid = stream.response.headers["x-request-id"]
    server, (attempt,) = _spans(exporter, rid)
    assert server.parent is None and server.context is not None
    assert f"{server.context.trace_id:032x}" == _row(ledger, rid)["trace_id"]
    assert "gen_ai.response.time_to_first_chunk" in (server.attributes or {})
    assert server.end_time is not None and attempt.end_time is not None and attempt.end_time <= server.end_time


def test_a_failed_call_has_an_error_span(traced: tuple[str, InMemorySpanExporter, Path]) -> None:
    """An upstream failure (a mock fault) gives error.type and status ERROR on both spans."""
    url, exporter, _ = traced
    client = openai_sdk(url)
    with pytest.raises(openai.APIStatusError) as caught:
        client.chat.completions.create(
            model="mock",
            messages=HELLO,
            extra_headers={"x-mock-fault": "status=500"},
        )
    server, (attempt,) = _spans(exporter, caught.value.response.headers["x-request-id"])
    assert server.status.status_code is StatusCode.ERROR and attempt.status.status_code is StatusCode.ERROR
    assert (server.attributes or {})["error.type"] and (attempt.attributes or {})["error.type"]


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (f"00-{TRACE}-{PARENT}-01", (int(TRACE, 16), int(PARENT, 16), True)),
        (f"00-{TRACE}-{PARENT}-00", (int(TRACE, 16), int(PARENT, 16), False)),
        (f"01-{TRACE}-{PARENT}-01-future", (int(TRACE, 16), int(PARENT, 16), True)),
        (f"00-{TRACE}-{PARENT}-01-extra", None),  # version 00 has exactly four fields
        (f"ff-{TRACE}-{PARENT}-01", None),
        (f"00-{'0' * 32}-{PARENT}-01", None),
        (f"00-{TRACE}-{'0' * 16}-01", None),
        (f"00-{TRACE.upper()}-{PARENT}-01", None),
        (f"00-{TRACE[:-1]}g-{PARENT}-01", None),
        (f"00-{TRACE}-{PARENT}", None),
        ("garbage", None),
    ],
)
def test_traceparent_parsing(header: str, expected: tuple[int, int, bool] | None) -> None:
    """A valid W3C ``traceparent`` sets the context's trace; anything else is ignored for a fresh trace id."""
    scope: dict[str, Any] = {"headers": [(b"traceparent", header.encode())]}
    ctx = RequestIds().context(scope)
    if expected is None:
        assert ctx.trace.parent_span_id is None and ctx.trace.sampled and ctx.trace.trace_id not in (0, int(TRACE, 16))
    else:
        assert (ctx.trace.trace_id, ctx.trace.parent_span_id, ctx.trace.sampled) == expected


def test_tracing_header_references_must_resolve(mock_server_url: str) -> None:
    """An ``env:`` export header whose variable is unset is a config error naming the key, not a value."""
    config = mock_config(mock_server_url)
    config["tracing"] = {"enabled": True, "exporter": "none", "headers": {"x-api-key": "env:OTEL_TOKEN"}}
    with pytest.raises(ConfigError) as caught:
        create_app(build_config(config), environ={"PLANTED_KEY": PLANTED_SECRET})
    assert "tracing.headers.x-api-key" in str(caught.value)


def test_tracing_is_off_by_default(mock_server_url: str) -> None:
    """No ``tracing`` block: no tracer, no span pipeline."""
    app: BreakwaterApp = create_app(build_config(mock_config(mock_server_url)), environ={"PLANTED_KEY": PLANTED_SECRET})
    assert app.tracer is None
