"""The router stage: a branching route's request goes to the branch its rules choose, or down its
cascade (docs/routing.md).

For a route with ``branches`` (a ``Plan``), in this order: the first rule that holds
(``rules.py``); else the learned router's score over the prompt's embedding, cheap at or above
its threshold; else ``default``. The request is then the chosen branch's route's (a route of its
own, or the hidden ``<route>.<branch>`` for inline deployments), and the ledger row stays on the
route the client named, with the branch and why (``RouteOutcome.branch``, ``decision``).

A cascade (``cascade.py``) asks its steps in order instead. Every other route passes through
untouched. Nothing here fails a request the gateway would have served: a learned router that
cannot score falls back to ``default`` and is counted.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from breakwater.core.types import ChatRequest, EmbeddingRequest, EmbeddingResponse
from breakwater.engine.context import Baseline, RequestContext
from breakwater.engine.pipeline import ChatAnswer, ChatCall, EmbeddingsCall, Stage
from breakwater.engine.ports import Clock
from breakwater.engine.router.cascade import Cascade
from breakwater.engine.router.rules import CompiledRule, choose

log = logging.getLogger("breakwater.router")


class Scorer(Protocol):
    """The learned router: how safe the cheap branch is for a request, in [0, 1]."""

    async def score(self, request: ChatRequest) -> float: ...


@dataclass(frozen=True, slots=True)
class Learned:
    scorer: Scorer
    cheap: str
    strong: str
    threshold: float


@dataclass(frozen=True, slots=True)
class Plan:
    """A branching route, compiled: its branches (name -> the route that serves it) and how one
    is chosen."""

    route: str
    branches: Mapping[str, str]
    rules: tuple[CompiledRule, ...] = ()
    default: str = ""
    learned: Learned | None = None
    cascade: Cascade | None = None
    #: what the route's savings are counted against (``None``: its baseline has no deployment to price)
    baseline: Baseline | None = None

    @property
    def first(self) -> str:
        """The branch for what is not chosen among branches (embeddings): the default, or the
        cascade's first step."""
        return self.cascade.steps[0] if self.cascade is not None else self.default


class RouterCounts:
    """Plain integers on the request path; ``/metrics`` reads them."""

    __slots__ = ("escalations", "learned_failures")

    def __init__(self) -> None:
        #: cascade steps whose answer failed the checks (or the call) and went to the next step
        self.escalations = 0
        #: learned-router scores that failed (the default branch was used)
        self.learned_failures = 0


class RouterStage(Stage):
    name = "router"

    def __init__(self, plans: Mapping[str, Plan], clock: Clock) -> None:
        self.plans = plans
        self.clock = clock
        self.counts = RouterCounts()
        #: requests by (route, branch): /metrics
        self.chosen: dict[tuple[str, str], int] = {}

    def chat(self, call: ChatCall) -> ChatCall:
        return functools.partial(self._through, call)

    def embeddings(self, call: EmbeddingsCall) -> EmbeddingsCall:
        plans = self.plans

        async def routed(request: EmbeddingRequest, ctx: RequestContext) -> EmbeddingResponse:
            plan = plans.get(request.model)
            if plan is None:
                return await call(request, ctx)
            ctx.outcome.branch, ctx.outcome.decision = plan.first, "embeddings"
            try:
                return await call(dataclasses.replace(request, model=plan.branches[plan.first]), ctx)
            finally:
                ctx.outcome.route = plan.route  # the ledger row stays on the route the client named

        return routed

    async def _through(self, call: ChatCall, request: ChatRequest, ctx: RequestContext) -> ChatAnswer:
        plan = self.plans.get(request.model)
        if plan is None:
            return await call(request, ctx)
        ctx.outcome.baseline = plan.baseline
        try:
            if plan.cascade is not None:
                answer = await plan.cascade.run(call, request, ctx, plan.branches, self.counts)
            else:
                branch, why = await self._choose(plan, request, ctx)
                ctx.outcome.branch, ctx.outcome.decision = branch, why
                request.model = plan.branches[branch]
                answer = await call(request, ctx)
        finally:
            request.model = ctx.outcome.route = plan.route
            if ctx.outcome.branch is not None:
                key = (plan.route, ctx.outcome.branch)
                self.chosen[key] = self.chosen.get(key, 0) + 1
        return answer

    async def _choose(self, plan: Plan, request: ChatRequest, ctx: RequestContext) -> tuple[str, str]:
        branch, why = choose(plan.rules, "", request, ctx)
        if branch:
            return branch, why
        learned = plan.learned
        if learned is not None:
            try:
                score = await learned.scorer.score(request)
            except Exception as exc:  # noqa: BLE001 - a router that cannot score never fails the request
                self.counts.learned_failures += 1
                log.warning("learned router failed, default branch used: %s", exc, extra={"request_id": ctx.request_id})
                return plan.default, "default (learned router failed)"
            if score >= learned.threshold:
                return learned.cheap, f"learned {score:.3f} >= {learned.threshold:.3f}"
            return learned.strong, f"learned {score:.3f} < {learned.threshold:.3f}"
        return plan.default, "default"
