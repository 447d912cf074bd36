"""The access stage: permission, the route's ``max_tokens`` guard and limits; settlement at the end.

``begin`` authenticates the key before the body is read (``Gatekeeper.authenticate``); the
call admits the request (``Gatekeeper.admit_chat`` / ``admit_embeddings`` /
``admit_moderations``: a refusal raises
before anything upstream is spent); ``end`` replaces the request's reservations with what it
used: the usage and cost the ledger row holds when recording is on (estimated when the
upstream sent none), else the usage the upstream reported.
"""

from __future__ import annotations

from breakwater.core.types import ChatRequest, EmbeddingRequest, EmbeddingResponse
from breakwater.engine.access.gatekeeper import Gatekeeper
from breakwater.engine.context import RequestContext
from breakwater.engine.pipeline import ChatAnswer, ChatCall, EmbeddingsCall, ModerationsCall, Outcome, Stage
from breakwater.providers.openai_moderations import ModerationRequest


class AccessStage(Stage):
    name = "access"

    def __init__(self, gate: Gatekeeper) -> None:
        self.gate = gate

    def begin(self, ctx: RequestContext) -> None:
        self.gate.authenticate(ctx)

    def chat(self, call: ChatCall) -> ChatCall:
        admit = self.gate.admit_chat

        async def admitted(request: ChatRequest, ctx: RequestContext) -> ChatAnswer:
            await admit(ctx, request)
            return await call(request, ctx)

        return admitted

    def embeddings(self, call: EmbeddingsCall) -> EmbeddingsCall:
        admit = self.gate.admit_embeddings

        async def admitted(request: EmbeddingRequest, ctx: RequestContext) -> EmbeddingResponse:
            await admit(ctx, request)
            return await call(request, ctx)

        return admitted

    def moderations(self, call: ModerationsCall) -> ModerationsCall:
        admit = self.gate.admit_moderations

        async def admitted(request: ModerationRequest, ctx: RequestContext) -> bytes:
            await admit(ctx, request)
            return await call(request, ctx)

        return admitted

    def allows(self, ctx: RequestContext, route: str) -> bool:
        return self.gate.allowed(ctx, route)

    def end(self, ctx: RequestContext, outcome: Outcome) -> None:
        if ctx.limits.ticket is None:
            return
        recorded = outcome.recorded
        if recorded is not None:
            self.gate.settle(ctx, recorded.input_tokens + recorded.output_tokens, recorded.cost_usd)
        else:
            usage = ctx.tally.usage
            self.gate.settle(ctx, usage.total_tokens if usage is not None else 0, None)
