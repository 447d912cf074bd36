"""One upstream exchange on one deployment, under its timeouts: a whole answer, or a stream opened.

The deployment's ``timeouts``: ``connect`` (the sender's), ``first_token`` (until the status
line, and until the first events of a stream), ``idle`` (between two chunks of a stream) and
``total``, all bounded by what is left of the request's deadline. A timeout becomes
``UpstreamTimeout`` naming the deployment and when it happened.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from contextlib import AsyncExitStack
from typing import Any

from breakwater.core.errors import UpstreamTimeout
from breakwater.core.types import ChatRequest, StreamEvent
from breakwater.engine.ports import UpstreamResponse
from breakwater.engine.routing import Deployment
from breakwater.providers.base import HttpRequest, StreamParser


async def exchange(deployment: Deployment, http: HttpRequest, limit_s: float) -> tuple[int, Any, bytes]:
    """Send ``http`` and read the whole answer (status, headers, body) within ``limit_s`` seconds."""
    try:
        async with asyncio.timeout(limit_s):
            async with deployment.sender.open(
                http, provider=deployment.target.provider, connect_timeout=deployment.timeouts.connect
            ) as response:
                return response.status, response.headers, await response.read()
    except TimeoutError:
        raise _timeout(deployment, "before answering") from None


async def open_stream(
    deployment: Deployment, request: ChatRequest, http: HttpRequest, budget_s: float
) -> AsyncGenerator[list[StreamEvent], None]:
    """Send ``http`` and return its events, a batch per upstream read, once the status is good.

    An error status raises here, mapped by the deployment's adapter.
    """
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
    return _events(deployment, stack, response, parser, deadline)


async def _events(
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


def first_token_limit(deployment: Deployment, budget_s: float) -> float:
    """How long a whole chat answer may take: the first-token limit (none: the total), within ``budget_s``."""
    t = deployment.timeouts
    limit = t.total if t.first_token is None else min(t.total, t.first_token)
    return min(limit, budget_s)


def _earliest(deadline: float, now: float, limit: float | None) -> float:
    return deadline if limit is None else min(deadline, now + limit)


def _timeout(deployment: Deployment, when: str) -> UpstreamTimeout:
    provider = deployment.target.provider
    return UpstreamTimeout(f"{provider} (deployment '{deployment.name}') timed out {when}", provider=provider)
