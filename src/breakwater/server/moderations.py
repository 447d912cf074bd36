"""``POST /v1/moderations``: OpenAI's moderations, forwarded to the route's OpenAI-wire deployments.

The caller is authenticated and held to its key's routes as on chat (the pipeline's ``begin``
and ``allows``); the call goes through the route's attempts and fallbacks
(``engine/calls/moderations.py``); the exchange ends with the pipeline's ``end``, so it has a
ledger row (no tokens; cost 0) and request metrics like any other. A route served by no
OpenAI-wire deployment is a 400 in OpenAI's format saying so. The answer is the upstream's
bytes. ``model`` may be left out: the route named ``omni-moderation-latest`` is used then.
"""

from __future__ import annotations

import asyncio

from breakwater.core.errors import PermissionDenied
from breakwater.engine.calls.gateway import Gateway
from breakwater.engine.pipeline import Outcome, Pipeline
from breakwater.engine.ports import Clock
from breakwater.providers.openai_moderations import decode_moderation_request
from breakwater.server import errors
from breakwater.server.asgi import JSON_HEADERS, Receive, Scope, Send, read_json_body, send_bytes
from breakwater.server.endpoints import CLIENT_CLOSED, RequestIds, parse_json, trace_headers


class ModerationsApi:
    """The ``POST /v1/moderations`` handler of one running configuration."""

    def __init__(
        self, pipeline: Pipeline, gateway: Gateway, clock: Clock, ids: RequestIds, max_body_bytes: int
    ) -> None:
        self._pipeline = pipeline
        self._gateway = gateway
        self._clock = clock
        self._ids = ids
        self._limit = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        ctx = self._ids.context(scope)
        ctx.started_mono = started = self._clock.monotonic()
        ctx.started_at = self._clock.time()
        pipeline, outcome = self._pipeline, Outcome()
        try:
            try:
                pipeline.begin(ctx)
                request = decode_moderation_request(parse_json(await read_json_body(scope, receive, self._limit)))
                ctx.outcome.route = request.model
                route = self._gateway.router.resolve(request.model)  # an unknown model: 404 before 403
                if not pipeline.allows(ctx, route.name):
                    raise PermissionDenied(
                        f"This API key may not use model '{request.model}'", param="model", code="model_not_allowed"
                    )
                body = await pipeline.moderations(request, ctx)
            except Exception as exc:  # noqa: BLE001 - every failure becomes an OpenAI error body
                status, headers, payload = errors.openai_error(exc, ctx.request_id)
                await send_bytes(send, status, payload, headers)
                outcome.status, outcome.error = status, exc
                return
            except asyncio.CancelledError as exc:
                outcome.status, outcome.error = CLIENT_CLOSED, exc
                raise
            headers = [*JSON_HEADERS, *trace_headers(ctx, self._clock.monotonic() - started)]
            await send_bytes(send, 200, body, headers)
        finally:
            pipeline.end(ctx, outcome)
