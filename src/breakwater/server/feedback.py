"""``POST /v1/feedback``: a user's score, and optionally a comment and tags, on one of their requests.

The caller is authenticated as on ``/v1/chat/completions`` (the pipeline's ``begin``: the access
stage's key check, before the body is read) and may only rate its own key's requests; with access
control off, any request. The request is named by the ``x-request-id`` its answer carried. What is
stored and how the row is found is ``observability/ledger/feedback.py``; this module reads the
body, answers 201 with the stored feedback, and maps every failure to an OpenAI error body.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import orjson

from breakwater.core.errors import NotFound
from breakwater.engine.pipeline import Pipeline
from breakwater.observability.ledger.feedback import FeedbackDesk, feedback_fields
from breakwater.server import errors
from breakwater.server.asgi import Receive, Scope, Send, read_json_body, send_bytes
from breakwater.server.endpoints import RequestIds, id_headers, parse_json

#: the largest body read: a full comment (4 bytes a character at most) and full tags fit easily
MAX_FEEDBACK_BYTES = 64 * 1024


class FeedbackApi:
    """The ``POST /v1/feedback`` handler of one running configuration.

    Args:
        pipeline: authenticates the caller (``begin``).
        ids: request ids (the feedback call's own, on its answer).
        desk: where feedback goes; ``None`` when the ledger is disabled (every call answers 404).
        observe: counts one feedback by the route of the request it rates (the metrics).
        max_body_bytes: the server's body limit (the smaller of it and ``MAX_FEEDBACK_BYTES`` applies).
    """

    def __init__(
        self,
        pipeline: Pipeline,
        ids: RequestIds,
        desk: FeedbackDesk | None,
        observe: Callable[[str, float], None],
        max_body_bytes: int,
    ) -> None:
        self._pipeline = pipeline
        self._ids = ids
        self._desk = desk
        self._observe = observe
        self._limit = min(max_body_bytes, MAX_FEEDBACK_BYTES)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        ctx = self._ids.context(scope)
        try:
            self._pipeline.begin(ctx)
            request_id, score, comment, tags = feedback_fields(
                parse_json(await read_json_body(scope, receive, self._limit))
            )
            if self._desk is None:
                raise NotFound("Feedback is kept in the request ledger, which is disabled (ledger.enabled: false)")
            feedback, route = await self._desk.give(request_id, ctx.caller.key_id, score, comment, tags)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - every failure becomes an OpenAI error body
            status, headers, body = errors.openai_error(exc, ctx.request_id)
            await send_bytes(send, status, body, headers)
            return
        self._observe(route, score)
        await send_bytes(send, 201, orjson.dumps(feedback.public()), id_headers(ctx))
