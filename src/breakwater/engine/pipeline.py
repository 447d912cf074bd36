"""The request pipeline: the one way every request goes through the engine, whatever its wire.

The server decodes a request into the canonical types, hands it here, and encodes what comes
back; everything between is a *stage*. A stage wraps the next call, which has one signature
for each kind of request::

    chat:        (ChatRequest, RequestContext)      -> ChatResponse | EventStream
    embeddings:  (EmbeddingRequest, RequestContext) -> EmbeddingResponse

and may also act at the two ends of an exchange: ``begin`` (before the body is read: who is
calling) and ``end`` (the answer has been sent, or the error; runs for every exchange, even one
refused before reaching the stage, innermost stage first, like ``finally`` blocks unwinding).
A streamed answer is one ``EventStream`` (``engine/tee.py``): a stage that wants to see it
adds a tap instead of wrapping it.

The order, outermost first, is ``ORDER``; the innermost call is the gateway
(``engine/calls/gateway.py``: the route, its fallback routes, attempts across deployments).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import ClassVar, Protocol

from breakwater.core.types import ChatRequest, ChatResponse, EmbeddingRequest, EmbeddingResponse
from breakwater.engine.context import RequestContext
from breakwater.engine.tee import EventStream
from breakwater.providers.openai_moderations import ModerationRequest

log = logging.getLogger("breakwater.pipeline")

#: the stages, outermost first: a request passes them in this order and its answer comes back in
#: reverse. Planned stages go where they are listed in the comments.
ORDER: tuple[str, ...] = (
    "access",  # engine/access/stage.py: permission, max_tokens guard, limits; settle at the end
    "recording",  # observability/recording.py: capture sampling; the ledger row, metrics, trace at the end
    "injection",  # engine/guardrails/injection_stage.py: user turns and tool results scored; logged, flagged or blocked
    "dlp",  # engine/guardrails/dlp_stage.py: personal data and secrets found; blocked, or acted on per deployment
    "refusals",  # engine/refusals/stage.py: is the answer a refusal (a stream through a tap)
    "variants",  # engine/variants/stage.py: a route with variants: the arm its sticky subject is assigned to
    "prompts",  # engine/prompts/stage.py: a named or pinned prompt rendered before the request's messages
    "trim",  # engine/trim/stage.py: a route's oldest turns dropped or summarised to fit a token budget
    "drift",  # engine/drift/stage.py: a sampled share graded by eval assertions once answered (off the path)
    "shadow",  # engine/shadow/stage.py: a sampled share mirrored to a candidate route once answered
    "cache",  # engine/cache/stage.py: answers served from the cache; misses stored (streams through a tap)
    "output_checks",  # engine/guardrails/output_stage.py: canary, deny patterns, schema repair; the cache stores checked answers
    "router",  # engine/router/stage.py: a branching route's branch (rules, learned router, default) or cascade
)

ChatAnswer = ChatResponse | EventStream
ChatCall = Callable[[ChatRequest, RequestContext], Awaitable[ChatAnswer]]
EmbeddingsCall = Callable[[EmbeddingRequest, RequestContext], Awaitable[EmbeddingResponse]]
ModerationsCall = Callable[[ModerationRequest, RequestContext], Awaitable[bytes]]


class Recorded(Protocol):
    """What the recording stage made of a finished exchange: the usage and cost the ledger holds."""

    input_tokens: int
    output_tokens: int
    cost_usd: Decimal | None


@dataclass(slots=True)
class Outcome:
    """How an exchange ended, as the server saw it; stages read it in ``end``."""

    #: the decoded chat request (``None`` for embeddings, or when the body could not be decoded)
    request: ChatRequest | None = None
    #: the HTTP status answered (499 when the client left first)
    status: int = 200
    #: what failed, if anything (an error after a stream started leaves the status at 200)
    error: BaseException | None = None
    #: set by the recording stage: what the ledger row holds (``None`` with recording off)
    recorded: Recorded | None = None


class Stage:
    """One step of the pipeline. Subclasses override what they need; the defaults do nothing."""

    name: ClassVar[str]

    def begin(self, ctx: RequestContext) -> None:
        """Before the request's body is read."""

    def chat(self, call: ChatCall) -> ChatCall:
        """The chat call wrapped by this stage (built once, not per request)."""
        return call

    def embeddings(self, call: EmbeddingsCall) -> EmbeddingsCall:
        """The embeddings call wrapped by this stage (built once, not per request)."""
        return call

    def moderations(self, call: ModerationsCall) -> ModerationsCall:
        """The moderations call wrapped by this stage (built once, not per request)."""
        return call

    def allows(self, ctx: RequestContext, route: str) -> bool:
        """May this caller see and use the route (``/v1/models``)?"""
        return True

    def end(self, ctx: RequestContext, outcome: Outcome) -> None:
        """The exchange is over. Must not raise."""


class Calls(Protocol):
    """The innermost call (``engine/calls/gateway.Gateway``)."""

    async def chat(self, request: ChatRequest, ctx: RequestContext) -> ChatResponse: ...

    async def chat_stream(self, request: ChatRequest, ctx: RequestContext) -> EventStream: ...

    async def embeddings(self, request: EmbeddingRequest, ctx: RequestContext) -> EmbeddingResponse: ...

    async def moderations(self, request: ModerationRequest, ctx: RequestContext) -> bytes: ...


class Pipeline:
    """The stages in ``ORDER`` around the calls, composed once.

    Args:
        stages: by name; each name must be in ``ORDER`` (absent ones are skipped: a feature
            that is off costs nothing).
        calls: the innermost call.
    """

    def __init__(self, stages: Mapping[str, Stage], calls: Calls) -> None:
        unknown = sorted(set(stages) - set(ORDER))
        if unknown:
            raise ValueError(f"stages not in the pipeline's ORDER: {', '.join(unknown)}")
        self.stages = [stages[name] for name in ORDER if name in stages]
        # only the hooks a stage overrides are called on the request path
        self._begins = [s.begin for s in self.stages if type(s).begin is not Stage.begin]
        self._ends = [s for s in self.stages[::-1] if type(s).end is not Stage.end]
        self._reversed = self.stages[::-1]

        def answer(request: ChatRequest, ctx: RequestContext) -> Awaitable[ChatAnswer]:
            # not a coroutine itself: the stage outside awaits the gateway's directly (one frame less)
            return calls.chat_stream(request, ctx) if request.stream else calls.chat(request, ctx)

        chat: ChatCall = answer
        embeddings: EmbeddingsCall = calls.embeddings
        moderations: ModerationsCall = calls.moderations
        for stage in self._reversed:
            chat, embeddings = stage.chat(chat), stage.embeddings(embeddings)
            moderations = stage.moderations(moderations)
        self._chat, self._embeddings, self._moderations = chat, embeddings, moderations

    def begin(self, ctx: RequestContext) -> None:
        """Before the body is read: who is calling (an unknown key is refused before any upload)."""
        for begin in self._begins:
            begin(ctx)

    def chat(self, request: ChatRequest, ctx: RequestContext) -> Awaitable[ChatAnswer]:
        """The answer, to be awaited (the first stage's call, after the request's own attribution)."""
        ctx.stream = request.stream
        if request.metadata:
            ctx.caller.tags = {**request.metadata, **ctx.caller.tags}  # the header (and the key's own tags) win a clash
        return self._chat(request, ctx)

    async def embeddings(self, request: EmbeddingRequest, ctx: RequestContext) -> EmbeddingResponse:
        ctx.outcome.route = request.model
        return await self._embeddings(request, ctx)

    async def moderations(self, request: ModerationRequest, ctx: RequestContext) -> bytes:
        """The upstream's moderation answer (its bytes)."""
        return await self._moderations(request, ctx)

    def allows(self, ctx: RequestContext, route: str) -> bool:
        return all(stage.allows(ctx, route) for stage in self.stages)

    def end(self, ctx: RequestContext, outcome: Outcome) -> None:
        """The exchange is over: each stage's ``end``, innermost first; one failing does not stop the others."""
        for stage in self._ends:
            try:
                stage.end(ctx, outcome)
            except Exception:
                log.exception("pipeline stage %r failed at the end of request %s", stage.name, ctx.request_id)
