"""The innermost call of the pipeline: a canonical request served through its route's deployments.

``Gateway`` describes *one attempt* on one deployment for each kind of call (chat, a chat
stream, embeddings) and hands it to the policies, each in its own module:

- ``engine/calls/fallback.py``: the route's fallback routes, one deadline for the request;
- ``engine/calls/attempts.py``: the attempts across the route's deployments (order, context
  window, breaker, retry with backoff, admission);
- ``engine/calls/upstream.py``: one upstream exchange under the deployment's timeouts;
- ``engine/calls/stream.py``: a started stream, watched (failures, slot release, resuming);
- ``engine/calls/deployments.py``: per-deployment state (breakers, statistics, limiters).

Streams fall back transparently until their first events arrive; after that, failures travel
in the stream, or resume on another deployment. A streamed answer leaves as one
``EventStream`` (``engine/tee.py``) that usage accounting, and any later stage, taps.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable

from breakwater.core.errors import ContentFiltered, InvalidRequest, UnsupportedParameter
from breakwater.core.types import (
    ChatRequest,
    ChatResponse,
    Choice,
    EmbeddingRequest,
    EmbeddingResponse,
    FinishEvent,
    Message,
    StreamEvent,
    StreamStart,
    TextDelta,
    TextPart,
)
from breakwater.engine.accounting import TallyTap
from breakwater.engine.calls.admission import ConcurrencyLimiter
from breakwater.engine.calls.attempts import Attempt, Attempts
from breakwater.engine.calls.breaker import CircuitBreaker
from breakwater.engine.calls.deployments import Deployments, Hold, OnTransition
from breakwater.engine.calls.fallback import deadline_of, with_fallbacks
from breakwater.engine.calls.moderations import moderate
from breakwater.engine.calls.params import ADVISORY, drop_params
from breakwater.engine.calls.stats import DeploymentStats
from breakwater.engine.calls.stream import WatchedStream
from breakwater.engine.calls.upstream import exchange, first_token_limit, open_stream
from breakwater.engine.context import RequestContext
from breakwater.engine.ports import Clock, RandomSource, TokenCounters
from breakwater.engine.routing import Deployment, Route, Router
from breakwater.engine.tee import EventStream
from breakwater.providers.base import HttpRequest
from breakwater.providers.openai_moderations import ModerationRequest


class Gateway:
    """Serves canonical requests through the configured routes.

    Args:
        router: the routes.
        clock, rng: time and randomness for the policies (tests inject fakes).
        on_breaker_transition: told ``(deployment, old state, new state)`` on each breaker change.
        tokens: the real tokenizers when loaded; without them prompts are measured by
            ``core.tokens.byte_estimate``.
        state: per-deployment state to start from (``Deployments.carry_over`` on a reload).
    """

    def __init__(
        self,
        router: Router,
        clock: Clock,
        rng: RandomSource,
        on_breaker_transition: OnTransition | None = None,
        tokens: TokenCounters | None = None,
        state: Deployments | None = None,
    ) -> None:
        self.router = router
        self.tokens = tokens
        self.clock = clock
        self.rng = rng
        self.state = state if state is not None else Deployments(clock, on_breaker_transition)
        self.attempts = Attempts(router, self.state, clock, rng, tokens)

    @property
    def breakers(self) -> dict[str, CircuitBreaker]:
        return self.state.breakers

    @property
    def stats(self) -> dict[str, DeploymentStats]:
        return self.state.stats

    @property
    def limiters(self) -> dict[str, ConcurrencyLimiter]:
        return self.state.limiters

    def breaker(self, deployment: Deployment) -> CircuitBreaker:
        return self.state.breaker(deployment)

    def deployments(self) -> list[dict[str, object]]:
        """Every deployment that has been used: breaker, load and latency (the admin view)."""
        return self.state.snapshot()

    # --- chat -----------------------------------------------------------------------------------

    async def chat(self, request: ChatRequest, ctx: RequestContext) -> ChatResponse:
        route = self.router.resolve(request.model)

        async def attempt(route: Route, deployment: Deployment, budget_s: float, hold: Hold) -> ChatResponse:
            prepared = self._prepare(route, deployment, request, ctx)
            http = self._http(deployment, deployment.adapter.chat_request(prepared, deployment.target), ctx)
            status, headers, body = await exchange(deployment, http, first_token_limit(deployment, budget_s))
            if status >= 400:
                raise deployment.adapter.map_error(status, headers, body, deployment.target)
            response = deployment.adapter.chat_response(body, deployment.target)
            if route.handles_refusals and _refused(response):
                raise ContentFiltered(
                    f"{deployment.target.provider} (deployment '{deployment.name}') refused the content "
                    "(finish_reason content_filter)",
                    provider=deployment.target.provider,
                )
            ctx.tally.response(response)
            return response

        try:
            return await with_fallbacks(self.attempts, route, ctx, attempt, request, deadline_of(route, self.clock))
        except ContentFiltered as refusal:
            message = _refusal_message(route, ctx, refusal)
            return ChatResponse(
                id=f"chatcmpl-{ctx.request_id}",
                model=request.model,
                created=int(self.clock.time()),
                choices=[Choice(0, Message("assistant", [TextPart(message)]), "content_filter")],
            )

    async def chat_stream(self, request: ChatRequest, ctx: RequestContext) -> EventStream:
        """Open the upstream stream and return its events, in batches: one per upstream read.

        Everything up to the first events (routing, parameters, connect, an error status, a
        stream that dies before saying anything) raises *here* or falls back to the next
        deployment, so the client never sees a failed start. Batches let the server write what
        one upstream read produced in a single send. Close the stream (``aclose``) when
        abandoning it early.
        """
        route = self.router.resolve(request.model)
        deadline = deadline_of(route, self.clock)
        try:
            watched = await with_fallbacks(
                self.attempts, route, ctx, self._stream_attempt(request, ctx, deadline), request, deadline
            )
        except ContentFiltered as refusal:
            message = _refusal_message(route, ctx, refusal)
            return EventStream(
                _canned_stream(f"chatcmpl-{ctx.request_id}", request.model, int(self.clock.time()), message)
            )
        watched.tap(TallyTap(ctx.tally, self.clock, watched.text_of))
        return watched

    def _stream_attempt(self, request: ChatRequest, ctx: RequestContext, deadline: float) -> Attempt[WatchedStream]:
        async def attempt(route: Route, deployment: Deployment, budget_s: float, hold: Hold) -> WatchedStream:
            prepared = self._prepare(route, deployment, request, ctx)
            http = self._http(deployment, deployment.adapter.chat_request(prepared, deployment.target), ctx)
            events = await open_stream(deployment, prepared, http, budget_s)
            try:
                first = await anext(events)
            except StopAsyncIteration:
                first = []
            except BaseException:
                await events.aclose()
                raise
            breaker, stats, tally = self.state.breaker(deployment), self.state.stats_of(deployment), ctx.tally
            if tally.first_event_at is None:
                tally.first_event_at = self.clock.monotonic()

            def failed() -> None:
                stats.failures += 1
                breaker.record_failure()

            resume = None
            if route.stream_failure == "continue" and request.n == 1:
                resume = self._resumer(route, deployment, request, ctx, deadline)
            return WatchedStream(
                first,
                events,
                on_failure=failed,
                release=hold.release,
                resume=resume,
                text_of=deployment.adapter.passthrough_text,
            )

        return attempt

    def _resumer(
        self, route: Route, failed: Deployment, request: ChatRequest, ctx: RequestContext, deadline: float
    ) -> Callable[[str], Awaitable[AsyncIterator[list[StreamEvent]]]]:
        async def resume(text: str) -> AsyncIterator[list[StreamEvent]]:
            continued = _with_prefix(request, text)
            ctx.outcome.fallback = True
            attempt = self._stream_attempt(continued, ctx, deadline)
            return await self.attempts.run(route, ctx, attempt, deadline, stream=True, avoid=failed.name)

        return resume

    # --- moderations ----------------------------------------------------------------------------

    async def moderations(self, request: ModerationRequest, ctx: RequestContext) -> bytes:
        """The upstream's moderation answer (``moderations.py``: OpenAI-wire deployments only)."""
        return await moderate(self, request, ctx)

    # --- embeddings -----------------------------------------------------------------------------

    async def embeddings(self, request: EmbeddingRequest, ctx: RequestContext) -> EmbeddingResponse:
        route = self.router.resolve(request.model)
        as_text: list[EmbeddingRequest] = []  # the token-id inputs decoded, once, if some deployment needs it

        async def attempt(route: Route, deployment: Deployment, budget_s: float, hold: Hold) -> EmbeddingResponse:
            prepared = request
            if request.token_inputs is not None and not deployment.adapter.token_input(deployment.target):
                if not as_text:
                    as_text.append(await self._decoded(request, deployment))
                prepared = as_text[0]
            if ctx.dlp is not None:  # what this deployment's provider may receive
                prepared = ctx.dlp.outbound_embeddings(prepared, deployment.target.provider)
            http = self._http(deployment, deployment.adapter.embeddings_request(prepared, deployment.target), ctx)
            status, headers, body = await exchange(deployment, http, min(deployment.timeouts.total, budget_s))
            if status >= 400:
                raise deployment.adapter.map_error(status, headers, body, deployment.target)
            response = deployment.adapter.embeddings_response(body, deployment.target)
            ctx.tally.usage, ctx.tally.model = response.usage, response.model or None
            return response

        return await with_fallbacks(self.attempts, route, ctx, attempt, None, deadline_of(route, self.clock))

    async def _decoded(self, request: EmbeddingRequest, deployment: Deployment) -> EmbeddingRequest:
        """``request`` with its token-id inputs as text, for an upstream that embeds text only."""
        tokens, ids = self.tokens, request.token_inputs or []
        if tokens is None:
            raise UnsupportedParameter(
                f"deployment '{deployment.name}' ({deployment.adapter.wire} wire) takes text inputs only, "
                "and this gateway has no tokenizer to decode token ids; send the text",
                param="input",
            )
        try:
            # off the loop: the first use may load the encoding's rank files
            texts = await asyncio.to_thread(lambda: [tokens.decode(t) for t in ids])
        except ValueError as exc:
            raise InvalidRequest(f"'input': {exc}", param="input") from None
        raw = request.raw
        if raw is not None:
            raw = {**raw, "input": texts}
        return dataclasses.replace(request, inputs=texts, token_inputs=None, raw=raw)

    # --- one attempt's request -------------------------------------------------------------------

    def _prepare(self, route: Route, deployment: Deployment, request: ChatRequest, ctx: RequestContext) -> ChatRequest:
        if ctx.dlp is not None:  # what this deployment's provider may receive (engine/guardrails/dlp.py)
            request = ctx.dlp.outbound(request, deployment.target.provider)
        unsupported = deployment.adapter.unsupported(request, deployment.target)
        if not unsupported:
            return request
        hints = request.responses.hints if request.responses is not None else ()
        binding = [p for p in unsupported if p not in ADVISORY and p not in hints]
        if binding and route.unsupported_params == "reject":
            name = binding[0]
            raise UnsupportedParameter(
                f"'{name}' is not supported by model '{request.model}' "
                f"(deployment '{deployment.name}', {deployment.adapter.wire} wire); "
                "remove it, or set 'unsupported_params: drop' on the route",
                param=name,
            )
        ctx.outcome.dropped_params = unsupported
        return drop_params(request, unsupported)

    def _http(self, deployment: Deployment, http: HttpRequest, ctx: RequestContext) -> HttpRequest:
        if deployment.is_mock and ctx.caller.mock_headers:
            return dataclasses.replace(http, headers={**http.headers, **ctx.caller.mock_headers})
        return http


def _refusal_message(route: Route, ctx: RequestContext, refusal: ContentFiltered) -> str:
    """The route's fixed answer to refused content; without one, the refusal stands."""
    message = route.fallbacks.content_filter_message
    if message is None:
        raise refusal
    ctx.tally.finish_reason = "content_filter"
    return message


def _refused(response: ChatResponse) -> bool:
    """Every choice was stopped by the upstream's content filter (Azure answers 200 with this)."""
    return bool(response.choices) and all(c.finish_reason == "content_filter" for c in response.choices)


def _with_prefix(request: ChatRequest, text: str) -> ChatRequest:
    """``request`` asking the model to continue ``text``, given as a trailing assistant message."""
    messages = [*request.messages, Message("assistant", [TextPart(text)])]
    raw = request.raw
    if raw is not None:
        raw = {**raw, "messages": [*raw.get("messages", []), {"role": "assistant", "content": text}]}
    return dataclasses.replace(request, messages=messages, raw=raw)


async def _canned_stream(id_: str, model: str, created: int, text: str) -> AsyncIterator[list[StreamEvent]]:
    yield [StreamStart(id_, model, created), TextDelta(text), FinishEvent("content_filter")]
