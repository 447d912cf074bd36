"""OpenAI's Responses API: ``POST /v1/responses``, ``GET`` and ``DELETE /v1/responses/{id}``.

``POST`` is the chat flow of ``server/endpoints.py`` with the Responses codec
(``providers/openai_responses_request.py``, ``openai_responses_serve.py``) and one step on each
side of the pipeline call: a ``previous_response_id`` is looked up in the responses' store (the
caller's key's records only: another key's is a 404, as if it did not exist) and its
conversation put before the new input; the answer (``store`` not false) is kept before its last
byte goes out, so a client continuing it at once finds it. Every upstream wire serves it through
the canonical types; an upstream that serves ``/responses`` itself (OpenAI) gets the body as sent
and its answer goes back as it came (``providers/openai_responses_forward.py``), kept all the same.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import orjson

from breakwater.core.errors import MethodNotAllowed, NotFound
from breakwater.core.ids import IdGenerator
from breakwater.core.types import ChatResponse
from breakwater.engine.context import RequestContext
from breakwater.engine.pipeline import Outcome
from breakwater.engine.responses.store import ResponseStore, StoredResponse
from breakwater.providers import openai_responses_serve as serve
from breakwater.providers.openai_responses_request import ResponsesRequest, decode_responses_request, with_history
from breakwater.server import errors
from breakwater.server.asgi import JSON_HEADERS, Receive, Scope, Send, read_json_body, send_bytes
from breakwater.server.endpoints import (
    CLIENT_CLOSED,
    ChatCodec,
    Endpoints,
    fail_with,
    id_headers,
    parse_json,
    trace_headers,
)

log = logging.getLogger("breakwater.server")

T = TypeVar("T")

#: the path prefix of one stored response
PREFIX = "/v1/responses/"


class ResponsesApi:
    """The Responses API handlers of one running configuration.

    Args:
        endpoints: the chat flow's handlers (context, pipeline, stream sending).
        store: where responses are kept (``engine/responses/store.py``).
        ttl_s: how long a stored response can be continued or read.
    """

    def __init__(self, endpoints: Endpoints, store: ResponseStore, ttl_s: float) -> None:
        self._ep = endpoints
        self._store = store
        self._ttl = ttl_s
        self._ids = IdGenerator(12)

    def new_id(self, prefix: str) -> str:
        return prefix + self._ids.new()

    def handles(self, path: str) -> bool:
        return path.startswith(PREFIX) and len(path) > len(PREFIX)

    async def create(self, scope: Scope, receive: Receive, send: Send) -> None:
        """``POST /v1/responses``."""
        ep = self._ep
        ctx = ep.context_of(scope)
        pipeline, outcome = ep.pipeline, Outcome()
        try:
            try:
                pipeline.begin(ctx)
                decoded = decode_responses_request(parse_json(await read_json_body(scope, receive, ep.max_body_bytes)))
                owner = ctx.caller.key_id or ""
                history: list[dict[str, Any]] = []
                if decoded.previous_response_id is not None:
                    history = await self._previous(decoded.previous_response_id, owner)
                    with_history(decoded, history)
                request = outcome.request = decoded.chat
                answer = await pipeline.chat(request, ctx)
                response_id, created = self.new_id("resp_"), int(ep.clock.time())
                if isinstance(answer, ChatResponse):
                    if answer.raw_body is not None and answer.raw_kind == "responses":  # forwarded: as it came
                        body, response = answer.raw_body, orjson.loads(answer.raw_body)
                    else:
                        response = serve.encode_response(answer, decoded, response_id, created, self.new_id)
                        body = orjson.dumps(response)
                    if decoded.store:
                        await self._keep(decoded, history, response, owner)
            except Exception as exc:  # noqa: BLE001 - every failure becomes a mapped error response
                outcome.status, outcome.error = await fail_with(send, errors.openai_error, exc, ctx), exc
                return
            except asyncio.CancelledError as exc:
                outcome.status, outcome.error = CLIENT_CLOSED, exc
                raise
            if isinstance(answer, ChatResponse):
                headers = [*JSON_HEADERS, *trace_headers(ctx, ep.clock.monotonic() - ctx.started_mono)]
                await send_bytes(send, 200, body, headers)
                return
            encoder = serve.StreamEncoder(decoded, response_id, created, self.new_id)
            codec = ChatCodec("openai", lambda _: request, lambda _: b"", lambda _: encoder, errors.openai_error)

            async def keep() -> None:
                if decoded.store and encoder.response is not None:
                    await self._keep(decoded, history, encoder.response, owner)

            await ep.stream_answer(codec, send, ctx, outcome, request, answer, keep)
        finally:
            pipeline.end(ctx, outcome)

    async def _previous(self, response_id: str, owner: str) -> list[dict[str, Any]]:
        record = await self._call(self._store.response_get(response_id, owner, self._ep.clock.time()))
        if record is None:
            raise NotFound(f"Previous response with id '{response_id}' not found.", param="previous_response_id")
        return record.items

    async def _keep(
        self, decoded: ResponsesRequest, history: list[dict[str, Any]], response: dict[str, Any], owner: str
    ) -> None:
        now = self._ep.clock.time()
        items = [*history, *decoded.items, *response["output"]]
        record = StoredResponse(response["id"], owner, now, now + self._ttl, items, response)
        await self._call(self._store.response_put(record, now))

    async def _call(self, work: Awaitable[T]) -> T:
        """A store call; its failure is a 503 (the answer cannot be continued without it)."""
        message = (
            "The gateway's responses store is unavailable; retry, or send 'store': false without 'previous_response_id'"
        )
        return await errors.store_call(work, "responses", message, "responses_store_unavailable")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """``GET`` or ``DELETE /v1/responses/{id}`` (another key's response is not found)."""
        ep, method = self._ep, scope["method"]
        response_id = scope["path"][len(PREFIX) :]
        ctx = RequestContext(ep.ids.of(scope))
        try:
            ctx = ep.caller_of(scope)
            owner = ctx.caller.key_id or ""
            if "/" in response_id:  # input_items, cancel: OpenAI's, not served here
                raise NotFound(f"Unknown path {scope['path']}; the gateway serves GET and DELETE /v1/responses/{{id}}")
            handler = _HANDLERS.get(method)
            if handler is None:
                raise MethodNotAllowed(f"Method {method} is not allowed on {scope['path']}; use DELETE or GET", _ALLOW)
            status, body = await handler(self, response_id, owner)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - every failure becomes an OpenAI error body
            await fail_with(send, errors.openai_error, exc, ctx)
            return
        await send_bytes(send, status, body, id_headers(ctx))

    async def _get(self, response_id: str, owner: str) -> tuple[int, bytes]:
        record = await self._call(self._store.response_get(response_id, owner, self._ep.clock.time()))
        if record is None:
            raise NotFound(f"Response with id '{response_id}' not found.")
        return 200, orjson.dumps(record.response)

    async def _delete(self, response_id: str, owner: str) -> tuple[int, bytes]:
        if not await self._call(self._store.response_delete(response_id, owner)):
            raise NotFound(f"Response with id '{response_id}' not found.")
        return 200, orjson.dumps({"id": response_id, "object": "response", "deleted": True})


_ALLOW = ["DELETE", "GET"]
_HANDLERS: dict[str, Callable[[ResponsesApi, str, str], Awaitable[tuple[int, bytes]]]] = {
    "GET": ResponsesApi._get,
    "DELETE": ResponsesApi._delete,
}
