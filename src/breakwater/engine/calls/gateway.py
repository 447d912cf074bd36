"""The call pipeline: resolve the route, then attempts (retry, breaker, fallback) around one send.

``Gateway`` is what the server calls. Each public method describes *one attempt* on one
deployment; ``_attempts`` runs it across the route's deployments with the policies:

- deployments in the order the route's strategy gives (``engine/routing.py``), skipping those
  whose circuit breaker is open or cooling down after a 429 (``engine/calls/breaker.py``) and those
  whose context window the prompt does not fit (``core/tokens.py``);
- a deployment with ``max_concurrency`` admits requests through its fair queue
  (``engine/calls/admission.py``); with the route's ``overflow`` a saturated deployment is passed
  over for the next one instead;
- a failed attempt moves on to the next deployment (fallback); coming back to a deployment
  already tried is a *retry*, which needs the deployment's retry budget and waits a backoff
  with full jitter, at least the upstream's Retry-After, never past the deadline
  (``engine/calls/retry.py``);
- only retryable failures go on (429, 5xx, 529, timeouts, connection, garbage); a 400-class
  failure is returned at once, since any deployment would refuse it the same way;
- when everything failed, one error lists each attempt and why.

``_serve`` wraps that with the route's fallback routes: ``general`` after the route is
exhausted, ``context_window`` when the prompt is too long for it, ``content_filter`` (or a
fixed answer) when the upstream refused the content. One deadline covers the whole request.

Streams fall back transparently until their first events arrive; after that, failures travel
in the stream, or resume on another deployment (``engine/calls/stream.py``).
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from typing import Any, NoReturn, TypeVar

from breakwater.core.errors import (
    ContentFiltered,
    ContextLengthExceeded,
    InvalidRequest,
    Overloaded,
    RateLimited,
    Unavailable,
    UnsupportedParameter,
    UpstreamError,
    UpstreamTimeout,
)
from breakwater.core.tokens import TextCounter, byte_estimate, requested_tokens
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
from breakwater.engine.calls.admission import ConcurrencyLimiter
from breakwater.engine.calls.admission import Lease as Slot
from breakwater.engine.calls.breaker import CircuitBreaker
from breakwater.engine.calls.params import ADVISORY, drop_params
from breakwater.engine.calls.retry import RetryBudget, backoff_delay, should_retry
from breakwater.engine.calls.stats import DeploymentStats
from breakwater.engine.calls.stream import WatchedStream
from breakwater.engine.context import RequestContext
from breakwater.engine.ports import Clock, RandomSource, TokenCounters, UpstreamResponse
from breakwater.engine.routing import Deployment, Route, Router
from breakwater.providers.base import HttpRequest, StreamParser
from breakwater.providers.openai import passthrough_text

T = TypeVar("T")
#: one attempt of a call on one deployment of a route, within ``budget_s`` seconds
Attempt = Callable[[Route, Deployment, float, "Lease"], Awaitable[T]]
OnTransition = Callable[[str, str, str], None]


class Lease:
    """What one attempt holds on its deployment: an in-flight count and maybe a concurrency slot."""

    __slots__ = ("_slot", "_stats")

    def __init__(self, stats: DeploymentStats, slot: Slot | None) -> None:
        self._stats: DeploymentStats | None = stats
        self._slot = slot
        stats.in_flight += 1

    def release(self) -> None:
        """Give it back; safe to call more than once."""
        if self._stats is not None:
            self._stats.in_flight -= 1
            self._stats = None
            if self._slot is not None:
                self._slot.release()


class Gateway:
    """Serves canonical requests through the configured routes."""

    def __init__(
        self,
        router: Router,
        clock: Clock,
        rng: RandomSource,
        on_breaker_transition: OnTransition | None = None,
        tokens: TokenCounters | None = None,
    ) -> None:
        self.router = router
        #: the real tokenizers when loaded; without them prompts are measured by ``byte_estimate``
        self.tokens = tokens
        self.clock = clock
        self.rng = rng
        self.breakers: dict[str, CircuitBreaker] = {}
        self.stats: dict[str, DeploymentStats] = {}
        self.limiters: dict[str, ConcurrencyLimiter] = {}
        self._budgets: dict[str, RetryBudget] = {}
        self._on_transition = on_breaker_transition

    def breaker(self, deployment: Deployment) -> CircuitBreaker:
        breaker = self.breakers.get(deployment.name)
        if breaker is None:
            breaker = CircuitBreaker(deployment.name, deployment.breaker, self.clock, self._on_transition)
            self.breakers[deployment.name] = breaker
        return breaker

    def _stats(self, deployment: Deployment) -> DeploymentStats:
        stats = self.stats.get(deployment.name)
        if stats is None:
            stats = self.stats[deployment.name] = DeploymentStats()
        return stats

    def _limiter(self, deployment: Deployment) -> ConcurrencyLimiter | None:
        if deployment.max_concurrency is None:
            return None
        limiter = self.limiters.get(deployment.name)
        if limiter is None:
            limiter = ConcurrencyLimiter(deployment.name, deployment.max_concurrency, deployment.max_queue, self.clock)
            self.limiters[deployment.name] = limiter
        return limiter

    def _budget(self, deployment: Deployment, route: Route) -> RetryBudget:
        budget = self._budgets.get(deployment.name)
        if budget is None:
            budget = RetryBudget(route.retry, self.clock)
            self._budgets[deployment.name] = budget
        return budget

    def deployments(self) -> list[dict[str, object]]:
        """Every deployment that has been used: breaker, load and latency (the admin view)."""
        names = sorted(set(self.breakers) | set(self.stats))
        out: list[dict[str, object]] = []
        for name in names:
            breaker = self.breakers.get(name)
            limiter = self.limiters.get(name)
            row: dict[str, object] = {"name": name}
            row["breaker"] = breaker.snapshot() if breaker is not None else {"state": "closed"}
            row.update(self.stats.get(name, DeploymentStats()).snapshot())
            if limiter is not None:
                row["queue"] = limiter.snapshot()
            out.append(row)
        return out

    # --- chat -----------------------------------------------------------------------------------

    async def chat(self, request: ChatRequest, ctx: RequestContext) -> ChatResponse:
        route = self.router.resolve(request.model)

        async def attempt(route: Route, deployment: Deployment, budget_s: float, lease: Lease) -> ChatResponse:
            prepared = self._prepare(route, deployment, request, ctx)
            http = self._http(deployment, deployment.adapter.chat_request(prepared, deployment.target), ctx)
            limit = _first_token_limit(deployment, budget_s)
            status, headers, body = await self._exchange(deployment, http, limit)
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
            return await self._serve(route, ctx, attempt, request)
        except ContentFiltered:
            message = route.fallbacks.content_filter_message
            if message is None:
                raise
            ctx.tally.finish_reason = "content_filter"
            return ChatResponse(
                id=f"chatcmpl-{ctx.request_id}",
                model=request.model,
                created=int(self.clock.time()),
                choices=[Choice(0, Message("assistant", [TextPart(message)]), "content_filter")],
            )

    async def chat_stream(self, request: ChatRequest, ctx: RequestContext) -> AsyncIterator[list[StreamEvent]]:
        """Open the upstream stream and return its events, in batches: one per upstream read.

        Everything up to the first events (routing, parameters, connect, an error status, a
        stream that dies before saying anything) raises *here* or falls back to the next
        deployment, so the client never sees a failed start. Batches let the server write what
        one upstream read produced in a single send. Close the stream (``aclose``) when
        abandoning it early.
        """
        route = self.router.resolve(request.model)
        deadline = self._deadline(route)
        try:
            return await self._serve(route, ctx, self._stream_attempt(request, ctx, deadline), request, deadline)
        except ContentFiltered:
            message = route.fallbacks.content_filter_message
            if message is None:
                raise
            ctx.tally.finish_reason = "content_filter"
            return _canned_stream(f"chatcmpl-{ctx.request_id}", request.model, int(self.clock.time()), message)

    def _stream_attempt(
        self, request: ChatRequest, ctx: RequestContext, deadline: float
    ) -> Attempt[AsyncIterator[list[StreamEvent]]]:
        async def attempt(
            route: Route, deployment: Deployment, budget_s: float, lease: Lease
        ) -> AsyncIterator[list[StreamEvent]]:
            prepared = self._prepare(route, deployment, request, ctx)
            http = self._http(deployment, deployment.adapter.chat_request(prepared, deployment.target), ctx)
            events = await self._open_stream(deployment, prepared, http, budget_s)
            try:
                first = await anext(events)
            except StopAsyncIteration:
                first = []
            except BaseException:
                await events.aclose()
                raise
            breaker, stats = self.breaker(deployment), self._stats(deployment)
            tally, clock = ctx.tally, self.clock
            tally.last_event_at = clock.monotonic()
            if tally.first_event_at is None:
                tally.first_event_at = tally.last_event_at
            tally.observe(first)

            def on_batch(batch: list[StreamEvent]) -> None:
                tally.last_event_at = clock.monotonic()
                tally.observe(batch)

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
                release=lease.release,
                resume=resume,
                text_of=passthrough_text,
                on_batch=on_batch,
            )

        return attempt

    def _resumer(
        self, route: Route, failed: Deployment, request: ChatRequest, ctx: RequestContext, deadline: float
    ) -> Callable[[str], Awaitable[AsyncIterator[list[StreamEvent]]]]:
        async def resume(text: str) -> AsyncIterator[list[StreamEvent]]:
            continued = _with_prefix(request, text)
            ctx.fallback = True
            attempt = self._stream_attempt(continued, ctx, deadline)
            return await self._attempts(route, ctx, attempt, deadline, stream=True, avoid=failed.name)

        return resume

    async def _open_stream(
        self, deployment: Deployment, request: ChatRequest, http: HttpRequest, budget_s: float
    ) -> AsyncGenerator[list[StreamEvent], None]:
        timeouts = deployment.timeouts
        loop = asyncio.get_running_loop()
        deadline = loop.time() + min(timeouts.total, budget_s)
        stack = AsyncExitStack()
        try:
            async with asyncio.timeout_at(_earliest(deadline, loop.time(), timeouts.first_token)):
                response = await stack.enter_async_context(
                    deployment.sender.open(http, provider=deployment.target.provider, connect_timeout=timeouts.connect)
                )
                if response.status >= 400:
                    body = await response.read()
                    raise deployment.adapter.map_error(response.status, response.headers, body, deployment.target)
        except TimeoutError:
            await stack.aclose()
            raise _timeout(deployment, "before the stream started") from None
        except BaseException:
            await stack.aclose()
            raise
        parser = deployment.adapter.stream_parser(request, deployment.target)
        return self._events(deployment, stack, response, parser, deadline)

    async def _events(
        self,
        deployment: Deployment,
        stack: AsyncExitStack,
        response: UpstreamResponse,
        parser: StreamParser,
        deadline: float,
    ) -> AsyncGenerator[list[StreamEvent], None]:
        timeouts = deployment.timeouts
        loop = asyncio.get_running_loop()
        async with stack:
            chunks = response.iter_chunks()
            first = True
            while True:
                # one timer per chunk, bounded by the idle limit (or first-token limit) and the
                # total deadline; a timeout spanning the yields would cancel the consumer instead
                limit = timeouts.first_token if first else timeouts.idle
                try:
                    async with asyncio.timeout_at(_earliest(deadline, loop.time(), limit)):
                        chunk = await anext(chunks, None)
                except TimeoutError:
                    raise _timeout(deployment, "while streaming") from None
                if chunk is None:
                    break
                events = parser.feed(chunk)
                if events:
                    first = False
                    yield events
            tail = parser.close()
            if tail:
                yield tail

    # --- embeddings -----------------------------------------------------------------------------

    async def embeddings(self, request: EmbeddingRequest, ctx: RequestContext) -> EmbeddingResponse:
        route = self.router.resolve(request.model)
        as_text: list[EmbeddingRequest] = []  # the token-id inputs decoded, once, if some deployment needs it

        async def attempt(route: Route, deployment: Deployment, budget_s: float, lease: Lease) -> EmbeddingResponse:
            prepared = request
            if request.token_inputs is not None and not deployment.adapter.token_input(deployment.target):
                if not as_text:
                    as_text.append(await self._decoded(request, deployment))
                prepared = as_text[0]
            http = self._http(deployment, deployment.adapter.embeddings_request(prepared, deployment.target), ctx)
            status, headers, body = await self._exchange(deployment, http, min(deployment.timeouts.total, budget_s))
            if status >= 400:
                raise deployment.adapter.map_error(status, headers, body, deployment.target)
            response = deployment.adapter.embeddings_response(body, deployment.target)
            ctx.tally.usage, ctx.tally.model = response.usage, response.model or None
            return response

        return await self._serve(route, ctx, attempt, None)

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

    # --- the policies ---------------------------------------------------------------------------

    def _deadline(self, route: Route) -> float:
        limit = route.deadline_s if route.deadline_s is not None else route.deployments[0].timeouts.total
        return self.clock.monotonic() + limit

    async def _serve(
        self,
        route: Route,
        ctx: RequestContext,
        attempt: Attempt[T],
        request: ChatRequest | None,
        deadline: float | None = None,
    ) -> T:
        """The route's attempts, then its fallback routes for the kind of failure, in order."""
        deadline = self._deadline(route) if deadline is None else deadline
        stream = request is not None and request.stream
        ctx.route = route.name
        try:
            return await self._attempts(route, ctx, attempt, deadline, stream=stream, request=request)
        except UpstreamError as exc:
            first = exc
            backups = _fallback_routes(route, exc)
            if not backups:
                raise
        last: UpstreamError = first
        tried = [first.message]
        for name in backups:
            backup = self.router.resolve(name)
            ctx.fallback, ctx.fallback_route = True, backup.name
            try:
                return await self._attempts(backup, ctx, attempt, deadline, stream=stream, request=request)
            except UpstreamError as exc:
                if type(exc) is not type(first) and not (exc.retryable or isinstance(exc, Unavailable)):
                    raise  # a new kind of failure (the client's request is wrong): say so
                last = exc
                tried.append(f"then fallback route {exc.message}")
        # the class of the last failure when it was transient (so the client retries later),
        # else the route's own; the message tells the whole story
        final = last if last.retryable or isinstance(last, Unavailable) else first
        _raise_as(final, "; ".join(tried))

    async def _attempts(
        self,
        route: Route,
        ctx: RequestContext,
        attempt: Attempt[T],
        deadline: float,
        *,
        stream: bool,
        request: ChatRequest | None = None,
        avoid: str | None = None,
    ) -> T:
        order = self.router.order(route, self.stats, stream=stream)
        if avoid is not None:
            order.sort(key=lambda d: d.name == avoid)
        failures: list[str] = []
        if request is not None and route.has_windows:
            order = _fitting(order, requested_tokens(request, self._counter(order)), failures)
            if not order:
                raise ContextLengthExceeded(
                    f"model '{route.name}': the prompt does not fit any deployment ({'; '.join(failures)})",
                    param="messages",
                )
        policy = route.retry
        last: UpstreamError | None = None
        tried: set[str] = set()
        attempts = retries = index = 0
        clock = self.clock
        while attempts < policy.max_attempts and (attempts == 0 or clock.monotonic() < deadline):
            if index >= len(order):
                index = 0
                if not tried:
                    break  # every deployment skipped: nothing to come back to
            deployment = order[index]
            index += 1
            stats = self._stats(deployment)
            breaker = self.breaker(deployment)
            if not breaker.allow():
                stats.skipped += 1
                failures.append(f"{deployment.name}: skipped ({breaker.snapshot()['state']}, cooling down)")
                if len(failures) > 4 * len(order):
                    break
                continue
            budget = self._budget(deployment, route)
            if deployment.name in tried:
                # coming back to a deployment is a retry: budgeted, and after a backoff
                retries += 1
                remaining = deadline - clock.monotonic()
                delay = backoff_delay(retries, policy, self.rng, last.retry_after if last else None, remaining)
                if delay is None or not budget.try_spend():
                    breaker.release_probe()
                    break
                stats.retries += 1
                ctx.waited_s += delay
                try:
                    await clock.sleep(delay)
                except BaseException:  # cancelled (client gone): a half-open probe slot must not leak
                    breaker.release_probe()
                    raise
            limiter = self._limiter(deployment)
            slot: Slot | None = None
            if limiter is not None:
                if route.overflow and index < len(order):
                    slot = limiter.try_acquire()
                    if slot is None:
                        stats.skipped += 1
                        breaker.release_probe()
                        failures.append(f"{deployment.name}: skipped (at its max_concurrency, overflowing)")
                        continue
                else:
                    queued_at = clock.monotonic()
                    try:
                        slot = await limiter.acquire(_tenant(ctx, request), deadline)
                    except BaseException:
                        breaker.release_probe()
                        raise
                    ctx.waited_s += clock.monotonic() - queued_at
            if deployment.name not in tried:
                budget.record_request()
            tried.add(deployment.name)
            attempts += 1
            ctx.attempts += 1
            stats.attempts += 1
            fallback = deployment is not order[0]
            if fallback:
                stats.fallbacks += 1
            _record(ctx, deployment, fallback=fallback)
            lease = Lease(stats, slot)
            started = clock.monotonic()
            try:
                # a queue wait can end at the deadline itself: the attempt then times out at once
                result = await attempt(route, deployment, max(deadline - started, 0.0), lease)
            except UpstreamError as exc:
                lease.release()
                ended = clock.monotonic()
                ctx.waited_s += ended - started
                _log_attempt(ctx, deployment, started, ended, type(exc).__name__)
                last = exc
                failures.append(f"{deployment.name}: {exc.message}")
                if isinstance(exc, RateLimited):
                    if deployment.breaker.cool_down_on_429:
                        breaker.cool_down(exc.retry_after if exc.retry_after is not None else 1.0)
                    breaker.release_probe()
                elif exc.retryable:
                    stats.failures += 1
                    breaker.record_failure()
                else:
                    breaker.release_probe()
                if not should_retry(exc):
                    raise
                continue
            except BaseException as exc:
                lease.release()
                breaker.release_probe()
                _log_attempt(ctx, deployment, started, clock.monotonic(), type(exc).__name__)
                raise
            ended = clock.monotonic()
            _log_attempt(ctx, deployment, started, ended, None)
            elapsed = ended - started
            ctx.waited_s += elapsed
            stats.observe(elapsed, stream=stream)
            breaker.record_success()
            if not stream:
                lease.release()  # a stream gives it back when it ends (WatchedStream)
            return result
        raise _exhausted(route, failures, last)

    def _counter(self, order: list[Deployment]) -> TextCounter:
        """Counts text with the tokenizer of the first deployment's model (one count per request)."""
        tokens = self.tokens
        if tokens is None or not order:
            return byte_estimate
        target = order[0].target
        return lambda text: tokens.count(target.provider, target.model, text)

    def _prepare(self, route: Route, deployment: Deployment, request: ChatRequest, ctx: RequestContext) -> ChatRequest:
        unsupported = deployment.adapter.unsupported(request, deployment.target)
        if not unsupported:
            return request
        binding = [p for p in unsupported if p not in ADVISORY]
        if binding and route.unsupported_params == "reject":
            name = binding[0]
            raise UnsupportedParameter(
                f"'{name}' is not supported by model '{request.model}' "
                f"(deployment '{deployment.name}', {deployment.adapter.wire} wire); "
                "remove it, or set 'unsupported_params: drop' on the route",
                param=name,
            )
        ctx.dropped_params = unsupported
        return drop_params(request, unsupported)

    def _http(self, deployment: Deployment, http: HttpRequest, ctx: RequestContext) -> HttpRequest:
        if deployment.is_mock and ctx.mock_headers:
            return dataclasses.replace(http, headers={**http.headers, **ctx.mock_headers})
        return http

    async def _exchange(self, deployment: Deployment, http: HttpRequest, limit: float) -> tuple[int, Any, bytes]:
        try:
            async with asyncio.timeout(limit):
                async with deployment.sender.open(
                    http, provider=deployment.target.provider, connect_timeout=deployment.timeouts.connect
                ) as response:
                    return response.status, response.headers, await response.read()
        except TimeoutError:
            raise _timeout(deployment, "before answering") from None


def _record(ctx: RequestContext, deployment: Deployment, *, fallback: bool) -> None:
    ctx.deployment = deployment.name
    ctx.provider = deployment.target.provider
    ctx.upstream_model = deployment.target.model
    ctx.fallback = ctx.fallback or fallback


def _log_attempt(ctx: RequestContext, deployment: Deployment, started: float, ended: float, error: str | None) -> None:
    target = deployment.target
    ctx.attempt_log.append((deployment.name, target.provider, target.model, started, ended, error))


def _exhausted(route: Route, failures: list[str], last: UpstreamError | None) -> UpstreamError:
    """One error for a request nothing could serve: 429/503-class if that is what the upstreams
    said (so clients back off), else 503; the message lists every attempt, never an upstream body."""
    summary = f"model '{route.name}': no deployment could serve the request ({'; '.join(failures) or 'none tried'})"
    if isinstance(last, (RateLimited, Overloaded, UpstreamTimeout)):
        return type(last)(
            summary, provider=last.provider, upstream_status=last.upstream_status, retry_after=last.retry_after
        )
    return Unavailable(summary, upstream_status=last.upstream_status if last else None)


def _first_token_limit(deployment: Deployment, budget_s: float) -> float:
    t = deployment.timeouts
    limit = t.total if t.first_token is None else min(t.total, t.first_token)
    return min(limit, budget_s)


def _earliest(deadline: float, now: float, limit: float | None) -> float:
    return deadline if limit is None else min(deadline, now + limit)


def _timeout(deployment: Deployment, when: str) -> UpstreamTimeout:
    provider = deployment.target.provider
    return UpstreamTimeout(f"{provider} (deployment '{deployment.name}') timed out {when}", provider=provider)


def _raise_as(exc: UpstreamError, message: str) -> NoReturn:
    """Raise an error of ``exc``'s class and fields with ``message``."""
    raise type(exc)(
        message,
        provider=exc.provider,
        upstream_status=exc.upstream_status,
        param=exc.param,
        retry_after=exc.retry_after,
        code=exc.code,
    ) from exc


def _tenant(ctx: RequestContext, request: ChatRequest | None) -> str:
    return ctx.user or (request.user if request is not None else None) or ""


def _fitting(order: list[Deployment], tokens: int, failures: list[str]) -> list[Deployment]:
    """The deployments whose context window fits ``tokens``; the others are noted in ``failures``."""
    fit: list[Deployment] = []
    for d in order:
        if d.context_window is not None and tokens > d.context_window:
            failures.append(f"{d.name}: skipped (~{tokens} tokens requested, context window {d.context_window})")
        else:
            fit.append(d)
    return fit


def _fallback_routes(route: Route, exc: UpstreamError) -> list[str]:
    """The fallback routes for this kind of failure (none for a request the client got wrong)."""
    fallbacks = route.fallbacks
    if isinstance(exc, ContextLengthExceeded):
        return fallbacks.context_window
    if isinstance(exc, ContentFiltered):
        return fallbacks.content_filter
    if exc.retryable or isinstance(exc, Unavailable):
        return fallbacks.general
    return []


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
