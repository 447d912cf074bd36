"""A moderations request served through its route's deployments, with the route's policies.

The attempts (order, breaker, retry, admission) and fallback routes are the gateway's own
(``attempts.py``, ``fallback.py``); what differs from chat is one attempt: only a deployment on
the OpenAI wire has a moderation endpoint, and the answer is the upstream's bytes, checked to be
a JSON object. A route none of whose deployments speaks OpenAI is refused before anything is
sent (a 400 naming the reason); one that mixes wires tries only its OpenAI ones.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from breakwater.core.errors import UnsupportedParameter
from breakwater.engine.calls.deployments import Hold
from breakwater.engine.calls.fallback import deadline_of, with_fallbacks
from breakwater.engine.calls.upstream import exchange
from breakwater.engine.context import RequestContext
from breakwater.engine.routing import Deployment, Route
from breakwater.providers.base import response_object
from breakwater.providers.openai import OpenAIAdapter
from breakwater.providers.openai_moderations import ModerationRequest

if TYPE_CHECKING:
    from breakwater.engine.calls.gateway import Gateway


def moderating(route: Route) -> Route:
    """``route`` with only the deployments that have a moderation endpoint.

    Raises:
        UnsupportedParameter: none has (400, ``param: model``).
    """
    kept = [(d, w) for d, w in zip(route.deployments, route.weights, strict=False) if _moderates(d)]
    if not kept:
        wires = sorted({d.adapter.wire for d in route.deployments})
        raise UnsupportedParameter(
            f"model '{route.name}' has no moderation endpoint: its deployments speak {', '.join(wires)}, "
            "and only OpenAI-wire upstreams have /v1/moderations",
            param="model",
        )
    if len(kept) == len(route.deployments):
        return route
    deployments, weights = zip(*kept, strict=True)
    return dataclasses.replace(route, deployments=tuple(deployments), weights=tuple(weights))


def _moderates(deployment: Deployment) -> bool:
    return isinstance(deployment.adapter, OpenAIAdapter)


async def moderate(gateway: Gateway, request: ModerationRequest, ctx: RequestContext) -> bytes:
    """The upstream's moderation answer to ``request`` (its bytes, a JSON object)."""
    route = moderating(gateway.router.resolve(request.model))

    async def attempt(route: Route, deployment: Deployment, budget_s: float, hold: Hold) -> bytes:
        adapter = deployment.adapter
        if not isinstance(adapter, OpenAIAdapter):  # a fallback route's deployment
            raise UnsupportedParameter(
                f"deployment '{deployment.name}' ({adapter.wire} wire) has no moderation endpoint", param="model"
            )
        sent = request if ctx.dlp is None else ctx.dlp.outbound_moderation(request, deployment.target.provider)
        http = adapter.moderations_request(sent, deployment.target)
        if deployment.is_mock and ctx.caller.mock_headers:  # as the gateway's chat attempts do
            http = dataclasses.replace(http, headers={**http.headers, **ctx.caller.mock_headers})
        status, headers, body = await exchange(deployment, http, min(deployment.timeouts.total, budget_s))
        if status >= 400:
            raise adapter.map_error(status, headers, body, deployment.target)
        response_object(body, deployment.target)  # a MalformedResponse unless a JSON object
        return body

    return await with_fallbacks(gateway.attempts, route, ctx, attempt, None, deadline_of(route, gateway.clock))
