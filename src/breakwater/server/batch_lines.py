"""One batch line through the gateway: what ``BatchRunner`` (engine/batches/runner.py) calls.

A line is served like the interactive request it describes: the same decoding
(``providers/openai_serve``, ``openai_embeddings_serve``), the running configuration's pipeline
(limits, retries, fallbacks, guardrails, cache) and its ledger row, with the error body the
client would have got (``server/errors.py``). What differs: the caller is the batch's owner,
identified by key id (``Gatekeeper.identify``: a key revoked since the upload stops its lines),
the request is tagged ``batch_id``, a refusal by the gateway's own limits or backpressure is
marked ``throttled`` (the runner waits and tries again without spending an attempt), and the line holds the runtime it started on like a request
does, so a reload lets it finish.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from typing import Any

import orjson

from breakwater.core.errors import LimitExceeded, Saturated
from breakwater.core.ids import IdGenerator
from breakwater.core.types import ChatResponse
from breakwater.engine.batches.lines import Line
from breakwater.engine.batches.runner import LineAnswer
from breakwater.engine.batches.store import BatchRecord
from breakwater.engine.context import Caller, RequestContext, TraceContext
from breakwater.engine.pipeline import Outcome
from breakwater.providers import openai_embeddings_serve, openai_serve
from breakwater.runtime.runtime import Runtime
from breakwater.server import errors
from breakwater.server.endpoints import CLIENT_CLOSED


class LineExecutor:
    """``Execute`` over the runtime serving now.

    Args:
        current: the runtime serving new requests.
    """

    def __init__(self, current: Callable[[], Runtime]) -> None:
        self._current = current
        self._ids = IdGenerator()
        self._trace_ids = random.Random()

    async def __call__(self, batch: BatchRecord, line: Line) -> LineAnswer:
        runtime = self._current()
        runtime.active += 1  # held like a request: a reload lets the line finish on this runtime
        try:
            return await self._serve(runtime, batch, line)
        finally:
            runtime.active -= 1
            if runtime.retired:
                runtime.leave()

    async def _serve(self, runtime: Runtime, batch: BatchRecord, line: Line) -> LineAnswer:
        clock, pipeline = runtime.process.clock, runtime.pipeline
        caller = Caller(tags={"batch_id": batch.id, "batch_custom_id": line.custom_id[:256]})
        trace = TraceContext(self._trace_ids.getrandbits(128) or 1)
        ctx = RequestContext(f"req_{self._ids.new()}", caller=caller, trace=trace)
        ctx.started_mono, ctx.started_at = clock.monotonic(), clock.time()
        outcome = Outcome()
        try:
            try:
                if batch.owner:
                    runtime.gate.identify(ctx, batch.owner)
                body = await self._answer(runtime, line, ctx, outcome)
            except Exception as exc:  # noqa: BLE001 - every failure becomes the error body a client would get
                status, headers, payload = errors.openai_error(exc, ctx.request_id)
                outcome.status, outcome.error = status, exc
                # a refusal that says when to come back (not one that never fits: request_too_large)
                throttled = isinstance(exc, (LimitExceeded, Saturated)) and exc.retry_after is not None
                return LineAnswer(status, ctx.request_id, orjson.loads(payload), _retry_after(headers), throttled)
            except asyncio.CancelledError as exc:
                outcome.status, outcome.error = CLIENT_CLOSED, exc
                raise
            return LineAnswer(200, ctx.request_id, body)
        finally:
            pipeline.end(ctx, outcome)

    @staticmethod
    async def _answer(runtime: Runtime, line: Line, ctx: RequestContext, outcome: Outcome) -> dict[str, Any]:
        pipeline = runtime.pipeline
        if line.url == "/v1/embeddings":
            embeddings = openai_embeddings_serve.decode_embeddings_request(line.body)
            response = await pipeline.embeddings(embeddings, ctx)
            encoded = openai_embeddings_serve.encode_embeddings_response(response, embeddings.encoding_format)
            return orjson.loads(encoded)  # type: ignore[no-any-return]
        request = outcome.request = openai_serve.decode_chat_request(line.body)
        answer = await pipeline.chat(request, ctx)
        assert isinstance(answer, ChatResponse)  # lines never stream (engine/batches/lines.py)
        return orjson.loads(openai_serve.encode_chat_response(answer))  # type: ignore[no-any-return]


def _retry_after(headers: list[tuple[bytes, bytes]]) -> float | None:
    for name, value in headers:
        if name == b"retry-after":
            try:
                return float(value)
            except ValueError:
                return None
    return None
