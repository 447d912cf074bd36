"""A route's fallback routes, by the kind of failure, under one deadline for the whole request.

``general`` after the route is exhausted (a transient failure), ``context_window`` when the
prompt is too long for it, ``content_filter`` when the upstream refused the content (the
gateway answers a route's fixed ``content_filter_message`` when it has no such route). A new
kind of failure on a fallback route (the client's request is wrong) is said at once.
"""

from __future__ import annotations

from typing import NoReturn, TypeVar

from breakwater.core.errors import ContentFiltered, ContextLengthExceeded, Unavailable, UpstreamError
from breakwater.core.types import ChatRequest
from breakwater.engine.calls.attempts import Attempt, Attempts
from breakwater.engine.context import RequestContext
from breakwater.engine.ports import Clock
from breakwater.engine.routing import Route

T = TypeVar("T")


def deadline_of(route: Route, clock: Clock) -> float:
    """When the request must be answered by: the route's deadline, else its first deployment's total timeout."""
    limit = route.deadline_s if route.deadline_s is not None else route.deployments[0].timeouts.total
    return clock.monotonic() + limit


async def with_fallbacks(
    attempts: Attempts,
    route: Route,
    ctx: RequestContext,
    attempt: Attempt[T],
    request: ChatRequest | None,
    deadline: float,
) -> T:
    """The route's attempts, then its fallback routes for the kind of failure, in order."""
    stream = request is not None and request.stream
    ctx.outcome.route = route.name
    try:
        return await attempts.run(route, ctx, attempt, deadline, stream=stream, request=request)
    except UpstreamError as exc:
        first = exc
        backups = _fallback_routes(route, exc)
        if not backups:
            raise
    last: UpstreamError = first
    tried = [first.message]
    for name in backups:
        backup = attempts.router.resolve(name)
        ctx.outcome.fallback, ctx.outcome.fallback_route = True, backup.name
        try:
            return await attempts.run(backup, ctx, attempt, deadline, stream=stream, request=request)
        except UpstreamError as exc:
            if type(exc) is not type(first) and not (exc.retryable or isinstance(exc, Unavailable)):
                raise  # a new kind of failure (the client's request is wrong): say so
            last = exc
            tried.append(f"then fallback route {exc.message}")
    # the class of the last failure when it was transient (so the client retries later),
    # else the route's own; the message tells the whole story
    final = last if last.retryable or isinstance(last, Unavailable) else first
    _raise_as(final, "; ".join(tried))


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
