"""Turns a finished request into its ledger row: tokens, cost, latency, attribution.

``Recorder.record`` runs once per request after its last byte went out (success or failure)
and only builds a row and hands it to the ``LedgerWriter``'s in-memory queue: the database
write happens later, in batches, off the request path.

Usage reported by the upstream is authoritative. When none came (a self-hosted server that
ignores ``stream_options.include_usage``, an upstream that failed mid-stream), the row is
marked ``usage_estimated`` and counted from the prompt (the deployment's tokenizer) and the
content chunks streamed (about one token each) or the answer's text. Cost is
``core.pricing.cost`` at the deployment's price (``engine.prices.PriceBook``); with no known
price it is ``None`` (and counted in ``PriceBook.unknown``), never a guess.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import TYPE_CHECKING

from breakwater.core.ids import IdGenerator
from breakwater.core.prices import PriceBook
from breakwater.core.pricing import cost
from breakwater.core.tokens import estimate_prompt_tokens
from breakwater.core.types import ChatRequest, Usage
from breakwater.engine.context import Baseline, RequestContext, SpentCall
from breakwater.engine.ports import TokenCounters, text_counter
from breakwater.observability.capture import Capture
from breakwater.observability.ledger.row import LedgerRow

if TYPE_CHECKING:  # opentelemetry is imported only by a gateway with tracing on
    from breakwater.observability.tracing import Tracer

_ZERO = Decimal(0)

#: provider name -> whose list prices it is billed at (``Wiring.price_host``)
HostOf = Callable[[str], str | None]


class Recorder:
    """Builds one ``LedgerRow`` per request and submits it to ``sink`` (the ledger writer)."""

    def __init__(
        self,
        sink: Callable[[LedgerRow], None],
        prices: PriceBook,
        host_of: HostOf,
        tokens: TokenCounters | None = None,
        tracer: Tracer | None = None,
    ) -> None:
        self._sink = sink
        #: prompt/answer capture, when some route asks for it (set by the app)
        self.capture: Capture | None = None
        self._tracer = tracer
        self._prices = prices
        self._host_of = host_of
        self._tokens = tokens
        self._ids = IdGenerator()

    def also(self, observer: Callable[[LedgerRow], None]) -> None:
        """Submit every row to ``observer`` too (an in-process eval reads each call's cost from it)."""
        sink = self._sink

        def both(row: LedgerRow) -> None:
            sink(row)
            observer(row)

        self._sink = both

    def record(
        self,
        ctx: RequestContext,
        request: ChatRequest | None,
        status: int,
        error: BaseException | None,
        now_mono: float,
    ) -> LedgerRow:
        tally, outcome, caller = ctx.tally, ctx.outcome, ctx.caller
        latency_s = max(now_mono - ctx.started_mono, 0.0)
        ttft_s = None
        if ctx.stream and tally.first_event_at is not None:
            ttft_s = max(tally.first_event_at - ctx.started_mono, 0.0)
        usage, estimated = tally.usage, False
        cache = ctx.cache
        cost_usd: Decimal | None = None
        saved_usd: Decimal | None = None
        routing_saved: Decimal | None = None
        if cache is not None and cache.served:
            # no upstream was paid for this answer: nothing used, nothing spent; what the call
            # it replaced cost is what the cache saved
            usage, cost_usd = Usage(), _ZERO
            price = self._prices.known(cache.deployment, self._host_of(cache.provider), cache.upstream_model)
            if price is not None:  # (looked up without counting: no call was left unpriced)
                saved_usd = cost(cache.usage or Usage(), price).total
        else:
            if usage is None and outcome.deployment is not None and request is not None:
                usage, estimated = self._estimate(ctx, request), True
            usage = usage or Usage()
            if outcome.deployment is not None and outcome.upstream_model is not None:
                cost_usd = self._cost(outcome.deployment, outcome.provider or "", outcome.upstream_model, usage)
            answered = usage
            answer_cost = cost_usd
            if outcome.earlier:  # a cascade's escalated steps, its judge: paid for too
                usage, cost_usd = self._with_earlier(outcome.earlier, usage, cost_usd)
            if outcome.baseline is not None and answer_cost is not None and cost_usd is not None:
                routing_saved = self._routing_saved(outcome.baseline, outcome.branch, answered, answer_cost, cost_usd)
        upstream_s, overhead_s = _split(ctx, latency_s)
        generating_s = latency_s - (ttft_s or 0.0)
        tps = usage.output_tokens / generating_s if usage.output_tokens and generating_s > 0 else None
        row = LedgerRow(
            id=self._ids.new(),
            request_id=ctx.request_id,
            trace_id=f"{ctx.trace.trace_id:032x}" if ctx.trace.trace_id else None,
            ts=ctx.started_at,
            key_id=caller.key_id or "",
            user=caller.user or (request.user if request is not None and request.user else ""),
            tags=caller.tags,
            route=outcome.route or (request.model if request is not None else ""),
            deployment=outcome.deployment or "",
            provider=outcome.provider or "",
            upstream_model=tally.model or outcome.upstream_model or "",
            attempts=outcome.attempts,
            fallback=outcome.fallback,
            status=status,
            error_class=type(error).__name__ if error is not None else None,
            finish_reason=tally.finish_reason,
            input_tokens=usage.input_tokens,
            cached_input_tokens=usage.cached_input_tokens,
            cache_write_tokens=usage.cache_creation_input_tokens,
            output_tokens=usage.output_tokens,
            reasoning_tokens=usage.reasoning_tokens,
            cost_usd=cost_usd,
            latency_ms=round(latency_s * 1000, 3),
            ttft_ms=None if ttft_s is None else round(ttft_s * 1000, 3),
            output_tps=None if tps is None else round(tps, 2),
            stream=ctx.stream,
            cache=None if cache is None else cache.status,
            usage_estimated=estimated,
            prompt=None,
            response=None,
            upstream_ms=None if upstream_s is None else round(upstream_s * 1000, 3),
            overhead_ms=round(overhead_s * 1000, 3),
            dropped_params=",".join(outcome.dropped_params) if outcome.dropped_params else None,
            saved_usd=saved_usd,
            branch=outcome.branch,
            decision=outcome.decision,
            shadow_of=outcome.shadow_of,
            shadow_exact=outcome.shadow_exact,
            shadow_similarity=outcome.shadow_similarity,
            prompt_name=None if ctx.prompt is None else ctx.prompt[0],
            prompt_version=None if ctx.prompt is None else ctx.prompt[1],
            variant=outcome.variant,
            refused=ctx.refused,
            output_flags=None if ctx.output_flags is None else ",".join(ctx.output_flags),
            injection_score=ctx.injection_score,
            injection_action=ctx.injection_action,
            dlp_findings=None if ctx.dlp is None else ctx.dlp.summary(),
            trimmed_messages=None if ctx.trimmed is None else ctx.trimmed.messages,
            trimmed_tokens=None if ctx.trimmed is None else ctx.trimmed.tokens,
            trim_summary=None if ctx.trimmed is None else ctx.trimmed.summary,
            region=outcome.region,
            routing_saved_usd=routing_saved,
        )
        if request is not None:
            _parameters(row, request)
        if self.capture is not None and ctx.tally.capture:
            self.capture.fill(row, ctx, request)
        self._sink(row)
        if self._tracer is not None:
            self._tracer.record(ctx, request, row, now_mono)
        return row

    def _with_earlier(
        self, earlier: list[SpentCall], usage: Usage, cost_usd: Decimal | None
    ) -> tuple[Usage, Decimal | None]:
        """Tokens and cost of the answer plus every call paid for before it (unpriced if any is)."""
        calls = [usage, *(call.usage for call in earlier)]
        total = Usage(
            input_tokens=sum(u.input_tokens for u in calls),
            output_tokens=sum(u.output_tokens for u in calls),
            cached_input_tokens=sum(u.cached_input_tokens for u in calls),
            cache_creation_input_tokens=sum(u.cache_creation_input_tokens for u in calls),
            reasoning_tokens=sum(u.reasoning_tokens for u in calls),
        )
        for call in earlier:
            spent = (
                self._cost(call.deployment, call.provider, call.upstream_model, call.usage) if call.deployment else None
            )
            cost_usd = None if cost_usd is None or spent is None else cost_usd + spent
        return total, cost_usd

    def _routing_saved(
        self, baseline: Baseline, branch: str | None, answered: Usage, answer_cost: Decimal, paid: Decimal
    ) -> Decimal | None:
        """What the answer's tokens would have cost at the baseline branch, minus what was paid
        (every step of a cascade); the baseline branch's own answer costs what it cost, so a
        cascade that escalated to it saved minus its earlier steps. ``None``: no baseline price."""
        if branch == baseline.branch:
            return answer_cost - paid
        price = self._prices.known(baseline.deployment, self._host_of(baseline.provider), baseline.upstream_model)
        return None if price is None else cost(answered, price).total - paid

    def _cost(self, deployment: str, provider: str, model: str, usage: Usage) -> Decimal | None:
        """``usage`` at the deployment's price, or ``None`` when its price is unknown."""
        price = self._prices.price_for(deployment, self._host_of(provider), model)
        return None if price is None else cost(usage, price).total

    def _estimate(self, ctx: RequestContext, request: ChatRequest) -> Usage:
        model = ctx.outcome.upstream_model or request.model
        count = text_counter(self._tokens, self._host_of(ctx.outcome.provider or ""), model)
        tally = ctx.tally
        output = tally.chunks if ctx.stream else count(tally.output_text or "")
        return Usage(input_tokens=estimate_prompt_tokens(request, count), output_tokens=output)


#: the bounds of a 64-bit integer column (PostgreSQL's BIGINT, SQLite's INTEGER)
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


def _parameters(row: LedgerRow, request: ChatRequest) -> None:
    """The request's parameters, as its client sent them (every wire decodes into ``ChatRequest``);
    an integer no store column can hold is left out rather than failing the batch."""
    row.temperature = request.temperature
    row.top_p = request.top_p
    row.max_tokens = _int64(request.max_tokens)
    row.seed = _int64(request.seed)
    row.has_tools = bool(request.tools)
    row.response_format = None if request.response_format is None else request.response_format.type


def _int64(value: int | None) -> int | None:
    return value if value is not None and _INT64_MIN <= value <= _INT64_MAX else None


def _split(ctx: RequestContext, latency_s: float) -> tuple[float | None, float]:
    """(upstream time, gateway overhead) of a finished request. Upstream time is every attempt's
    call (for a stream, the attempt lasts to its first event) plus a stream's time from its first
    event to its last; the overhead is what remains of the latency once upstream time, backoff
    and queue waits (``ctx.outcome.waited_s`` holds all three, streams' tails excepted) are taken out."""
    tally, outcome = ctx.tally, ctx.outcome
    tail = 0.0
    if ctx.stream and tally.first_event_at is not None and tally.last_event_at is not None:
        tail = max(tally.last_event_at - tally.first_event_at, 0.0)
    overhead = max(latency_s - outcome.waited_s - tail, 0.0)
    if not outcome.attempt_log:
        return None, overhead
    return sum(ended - started for _, _, _, started, ended, _ in outcome.attempt_log) + tail, overhead
