"""Shadow traffic: a sampled share of a route's requests also sent to a candidate route.

``routes.X.shadow`` (docs/safe-change.md). When the caller's answer is complete (a whole
response; a stream once it ended, rebuilt by a tap on the one stream tee) the request joins a
bounded queue, and a few workers per process send it to the candidate through the gateway's
calls: its deployments, retries and breakers, not the access stage (no key pays for it). The
caller never waits for it: joining the queue is one non-blocking put, and a full queue drops the
mirror (counted). Nothing a candidate does can fail or delay the caller's request.

Each candidate call is a ledger row of its own (user ``breakwater:shadow``) that names the
request it mirrors (``shadow_of``) and says whether the two answers agree: the same text after
case and spacing (``shadow_exact``), and with ``similarity: true`` the cosine similarity of their
embeddings (``shadow_similarity``). ``breakwater shadow report`` reads the pairs back.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from breakwater.core.ids import IdGenerator
from breakwater.core.types import ChatRequest, ChatResponse
from breakwater.engine.cache.replay import Assembly
from breakwater.engine.context import Caller, RequestContext
from breakwater.engine.guardrails.dlp import DlpPlan
from breakwater.engine.pipeline import ChatAnswer, ChatCall, Outcome, Stage
from breakwater.engine.ports import Clock, RandomSource
from breakwater.engine.similarity import Similarity, held_to
from breakwater.engine.tasks import LaneCounts, Lanes
from breakwater.engine.tee import EventStream

log = logging.getLogger("breakwater.shadow")

#: the ledger's user for candidate calls
USER = "breakwater:shadow"

#: the cosine similarity of two answers' embeddings (``None``: they could not be embedded)


@dataclass(frozen=True, slots=True)
class ShadowPlan:
    """A route's shadow, as the stage runs it (``routes.X.shadow``)."""

    candidate: str
    share: float = 1.0
    queue: int = 100
    concurrency: int = 2
    similarity: bool = False


@dataclass(slots=True)
class ShadowCounts(LaneCounts):
    """Per route: requests mirrored, and (``LaneCounts``) dropped and failed."""

    mirrored: dict[str, int] = dataclasses.field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class _Job:
    route: str
    plan: ShadowPlan
    request: ChatRequest
    primary_id: str
    primary_text: str
    #: the primary's data-loss plan (a copy): the candidate's deployments get what their
    #: providers may receive, like the primary's (``engine/guardrails/dlp.py``)
    dlp: DlpPlan | None = None
    #: the primary's allowed regions (data residency): the candidate is held to them
    regions: frozenset[str] | None = None


class ShadowStage(Stage):
    """Args:
    plans: by route name, the routes that have a shadow.
    chat: the gateway's own chat call (``Gateway.chat``): a whole answer from a route.
    clock, rng: the rows' times; the sampling.
    finish: told of each candidate call when it is over (the recording stage's ``end``).
    similarity: the cosine similarity of two texts, for plans that ask for it.
    """

    name = "shadow"

    def __init__(
        self,
        plans: Mapping[str, ShadowPlan],
        chat: Callable[[ChatRequest, RequestContext], Awaitable[ChatResponse]],
        clock: Clock,
        rng: RandomSource,
        finish: Callable[[RequestContext, Outcome], None],
        *,
        similarity: Similarity | None = None,
    ) -> None:
        self.plans = dict(plans)
        self.counts = ShadowCounts()
        self._chat = chat
        self._clock = clock
        self._rng = rng
        self._finish = finish
        self._similarity = similarity
        #: per route: its queue and the workers emptying it (made on the route's first mirror)
        self._lanes: Lanes[_Job] = Lanes(self._mirror, "breakwater-shadow", self._failed)
        self._ids = IdGenerator()
        #: whether a route sheds optional work now (its error budget burns fast: docs/slo.md)
        self.shed: Callable[[str], bool] | None = None

    def chat(self, call: ChatCall) -> ChatCall:
        plans, rng = self.plans, self._rng

        async def mirrored(request: ChatRequest, ctx: RequestContext) -> ChatAnswer:
            plan = plans.get(request.model)
            if plan is None or (plan.share < 1.0 and rng.random() >= plan.share):
                return await call(request, ctx)
            if self.shed is not None and self.shed(request.model):
                ShadowCounts.add(self.counts.shed, request.model)
                return await call(request, ctx)
            answer = await call(request, ctx)
            route, rid = request.model, ctx.request_id
            dlp = None if ctx.dlp is None else dataclasses.replace(ctx.dlp)
            regions = ctx.regions
            if isinstance(answer, EventStream):
                answer.tap(Assembly(lambda whole: self._offer(route, plan, request, rid, whole, dlp, regions)))
            else:
                self._offer(route, plan, request, rid, answer, dlp, regions)
            return answer

        return mirrored

    def queued(self, route: str) -> int:
        """Mirrors of ``route`` waiting for a candidate call."""
        return self._lanes.queued(route)

    def _offer(
        self,
        route: str,
        plan: ShadowPlan,
        request: ChatRequest,
        primary_id: str,
        answer: ChatResponse,
        dlp: DlpPlan | None = None,
        regions: frozenset[str] | None = None,
    ) -> None:
        """Queue the mirror, never waiting: a full queue drops it."""
        job = _Job(route, plan, request, primary_id, _text(answer), dlp, regions)
        if self._lanes.offer(route, job, plan.queue, plan.concurrency):
            ShadowCounts.add(self.counts.mirrored, route)
        else:
            ShadowCounts.add(self.counts.dropped, route)

    @staticmethod
    def _failed(job: _Job, exc: Exception) -> None:
        log.error("a shadow call for request %s failed unexpectedly", job.primary_id, exc_info=exc)

    async def _mirror(self, job: _Job) -> None:
        candidate = job.plan.candidate
        ctx = RequestContext("shadow-" + self._ids.new(), caller=Caller(user=USER))
        ctx.started_at, ctx.started_mono = self._clock.time(), self._clock.monotonic()
        ctx.outcome.route = candidate
        ctx.outcome.shadow_of = job.primary_id
        ctx.dlp, ctx.regions = job.dlp, job.regions
        request = _whole(job.request, candidate)
        outcome = Outcome(request=request)
        try:
            answer = await self._chat(request, ctx)
        except asyncio.CancelledError as exc:  # the gateway is stopping: recorded as cut short (499)
            outcome.status, outcome.error = 499, exc
            raise
        except Exception as exc:  # noqa: BLE001 - a candidate's failure is recorded, never raised
            outcome.status, outcome.error = 502, exc
            ShadowCounts.add(self.counts.failed, job.route)
        else:
            text = _text(answer)
            ctx.outcome.shadow_exact = _same(text, job.primary_text)
            if job.plan.similarity and self._similarity is not None:
                similarity = held_to(self._similarity, job.regions)
                ctx.outcome.shadow_similarity = await similarity(text, job.primary_text)
        finally:
            self._finish(ctx, outcome)

    async def stop(self) -> None:
        """Stop the workers; mirrors still queued are dropped (counted)."""
        await self._lanes.stop(self.counts.dropped)


def _whole(request: ChatRequest, route: str) -> ChatRequest:
    """The mirrored request as a whole-answer call to the candidate route."""
    raw = request.raw
    if raw is not None:
        raw = {k: v for k, v in raw.items() if k not in ("stream", "stream_options")}
    return dataclasses.replace(request, model=route, stream=False, include_usage=False, raw=raw)


def _text(answer: ChatResponse) -> str:
    return answer.choices[0].message.text() if answer.choices else ""


def _same(a: str, b: str) -> bool:
    """The same answer, whatever the case and spacing."""
    return " ".join(a.casefold().split()) == " ".join(b.casefold().split())
