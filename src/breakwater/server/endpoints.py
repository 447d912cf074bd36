"""The client-facing endpoints: chat (OpenAI and Anthropic formats), embeddings, models, health.

Chat is one flow parameterised by the client's wire format (``ChatCodec``): read and decode the
body, call the engine, encode the answer or the stream. Errors before the response starts go
through ``breakwater.server.errors`` as an HTTP error; errors after it become an error event in
the stream, which then ends without the end marker, so it never looks finished.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

import orjson

from breakwater.core.errors import InvalidRequest, ModelNotFound, ShuttingDown
from breakwater.core.ids import IdGenerator
from breakwater.core.types import ChatRequest, ChatResponse, StreamEvent
from breakwater.engine.context import Caller, RequestContext, TraceContext
from breakwater.engine.pipeline import Outcome, Pipeline
from breakwater.engine.ports import Clock
from breakwater.engine.routing import Router
from breakwater.engine.tee import EventStream
from breakwater.providers import openai_embeddings_serve
from breakwater.server import errors
from breakwater.server.asgi import JSON_HEADERS, SSE_HEADERS, Headers, Receive, Scope, Send, read_json_body, send_bytes

ErrorMapper = Callable[[BaseException, str], tuple[int, Headers, bytes]]

#: where a request's id is left in its ASGI scope once chosen
SCOPE_KEY = "breakwater.request_id"


class StreamEncoder(Protocol):
    def encode(self, event: StreamEvent) -> bytes: ...

    def end(self) -> bytes: ...

    def error(self, message: str, type_: str, code: str | None) -> bytes: ...


@dataclass(frozen=True, slots=True)
class ChatCodec:
    """How one client wire format reads requests and writes responses, streams and errors."""

    wire: str
    decode: Callable[[Any], ChatRequest]
    encode: Callable[[ChatResponse], bytes]
    stream_encoder: Callable[[ChatRequest], StreamEncoder]
    error: ErrorMapper


class RequestIds:
    """Request ids: the client's ``x-request-id`` if it sent a sane one, else a new one.

    New ids are a per-process random prefix plus a counter: unique across processes and
    replicas, and far cheaper than ``uuid4`` on every request.
    """

    def __init__(self) -> None:
        self._ids = IdGenerator()
        #: trace ids for requests without a ``traceparent`` (seeded from the OS; not a secret)
        self._trace_ids = random.Random()

    def new(self) -> str:
        return self._ids.new()

    def of(self, scope: Scope) -> str:
        rid = scope.get(SCOPE_KEY)
        if isinstance(rid, str):
            return rid
        for key, value in scope["headers"]:
            if key == b"x-request-id" and 0 < len(value) <= 128:
                rid = value.decode("latin-1")
        scope[SCOPE_KEY] = rid = rid or self.new()
        return rid

    def context(self, scope: Scope) -> RequestContext:
        """The request's context: its id, credential, user, session, tags, trace context and
        ``x-mock-*`` headers, in one pass over the headers."""
        rid: str | None = None
        user: str | None = None
        session: str | None = None
        credential: str | None = None
        tags: dict[str, str] = {}
        mock: dict[str, str] = {}
        parent: tuple[int, int, bool] | None = None
        cache: str | None = None
        for key, value in scope["headers"]:
            if key == b"traceparent":
                parent = _traceparent(value)
            elif key == b"authorization":
                scheme, _, token = value.partition(b" ")
                if scheme.lower() == b"bearer":
                    credential = token.strip().decode("latin-1")
            elif key.startswith(b"x-"):
                if key == b"x-request-id" and 0 < len(value) <= 128:
                    rid = value.decode("latin-1")
                elif key.startswith(b"x-mock-"):
                    mock[key.decode("latin-1")] = value.decode("latin-1")
                elif key == b"x-breakwater-user" and 0 < len(value) <= 256:
                    user = value.decode("latin-1")
                elif key == b"x-breakwater-tags":
                    tags = parse_tags(value.decode("latin-1"))
                elif key == b"x-breakwater-session" and 0 < len(value) <= 256:
                    session = value.decode("latin-1")
                elif key == b"x-breakwater-cache":
                    cache = value.decode("latin-1")
                elif key == b"x-api-key" and credential is None:  # the Anthropic SDK's header
                    credential = value.strip().decode("latin-1")
            elif key == b"api-key" and credential is None:  # the Azure OpenAI SDK's header
                credential = value.strip().decode("latin-1")
        scope[SCOPE_KEY] = rid = rid or self.new()  # for wrappers that log about the request
        trace = TraceContext(*parent) if parent is not None else TraceContext(self._trace_ids.getrandbits(128) or 1)
        caller = Caller(user=user, tags=tags, credential=credential, session=session, mock_headers=mock)
        return RequestContext(rid, caller=caller, trace=trace, cache_header=cache, headers=scope["headers"])


def _traceparent(value: bytes) -> tuple[int, int, bool] | None:
    """``00-<32 hex trace id>-<16 hex span id>-<2 hex flags>`` -> (trace id, span id, sampled).

    W3C Trace Context level 1: an unknown higher version may append fields after a ``-``; version
    ``ff``, all-zero ids and anything malformed make the header ignored (a new trace starts).
    """
    if len(value) < 55 or (len(value) > 55 and (value[:2] == b"00" or value[55:56] != b"-")):
        return None
    if value[2:3] != b"-" or value[35:36] != b"-" or value[52:53] != b"-" or value[:2] == b"ff":
        return None
    digits = value[:2] + value[3:35] + value[36:52] + value[53:55]
    if digits.strip(b"0123456789abcdef"):  # not all lowercase hex
        return None
    trace_id, span_id = int(value[3:35], 16), int(value[36:52], 16)
    if not trace_id or not span_id:
        return None
    return trace_id, span_id, bool(int(value[53:55], 16) & 1)


#: at most this many tags a request, keys and values cut to these lengths (they reach the ledger)
MAX_TAGS, MAX_TAG_KEY, MAX_TAG_VALUE = 16, 64, 256


def parse_tags(header: str) -> dict[str, str]:
    """``x-breakwater-tags: feature=search, env=prod`` -> ``{"feature": "search", "env": "prod"}``.

    A bare word is a tag with an empty value; malformed pieces are skipped, never an error.
    """
    tags: dict[str, str] = {}
    for piece in header.split(","):
        key, _, value = piece.partition("=")
        key = key.strip()[:MAX_TAG_KEY]
        if key and len(tags) < MAX_TAGS:
            tags[key] = value.strip()[:MAX_TAG_VALUE]
    return tags


def trace_headers(ctx: RequestContext, overhead_s: float) -> Headers:
    outcome = ctx.outcome
    headers: Headers = [(b"x-request-id", ctx.request_id.encode()), *ctx.limits.rate_headers]
    if outcome.deployment is not None:
        headers.append((b"x-breakwater-deployment", outcome.deployment.encode()))
        headers.append((b"x-breakwater-attempts", str(outcome.attempts).encode()))
        if outcome.fallback:
            headers.append((b"x-breakwater-fallback", (outcome.fallback_route or "true").encode()))
    if outcome.dropped_params:
        headers.append((b"x-breakwater-dropped-params", ",".join(outcome.dropped_params).encode()))
    if outcome.branch is not None:
        headers.append((b"x-breakwater-route-branch", outcome.branch.encode()))
        if outcome.cascade_steps:
            headers.append((b"x-breakwater-cascade-steps", b"%d" % outcome.cascade_steps))
    if ctx.prompt is not None:
        headers.append((b"x-breakwater-prompt", b"%s@%d" % (ctx.prompt[0].encode(), ctx.prompt[1])))
    if outcome.variant is not None:
        headers.append((b"x-breakwater-variant", outcome.variant.encode()))
    if ctx.injection_action == "flagged" and ctx.injection_score is not None:
        headers.append((b"x-breakwater-injection", b"%.2f" % ctx.injection_score))
    cache = ctx.cache
    if cache is not None:
        headers.append((b"x-breakwater-cache", cache.status.encode()))
        if cache.age_s is not None:
            headers.append((b"x-breakwater-cache-age", b"%d" % cache.age_s))
        if cache.similarity is not None:
            headers.append((b"x-breakwater-cache-similarity", b"%.3f" % cache.similarity))
    headers.append((b"x-breakwater-overhead-ms", b"%.2f" % (max(overhead_s - outcome.waited_s, 0.0) * 1000)))
    return headers


def id_headers(ctx: RequestContext) -> Headers:
    """A JSON answer's headers, with the request's id (every answer carries it)."""
    return [*JSON_HEADERS, (b"x-request-id", ctx.request_id.encode())]


async def fail_with(send: Send, mapper: ErrorMapper, exc: BaseException, ctx: RequestContext) -> int:
    """Answer with ``exc`` mapped to status, headers and body in the client's error format."""
    status, headers, payload = mapper(exc, ctx.request_id)
    rate = ctx.limits.rate_headers
    await send_bytes(send, status, payload, [*headers, *rate] if rate else headers)
    return status


#: the status a request whose client left before the answer was complete is recorded with (nginx's)
CLIENT_CLOSED = 499


def parse_json(body: bytes) -> Any:
    if not body:
        raise InvalidRequest("The request body is empty; expected a JSON object")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(f"The request body is not valid JSON: {exc.args[0]}") from None


class Endpoints:
    """The client-facing handlers for one running configuration: decode, call the pipeline, encode.

    Args:
        pipeline: the engine's request pipeline (``engine/pipeline.py``).
        router: the routes (``/v1/models``).
        clock: request timing.
        max_body_bytes: larger bodies get 413.
        ids: request and trace ids (one per process, shared by every configuration it runs).
    """

    def __init__(
        self, pipeline: Pipeline, router: Router, clock: Clock, max_body_bytes: int, ids: RequestIds | None = None
    ) -> None:
        self.pipeline = pipeline
        self.router = router
        self.clock = clock
        self.max_body_bytes = max_body_bytes
        self.ids = ids if ids is not None else RequestIds()

    def context_of(self, scope: Scope) -> RequestContext:
        ctx = self.ids.context(scope)
        ctx.started_mono = self.clock.monotonic()
        ctx.started_at = self.clock.time()
        return ctx

    async def chat(self, codec: ChatCodec, scope: Scope, receive: Receive, send: Send) -> None:
        ctx = self.context_of(scope)
        pipeline, outcome = self.pipeline, Outcome()
        started = ctx.started_mono
        try:
            try:
                pipeline.begin(ctx)
                request = outcome.request = codec.decode(
                    parse_json(await read_json_body(scope, receive, self.max_body_bytes))
                )
                answer = await pipeline.chat(request, ctx)
                if isinstance(answer, ChatResponse):
                    body = codec.encode(answer)
            except Exception as exc:  # noqa: BLE001 - every failure becomes a mapped error response
                outcome.status, outcome.error = await fail_with(send, codec.error, exc, ctx), exc
                return
            except asyncio.CancelledError as exc:
                outcome.status, outcome.error = CLIENT_CLOSED, exc
                raise
            if isinstance(answer, ChatResponse):
                headers = [*JSON_HEADERS, *trace_headers(ctx, self.clock.monotonic() - started)]
                await send_bytes(send, 200, body, headers)
            else:
                await self.stream_answer(codec, send, ctx, outcome, request, answer)
        finally:
            pipeline.end(ctx, outcome)

    async def stream_answer(
        self,
        codec: ChatCodec,
        send: Send,
        ctx: RequestContext,
        outcome: Outcome,
        request: ChatRequest,
        answer: EventStream,
        before_tail: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        """Send ``answer`` as SSE frames; ``before_tail`` runs once it is complete, before its last
        frame goes out (the Responses API stores the answer there, so a client continuing it at
        once finds it)."""
        head = [*SSE_HEADERS, *trace_headers(ctx, self.clock.monotonic() - ctx.started_mono)]
        encoder = codec.stream_encoder(request)
        try:
            try:
                # inside the try: a stream must be closed (its deployment slot given back) even
                # when the client is gone before the head could be sent
                await send({"type": "http.response.start", "status": 200, "headers": head})
                async for batch in answer:
                    frames = b"".join([encoder.encode(event) for event in batch])
                    if frames:
                        await send({"type": "http.response.body", "body": frames, "more_body": True})
            finally:
                # closed here, not by the GC: a stream abandoned because its client left or the
                # server is stopping releases its upstream connection at once
                await answer.aclose()
            tail = encoder.end()
            if before_tail is not None:
                await before_tail()
        except Exception as exc:  # noqa: BLE001 - after the head is sent, errors travel in the stream
            message, type_, code = errors.stream_error(exc, ctx.request_id, codec.wire)
            tail = encoder.error(message, type_, code)
            outcome.error = exc
        except asyncio.CancelledError as exc:
            # the client left (server/disconnect.py) or the server cut the stream at its drain
            # deadline: end it with an error event so it never looks finished, then keep unwinding
            outcome.status, outcome.error = CLIENT_CLOSED, exc
            cut = ShuttingDown("The gateway is shutting down and cut this stream; retry the request")
            message, type_, code = errors.stream_error(cut, ctx.request_id, codec.wire)
            await send({"type": "http.response.body", "body": encoder.error(message, type_, code), "more_body": False})
            raise
        await send({"type": "http.response.body", "body": tail, "more_body": False})

    async def embeddings(self, scope: Scope, receive: Receive, send: Send) -> None:
        ctx = self.context_of(scope)
        pipeline, outcome = self.pipeline, Outcome()
        started = ctx.started_mono
        try:
            try:
                pipeline.begin(ctx)
                request = openai_embeddings_serve.decode_embeddings_request(
                    parse_json(await read_json_body(scope, receive, self.max_body_bytes))
                )
                response = await pipeline.embeddings(request, ctx)
                body = openai_embeddings_serve.encode_embeddings_response(response, request.encoding_format)
            except Exception as exc:  # noqa: BLE001 - every failure becomes a mapped error response
                outcome.status, outcome.error = await fail_with(send, errors.openai_error, exc, ctx), exc
                return
            except asyncio.CancelledError as exc:
                outcome.status, outcome.error = CLIENT_CLOSED, exc
                raise
            await send_bytes(send, 200, body, [*JSON_HEADERS, *trace_headers(ctx, self.clock.monotonic() - started)])
        finally:
            pipeline.end(ctx, outcome)

    def caller_of(self, scope: Scope) -> RequestContext:
        """The context of a request that only reads (models): authenticated, not recorded."""
        ctx = self.ids.context(scope)
        self.pipeline.begin(ctx)
        return ctx

    async def models(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The routes the caller's key may use."""
        try:
            ctx = self.caller_of(scope)
        except Exception as exc:  # noqa: BLE001 - an authentication failure in OpenAI's format
            await fail_with(send, errors.openai_error, exc, RequestContext(self.ids.of(scope)))
            return
        router = self.router
        created = int(self.clock.time())
        allows = self.pipeline.allows
        data = [
            {"id": name, "object": "model", "created": created, "owned_by": router.owner(name)}
            for name in router.public_names()
            if allows(ctx, name)
        ]
        await send_bytes(send, 200, orjson.dumps({"object": "list", "data": data}), id_headers(ctx))

    async def model(self, name: str, scope: Scope, receive: Receive, send: Send) -> None:
        ctx = RequestContext(self.ids.of(scope))
        router = self.router
        try:
            ctx = self.caller_of(scope)
            router.resolve(name)
            if not self.pipeline.allows(ctx, name):
                raise ModelNotFound(f"The model '{name}' does not exist or this API key may not use it", param="model")
        except Exception as exc:  # noqa: BLE001 - ModelNotFound becomes a 404 in OpenAI's format
            await fail_with(send, errors.openai_error, exc, ctx)
            return
        owner = router.routes[name].owner if name in router.routes else "breakwater"
        body = {"id": name, "object": "model", "created": int(self.clock.time()), "owned_by": owner}
        await send_bytes(send, 200, orjson.dumps(body), id_headers(ctx))
