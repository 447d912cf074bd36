"""The call pipeline: resolve the route, choose a deployment, check parameters, send, parse.

``Gateway`` is what the server calls. Policies from later stages (retry, breaker, fallback,
limits, caching) wrap ``_send_*`` with the same signature; this module stays the one place
that talks to an adapter and a sender.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from typing import Any

from breakwater.core.errors import UnsupportedParameter, UpstreamTimeout
from breakwater.core.types import ChatRequest, ChatResponse, EmbeddingRequest, EmbeddingResponse, StreamEvent
from breakwater.engine.context import RequestContext
from breakwater.engine.params import drop_params
from breakwater.engine.ports import UpstreamResponse
from breakwater.engine.routing import Deployment, Route, Router
from breakwater.providers.base import HttpRequest, StreamParser


class Gateway:
    """Serves canonical requests through the configured routes."""

    def __init__(self, router: Router) -> None:
        self.router = router

    # --- chat -----------------------------------------------------------------------------------

    async def chat(self, request: ChatRequest, ctx: RequestContext) -> ChatResponse:
        deployment, request = self._prepare(request, ctx)
        http = self._http(deployment, deployment.adapter.chat_request(request, deployment.target), ctx)
        status, headers, body = await self._exchange(deployment, http, _first_token_deadline(deployment))
        if status >= 400:
            raise deployment.adapter.map_error(status, headers, body, deployment.target)
        return deployment.adapter.chat_response(body, deployment.target)

    async def chat_stream(self, request: ChatRequest, ctx: RequestContext) -> AsyncIterator[list[StreamEvent]]:
        """Open the upstream stream and return its events, in batches: one per upstream read.

        Batches let the server write everything one upstream read produced in a single send
        (one syscall instead of one per SSE frame, the largest cost of a stream in profiles).

        Everything that can fail before the first byte reaches the client (routing, parameters,
        connect, an error status) raises *here*, so the server can still answer with a proper
        HTTP error. Failures while iterating raise from the iterator.
        """
        deployment, request = self._prepare(request, ctx)
        http = self._http(deployment, deployment.adapter.chat_request(request, deployment.target), ctx)
        timeouts = deployment.timeouts
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeouts.total
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
    ) -> AsyncIterator[list[StreamEvent]]:
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
        deployment = self.router.order(route)[0]
        _record(ctx, route, deployment)
        http = self._http(deployment, deployment.adapter.embeddings_request(request, deployment.target), ctx)
        status, headers, body = await self._exchange(deployment, http, deployment.timeouts.total)
        if status >= 400:
            raise deployment.adapter.map_error(status, headers, body, deployment.target)
        return deployment.adapter.embeddings_response(body, deployment.target)

    # --- shared steps ---------------------------------------------------------------------------

    def _prepare(self, request: ChatRequest, ctx: RequestContext) -> tuple[Deployment, ChatRequest]:
        route = self.router.resolve(request.model)
        deployment = self.router.order(route)[0]
        _record(ctx, route, deployment)
        unsupported = deployment.adapter.unsupported(request, deployment.target)
        if unsupported:
            if route.unsupported_params == "reject":
                name = unsupported[0]
                raise UnsupportedParameter(
                    f"'{name}' is not supported by model '{request.model}' "
                    f"(deployment '{deployment.name}', {deployment.adapter.wire} wire); "
                    "remove it, or set 'unsupported_params: drop' on the route",
                    param=name,
                )
            ctx.dropped_params = unsupported
            request = drop_params(request, unsupported)
        return deployment, request

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


def _record(ctx: RequestContext, route: Route, deployment: Deployment) -> None:
    ctx.route = route.name
    ctx.deployment = deployment.name
    ctx.provider = deployment.target.provider
    ctx.attempts += 1


def _first_token_deadline(deployment: Deployment) -> float:
    t = deployment.timeouts
    return t.total if t.first_token is None else min(t.total, t.first_token)


def _earliest(deadline: float, now: float, limit: float | None) -> float:
    return deadline if limit is None else min(deadline, now + limit)


def _timeout(deployment: Deployment, when: str) -> UpstreamTimeout:
    provider = deployment.target.provider
    return UpstreamTimeout(f"{provider} (deployment '{deployment.name}') timed out {when}", provider=provider)
