"""The call pipeline: resolve the route, then attempts (retry, breaker, fallback) around one send.

``Gateway`` is what the server calls. Each public method describes *one attempt* on one
deployment; ``_attempts`` runs it across the route's deployments with the policies:

- deployments in the route's order, skipping those whose circuit breaker is open or cooling
  down after a 429 (``engine/breaker.py``);
- a failed attempt moves on to the next deployment (fallback); coming back to a deployment
  already tried is a *retry*, which needs the deployment's retry budget and waits a backoff
  with full jitter, at least the upstream's Retry-After, never past the deadline
  (``engine/retry.py``);
- only retryable failures go on (429, 5xx, 529, timeouts, connection, garbage); a 400-class
  failure is returned at once, since any deployment would refuse it the same way;
- when everything failed, one error lists each attempt and why.

Streams fall back transparently until their first events arrive; after that, failures travel
in the stream.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from typing import Any, TypeVar

from breakwater.core.errors import (
    Overloaded,
    RateLimited,
    Unavailable,
    UnsupportedParameter,
    UpstreamError,
    UpstreamTimeout,
)
from breakwater.core.types import ChatRequest, ChatResponse, EmbeddingRequest, EmbeddingResponse, StreamEvent
from breakwater.engine.breaker import CircuitBreaker
from breakwater.engine.context import RequestContext
from breakwater.engine.params import drop_params
from breakwater.engine.ports import Clock, RandomSource, UpstreamResponse
from breakwater.engine.retry import RetryBudget, backoff_delay, should_retry
from breakwater.engine.routing import Deployment, Route, Router
from breakwater.providers.base import HttpRequest, StreamParser

T = TypeVar("T")
Attempt = Callable[[Deployment, float], Awaitable[T]]
OnTransition = Callable[[str, str, str], None]


class Gateway:
    """Serves canonical requests through the configured routes."""

    def __init__(
        self,
        router: Router,
        clock: Clock,
        rng: RandomSource,
        on_breaker_transition: OnTransition | None = None,
    ) -> None:
        self.router = router
        self.clock = clock
        self.rng = rng
        self.breakers: dict[str, CircuitBreaker] = {}
        self._budgets: dict[str, RetryBudget] = {}
        self._on_transition = on_breaker_transition

    def breaker(self, deployment: Deployment) -> CircuitBreaker:
        breaker = self.breakers.get(deployment.name)
        if breaker is None:
            breaker = CircuitBreaker(deployment.name, deployment.breaker, self.clock, self._on_transition)
            self.breakers[deployment.name] = breaker
        return breaker

    def _budget(self, deployment: Deployment, route: Route) -> RetryBudget:
        budget = self._budgets.get(deployment.name)
        if budget is None:
            budget = RetryBudget(route.retry, self.clock)
            self._budgets[deployment.name] = budget
        return budget

    # --- chat -----------------------------------------------------------------------------------

    async def chat(self, request: ChatRequest, ctx: RequestContext) -> ChatResponse:
        route = self.router.resolve(request.model)

        async def attempt(deployment: Deployment, budget_s: float) -> ChatResponse:
            prepared = self._prepare(route, deployment, request, ctx)
            http = self._http(deployment, deployment.adapter.chat_request(prepared, deployment.target), ctx)
            limit = _first_token_limit(deployment, budget_s)
            status, headers, body = await self._exchange(deployment, http, limit)
            if status >= 400:
                raise deployment.adapter.map_error(status, headers, body, deployment.target)
            return deployment.adapter.chat_response(body, deployment.target)

        return await self._attempts(route, ctx, attempt)

    async def chat_stream(self, request: ChatRequest, ctx: RequestContext) -> AsyncIterator[list[StreamEvent]]:
        """Open the upstream stream and return its events, in batches: one per upstream read.

        Everything up to the first events (routing, parameters, connect, an error status, a
        stream that dies before saying anything) raises *here* or falls back to the next
        deployment, so the client never sees a failed start. Batches let the server write what
        one upstream read produced in a single send.
        """
        route = self.router.resolve(request.model)

        async def attempt(deployment: Deployment, budget_s: float) -> AsyncIterator[list[StreamEvent]]:
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
            return self._watched(deployment, first, events)

        return await self._attempts(route, ctx, attempt)

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

    async def _watched(
        self, deployment: Deployment, first: list[StreamEvent], rest: AsyncIterator[list[StreamEvent]]
    ) -> AsyncIterator[list[StreamEvent]]:
        """The started stream; a failure after the start still counts against the breaker."""
        if first:
            yield first
        try:
            async for batch in rest:
                yield batch
        except UpstreamError:
            self.breaker(deployment).record_failure()
            raise

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

        async def attempt(deployment: Deployment, budget_s: float) -> EmbeddingResponse:
            http = self._http(deployment, deployment.adapter.embeddings_request(request, deployment.target), ctx)
            status, headers, body = await self._exchange(deployment, http, min(deployment.timeouts.total, budget_s))
            if status >= 400:
                raise deployment.adapter.map_error(status, headers, body, deployment.target)
            return deployment.adapter.embeddings_response(body, deployment.target)

        return await self._attempts(route, ctx, attempt)

    # --- the policies ---------------------------------------------------------------------------

    async def _attempts(self, route: Route, ctx: RequestContext, attempt: Attempt[T]) -> T:
        order = self.router.order(route)
        ctx.route = route.name
        policy = route.retry
        start = self.clock.monotonic()
        deadline = start + order[0].timeouts.total
        failures: list[str] = []
        last: UpstreamError | None = None
        tried: set[str] = set()
        retries = 0
        index = 0
        while ctx.attempts < policy.max_attempts:
            if index >= len(order):
                index = 0
                if not tried:
                    break  # every deployment skipped: nothing to come back to
            deployment = order[index]
            index += 1
            breaker = self.breaker(deployment)
            if not breaker.allow():
                failures.append(f"{deployment.name}: skipped ({breaker.snapshot()['state']}, cooling down)")
                if len(failures) > 4 * len(order):
                    break
                continue
            remaining = deadline - self.clock.monotonic()
            budget = self._budget(deployment, route)
            if deployment.name in tried:
                # coming back to a deployment is a retry: budgeted, and after a backoff
                retries += 1
                delay = backoff_delay(retries, policy, self.rng, last.retry_after if last else None, remaining)
                if delay is None or not budget.try_spend():
                    breaker.release_probe()
                    break
                await self.clock.sleep(delay)
                remaining = deadline - self.clock.monotonic()
            else:
                budget.record_request()
            tried.add(deployment.name)
            ctx.attempts += 1
            _record(ctx, deployment, fallback=deployment is not order[0])
            try:
                result = await attempt(deployment, max(remaining, 0.001))
            except UpstreamError as exc:
                last = exc
                failures.append(f"{deployment.name}: {exc.message}")
                if isinstance(exc, RateLimited):
                    if deployment.breaker.cool_down_on_429:
                        breaker.cool_down(exc.retry_after if exc.retry_after is not None else 1.0)
                    breaker.release_probe()
                elif exc.retryable:
                    breaker.record_failure()
                else:
                    breaker.release_probe()
                if not should_retry(exc):
                    raise
                continue
            except BaseException:
                breaker.release_probe()
                raise
            breaker.record_success()
            return result
        raise _exhausted(route, failures, last)

    def _prepare(self, route: Route, deployment: Deployment, request: ChatRequest, ctx: RequestContext) -> ChatRequest:
        unsupported = deployment.adapter.unsupported(request, deployment.target)
        if not unsupported:
            return request
        if route.unsupported_params == "reject":
            name = unsupported[0]
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
    ctx.fallback = ctx.fallback or fallback


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
