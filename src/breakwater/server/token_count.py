"""Prompt token counts before a call: ``POST /v1/messages/count_tokens`` and ``POST /v1/tokens/count``.

Both are answered by the gateway itself, offline, with the tokenizer of the model the route's
first deployment serves (``infra/tokenizers/estimate.py``), never by an upstream: a count is
a pre-call estimate (Anthropic's own says so), so a fast local answer that works the same on
every route and costs no upstream quota or rate limit beats an exact one from an Anthropic
upstream only. Callers are authenticated and held to their key's routes as on chat; a count is
not a call, so it has no ledger row and no limits apply.

- ``/v1/messages/count_tokens``: Anthropic's wire (a Messages body without ``max_tokens``;
  ``{"input_tokens": N}``; errors in Anthropic's format), what ``client.messages.count_tokens``
  calls;
- ``/v1/tokens/count``: a chat completions body; ``{"object": "token_count", "input_tokens": N,
  "tokenizer", "exact", "family", "model"}``; errors in OpenAI's format.

Both say which tokenizer counted in ``x-breakwater-tokenizer``, and whether the count is the
model's own tokenizer's (``x-breakwater-token-count: exact``) or an estimate.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import orjson

from breakwater.core.errors import PermissionDenied, UnsupportedParameter
from breakwater.core.types import ChatRequest
from breakwater.engine.context import RequestContext
from breakwater.engine.pipeline import Pipeline
from breakwater.engine.routing import Router
from breakwater.infra.tokenizers import Tokenizers
from breakwater.infra.tokenizers.estimate import Estimate, estimate_chat, family_of
from breakwater.providers import anthropic_serve_request, openai_serve
from breakwater.server import errors
from breakwater.server.asgi import Headers, Receive, Scope, Send, read_json_body, send_bytes
from breakwater.server.endpoints import ErrorMapper, RequestIds, id_headers, parse_json


def decode_count_tokens(body: Any) -> ChatRequest:
    """A ``count_tokens`` body (Anthropic's Messages body, ``max_tokens`` optional) as a chat request."""
    if isinstance(body, dict) and body.get("max_tokens") is None:
        body = {**body, "max_tokens": 1}  # count_tokens bodies have none; the Messages decoder needs one
    return anthropic_serve_request.decode_chat_request(body)


class TokenCountApi:
    """The token-count handlers of one running configuration.

    Args:
        pipeline: authenticates the caller (``begin``) and says which routes it may use (``allows``).
        router: the routes, to find the model a count is for.
        tokenizers: the process's tokenizers.
        ids: request ids.
        max_body_bytes: larger bodies get 413.
    """

    def __init__(
        self, pipeline: Pipeline, router: Router, tokenizers: Tokenizers, ids: RequestIds, max_body_bytes: int
    ) -> None:
        self._pipeline = pipeline
        self._router = router
        self._tokenizers = tokenizers
        self._ids = ids
        self._limit = max_body_bytes

    async def messages(self, scope: Scope, receive: Receive, send: Send) -> None:
        """``POST /v1/messages/count_tokens``: Anthropic's request and answer."""
        await self._count(scope, receive, send, decode_count_tokens, errors.anthropic_error, _anthropic_body)

    async def chat(self, scope: Scope, receive: Receive, send: Send) -> None:
        """``POST /v1/tokens/count``: a chat completions body."""
        await self._count(scope, receive, send, openai_serve.decode_chat_request, errors.openai_error, _openai_body)

    async def _count(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        decode: Callable[[Any], ChatRequest],
        mapper: ErrorMapper,
        answer: Callable[[ChatRequest, Estimate], dict[str, Any]],
    ) -> None:
        ctx = self._ids.context(scope)
        try:
            self._pipeline.begin(ctx)
            request = decode(parse_json(await read_json_body(scope, receive, self._limit)))
            if request.prompt is not None:
                raise UnsupportedParameter(
                    "'prompt': a count does not render prompts of the registry; send the messages", param="prompt"
                )
            estimate = await self._estimate(ctx, request)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - every failure becomes an error body in the caller's format
            status, headers, payload = mapper(exc, ctx.request_id)
            await send_bytes(send, status, payload, headers)
            return
        await send_bytes(send, 200, orjson.dumps(answer(request, estimate)), _headers(id_headers(ctx), estimate))

    async def _estimate(self, ctx: RequestContext, request: ChatRequest) -> Estimate:
        route = self._router.resolve(request.model)
        if not self._pipeline.allows(ctx, route.name):
            raise PermissionDenied(
                f"This API key may not use model '{request.model}'", param="model", code="model_not_allowed"
            )
        deployment = route.deployments[0]
        provider = family_of(deployment.adapter.wire, deployment.target.host)
        model = deployment.target.model
        await self._tokenizers.load(provider, model)  # the first count of an encoding loads it, in a thread
        return estimate_chat(self._tokenizers, provider, model, request)


def _headers(base: Headers, estimate: Estimate) -> Headers:
    kind = b"exact" if estimate.exact else b"estimate"
    return [*base, (b"x-breakwater-tokenizer", estimate.tokenizer.encode()), (b"x-breakwater-token-count", kind)]


def _anthropic_body(request: ChatRequest, estimate: Estimate) -> dict[str, Any]:
    return {"input_tokens": estimate.tokens}


def _openai_body(request: ChatRequest, estimate: Estimate) -> dict[str, Any]:
    return {
        "object": "token_count",
        "model": request.model,
        "input_tokens": estimate.tokens,
        "tokenizer": estimate.tokenizer,
        "exact": estimate.exact,
        "family": estimate.family,
    }
