"""The drift watch: a sampled share of a route's answered requests graded by eval assertions.

``routes.X.drift`` (docs/evals.md, "Drift watch"). Whether a request is sampled is decided when
it arrives, by the injected randomness; a request not sampled costs one dict lookup and one
random number. A sampled one is graded only once its answer is complete (a whole response; a
stream once it ended, rebuilt by a tap on the one stream tee), never before: it joins a bounded
queue with one non-blocking put (a full queue drops the sample, counted) and a few workers per
process grade it with ``model_graded.evaluate``. The answer the caller gets is never delayed or
changed, and nothing a grader does can fail the request.

A graded sample becomes a ``Score``: the request's id, route, time, score, pass and which
assertion types failed; never the prompt, the answer or a judge's reason (they may hold what the
capture rules forbid storing). It goes to ``record`` (the ledger's eval score table) and to the
route's ``DriftWatch`` (``window.py``), whose crossing below the baseline goes to ``alert``.

A judge (``llm-rubric``, ``factuality``) is a call to the plan's judge route through the
gateway's calls; each judge call is told to ``finish`` (the recording stage's ``end``: a ledger
row of its own, user ``breakwater:drift``), so what the watch spends shows in the ledger.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from breakwater.core.ids import IdGenerator
from breakwater.core.types import ChatRequest, ChatResponse
from breakwater.engine.cache.replay import Assembly
from breakwater.engine.context import Caller, RequestContext
from breakwater.engine.drift.window import DriftWatch, QualityDrop, Reading
from breakwater.engine.evals.asserts import Assertion, Output
from breakwater.engine.evals.judge_route import judge_route
from breakwater.engine.evals.model_graded import Graders, evaluate
from breakwater.engine.pipeline import ChatAnswer, ChatCall, Outcome, Stage
from breakwater.engine.ports import Clock, RandomSource
from breakwater.engine.router.checks import JudgeCall
from breakwater.engine.similarity import Similarity, held_to
from breakwater.engine.tasks import LaneCounts, Lanes
from breakwater.engine.tee import EventStream

if TYPE_CHECKING:
    from breakwater.engine.guardrails.dlp import DlpPlan

log = logging.getLogger("breakwater.drift")

#: the ledger's user for judge calls
USER = "breakwater:drift"


@dataclass(frozen=True, slots=True)
class DriftPlan:
    """A route's drift watch, as the stage runs it (``routes.X.drift``)."""

    assertions: tuple[Assertion, ...]
    share: float = 1.0
    threshold: float | None = None
    judge: str | None = None
    window_s: float = 3600.0
    baseline_s: float = 86400.0
    margin: float = 0.05
    min_samples: int = 20
    queue: int = 100
    concurrency: int = 2


@dataclass(frozen=True, slots=True)
class Score:
    """One graded sample, as stored next to its ledger row: no content."""

    request_id: str
    ts: float
    route: str
    score: float
    passed: bool
    #: the types of the assertions that failed (``not-contains``, ``llm-rubric``), sorted, once each
    failed: tuple[str, ...]


@dataclass(slots=True)
class DriftCounts(LaneCounts):
    """Per route: samples graded, and (``LaneCounts``) dropped and failed."""

    scored: dict[str, int] = dataclasses.field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class _Job:
    route: str
    plan: DriftPlan
    request_id: str
    at: float
    output: Output
    dlp: DlpPlan | None = None
    #: the graded request's allowed regions (data residency): its judge is held to them
    regions: frozenset[str] | None = None


class DriftStage(Stage):
    """Args:
    plans: by route name, the routes watched.
    chat: the gateway's own chat call (``Gateway.chat``), for judge routes.
    clock, rng: the scores' times; the sampling.
    finish: told of each judge call when it is over (the recording stage's ``end``).
    record: stores a score (``None``: the ledger is off; scores then live in memory only).
    alert: told of each ``quality_drop`` crossing (the runtime's alert outbox).
    similarity: the embedder's similarity, for ``similar`` assertions.
    previous: the stage of the configuration before a reload: a route watched with the same
        windows keeps its scores and alert state.
    """

    name = "drift"

    def __init__(
        self,
        plans: Mapping[str, DriftPlan],
        chat: Callable[[ChatRequest, RequestContext], Awaitable[ChatResponse]],
        clock: Clock,
        rng: RandomSource,
        finish: Callable[[RequestContext, Outcome], None],
        *,
        record: Callable[[Score], Awaitable[None]] | None = None,
        alert: Callable[[QualityDrop], None] | None = None,
        similarity: Similarity | None = None,
        previous: DriftStage | None = None,
    ) -> None:
        self.plans = dict(plans)
        self.counts = DriftCounts()
        self._chat, self._clock, self._rng, self._finish = chat, clock, rng, finish
        self._record, self._alert, self._similarity = record, alert, similarity
        self.watches: dict[str, DriftWatch] = {}
        for route, p in self.plans.items():
            watch = DriftWatch(route, p.window_s, p.baseline_s, p.margin, p.min_samples)
            before = None if previous is None else previous.watches.get(route)
            if before is not None and watch.same_windows(before):
                # the same watch, shared: the old stage's last samples still count
                before.margin, before.min_samples = p.margin, p.min_samples
                watch = before
            self.watches[route] = watch
        #: per route: its queue and the workers emptying it (made on the route's first sample)
        self._lanes: Lanes[_Job] = Lanes(self._grade, "breakwater-drift", self._failed)
        self._ids = IdGenerator()
        #: whether a route sheds optional work now (its error budget burns fast: docs/slo.md)
        self.shed: Callable[[str], bool] | None = None

    def chat(self, call: ChatCall) -> ChatCall:
        plans, rng, clock = self.plans, self._rng, self._clock

        async def watched(request: ChatRequest, ctx: RequestContext) -> ChatAnswer:
            plan = plans.get(request.model)
            if plan is None or (plan.share < 1.0 and rng.random() >= plan.share):
                return await call(request, ctx)
            if self.shed is not None and self.shed(request.model):
                DriftCounts.add(self.counts.shed, request.model)
                return await call(request, ctx)
            started = clock.monotonic()
            answer = await call(request, ctx)
            route, rid, dlp, regions = request.model, ctx.request_id, ctx.dlp, ctx.regions
            if isinstance(answer, EventStream):
                answer.tap(Assembly(lambda whole: self._offer(route, plan, request, rid, whole, started, dlp, regions)))
            else:
                self._offer(route, plan, request, rid, answer, started, dlp, regions)
            return answer

        return watched

    def queued(self, route: str) -> int:
        """Samples of ``route`` waiting to be graded."""
        return self._lanes.queued(route)

    def reading(self, route: str) -> Reading:
        """The route's two windows now."""
        return self.watches[route].scores.read(self._clock.time())

    def _offer(
        self,
        route: str,
        plan: DriftPlan,
        request: ChatRequest,
        rid: str,
        answer: ChatResponse,
        started: float,
        dlp: DlpPlan | None = None,
        regions: frozenset[str] | None = None,
    ) -> None:
        """Queue the sample, never waiting: a full queue drops it."""
        latency_ms = (self._clock.monotonic() - started) * 1000.0
        job = _Job(route, plan, rid, self._clock.time(), _output(request, answer, latency_ms), dlp, regions)
        if not self._lanes.offer(route, job, plan.queue, plan.concurrency):
            DriftCounts.add(self.counts.dropped, route)

    def _failed(self, job: _Job, exc: Exception) -> None:
        # a worker must outlive any one sample (it only logs, without content)
        DriftCounts.add(self.counts.failed, job.route)
        log.error("grading a drift sample of request %s failed unexpectedly", job.request_id, exc_info=exc)

    async def _grade(self, job: _Job) -> None:
        plan = job.plan
        judge = None if plan.judge is None else self._judge(plan.judge, job.request_id, job.dlp, job.regions)
        similarity = None if self._similarity is None else held_to(self._similarity, job.regions)
        graders = Graders(similarity, judge)
        verdict = await evaluate(plan.assertions, job.output, plan.threshold, graders)
        failed = sorted(
            {("not-" if g.assertion.negate else "") + g.assertion.type for g in verdict.grades if not g.passed}
        )
        score = Score(job.request_id, job.at, job.route, verdict.score, verdict.passed, tuple(failed))
        DriftCounts.add(self.counts.scored, job.route)
        drop = self.watches[job.route].add(score.ts, score.score, self._clock.time())
        if drop is not None and self._alert is not None:
            self._alert(drop)
        if self._record is not None:
            try:
                await self._record(score)
            except Exception as exc:  # noqa: BLE001 - the score stays in the watch; the store is told off in the log
                log.warning("a drift score of request %s was not stored: %s", job.request_id, type(exc).__name__)

    def _judge(
        self, route: str, request_id: str, dlp: DlpPlan | None, regions: frozenset[str] | None = None
    ) -> JudgeCall:
        """A judge route's call for one sample: a ledger row of its own, naming the graded request."""
        return judge_route(
            route,
            self._chat,
            self._finish,
            self._clock,
            request_id=lambda: "drift-" + self._ids.new(),
            caller=lambda: Caller(user=USER, tags={"drift_of": request_id}),
            dlp=dlp,
            regions=regions,
        )

    async def stop(self) -> None:
        """Stop the workers; samples still queued are dropped (counted)."""
        await self._lanes.stop(self.counts.dropped)


def _output(request: ChatRequest, answer: ChatResponse, latency_ms: float) -> Output:
    """What the assertions grade: the first choice's text, tool calls and logprobs, the request's
    tools and last user turn (for the judges), the latency the stage saw."""
    choice = answer.choices[0] if answer.choices else None
    message = None if choice is None else choice.message
    calls: list[Mapping[str, Any]] | None = None
    if message is not None and message.tool_calls:
        calls = [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
            for c in message.tool_calls
        ]
    tools: list[Mapping[str, Any]] | None = None
    if request.tools:
        tools = [{"type": "function", "function": {"name": t.name, "parameters": t.parameters}} for t in request.tools]
    last_user = next((m for m in reversed(request.messages) if m.role == "user"), None)
    return Output(
        "" if message is None else message.text(),
        latency_ms=latency_ms,
        logprobs=None if choice is None else _logprobs(choice.logprobs),
        tool_calls=calls,
        tools=tools,
        prompt="" if last_user is None else last_user.text(),
    )


def _logprobs(raw: Any) -> Sequence[float] | None:
    """The tokens' log probabilities from OpenAI's ``logprobs`` object, when there."""
    content = raw.get("content") if isinstance(raw, Mapping) else None
    if not isinstance(content, list):
        return None
    values = [e["logprob"] for e in content if isinstance(e, Mapping) and isinstance(e.get("logprob"), int | float)]
    return values or None
