"""Where a request's time went: upstream calls versus the gateway's own overhead, per ledger row.

The times are set on the context by hand (monotonic seconds), as the engine would have recorded
them, so each figure below is computed exactly.
"""

from __future__ import annotations

from breakwater.core.prices import PriceBook
from breakwater.core.types import ChatRequest, Message, TextPart
from breakwater.engine.context import RequestContext, RouteOutcome
from breakwater.observability.ledger.row import LedgerRow
from breakwater.observability.recorder import Recorder

REQUEST = ChatRequest(model="r", messages=[Message("user", [TextPart("hi")])])


def _record(ctx: RequestContext, now: float) -> LedgerRow:
    rows: list[LedgerRow] = []
    Recorder(rows.append, PriceBook(), lambda provider: provider).record(ctx, REQUEST, 200, None, now)
    return rows[0]


def _ctx(*, stream: bool = False) -> RequestContext:
    outcome = RouteOutcome(route="r", deployment="d", provider="openai", upstream_model="m")
    ctx = RequestContext("rid", outcome=outcome, stream=stream)
    ctx.started_mono = 100.0
    return ctx


def test_a_retried_call_splits_into_upstream_time_backoff_and_overhead() -> None:
    """Two attempts (0.5 s and 0.25 s) with a 0.2 s backoff between, answered 1.0 s after arrival:
    0.75 s upstream, and the 0.05 s left once backoff is taken out is the gateway's."""
    ctx = _ctx()
    ctx.outcome.attempt_log = [
        ("d", "openai", "m", 100.01, 100.51, "Overloaded"),
        ("d", "openai", "m", 100.71, 100.96, None),
    ]
    ctx.outcome.waited_s = 0.5 + 0.2 + 0.25  # what the engine adds up: attempts and the backoff
    row = _record(ctx, 101.0)
    assert row.latency_ms == 1000.0
    assert row.upstream_ms == 750.0
    assert row.overhead_ms == 50.0


def test_a_stream_counts_upstream_time_to_its_last_event() -> None:
    """The attempt ends at the first event (0.3 s in); the stream's events run on to 2.3 s; the
    last byte leaves at 2.302 s: 2.3 s upstream, 2 ms overhead."""
    ctx = _ctx(stream=True)
    ctx.outcome.attempt_log = [("d", "openai", "m", 100.0, 100.3, None)]
    ctx.outcome.waited_s = 0.3
    ctx.tally.first_event_at, ctx.tally.last_event_at = 100.3, 102.3
    row = _record(ctx, 102.302)
    assert row.upstream_ms == 2300.0
    assert row.overhead_ms == 2.0
    assert row.ttft_ms == 300.0


def test_a_request_that_reached_no_upstream_is_all_overhead() -> None:
    """A request refused before any attempt has no upstream time; all its latency is the gateway's."""
    ctx = _ctx()
    ctx.outcome.deployment = None
    row = _record(ctx, 100.004)
    assert row.upstream_ms is None
    assert row.overhead_ms == 4.0
