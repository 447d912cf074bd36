"""A canary's eval gate (``routes.X.variants.ramp.gate``): the suite run against the canary's arm
and the control's inside the running gateway, before each ramp step (docs/evals.md#eval-gated-rollout).

An arm is asked like a shadow candidate: its target route's deployments, retries and fallbacks
(``Gateway.chat``), through the prompts stage (the arm's pinned prompt version is rendered) and
the router stage (a branching target branches); never from the cache, which would grade
yesterday's answers. Each call is a ledger row of its own, user ``breakwater:eval-gate``, tag
``eval=gate``, so the gate's spend is visible and kept out of the canary's guards.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from breakwater.core.config import Config, Problem
from breakwater.core.config.prompts import parse_ref
from breakwater.core.config.rollout import EvalGate
from breakwater.core.errors import BreakwaterError, RequestError
from breakwater.core.ids import IdGenerator
from breakwater.engine.context import Caller, RequestContext
from breakwater.engine.evals.asserts import SuiteError
from breakwater.engine.evals.judge_route import judge_route
from breakwater.engine.evals.target import Reply, output_of
from breakwater.engine.pipeline import ChatCall, Outcome
from breakwater.engine.router.checks import JudgeCall
from breakwater.engine.similarity import similarity_by
from breakwater.engine.tee import EventStream
from breakwater.providers.openai_serve import decode_chat_request, encode_chat_response

if TYPE_CHECKING:
    from breakwater.engine.evals.suite import Case
    from breakwater.runtime.runtime import Runtime

# The suite reader and runner are imported where a gate reads or runs a suite: a gateway whose
# canaries have no gate does not load them at start-up.

#: who the gate's calls are in the ledger
USER = "breakwater:eval-gate"


@dataclass(frozen=True, slots=True)
class ArmTarget:
    """One arm of a route with variants, in ``runtime``, as an eval ``Target``.

    Args:
        runtime: the running configuration.
        route: the route with variants (the ledger rows are on it, with the arm in ``variant``).
        arm: the arm's name.
    """

    runtime: Runtime
    route: str
    arm: str
    ids: IdGenerator = dataclasses.field(default_factory=IdGenerator)

    @property
    def label(self) -> str:
        return f"{self.route}/{self.arm}"

    def _call(self) -> tuple[ChatCall, str, tuple[str, int | None] | None]:
        """The composed call, the arm's target route, its pinned prompt."""
        runtime = self.runtime
        variants = runtime.config.routes[self.route].variants
        assert variants is not None
        spec = variants.arms[self.arm]
        target = spec.route if spec.route is not None else f"{self.route}.{self.arm}"
        pinned = None if spec.prompt is None else parse_ref(spec.prompt)
        call: ChatCall = runtime.gateway.chat
        for stage in (runtime.router_stage, runtime.prompts):
            if stage is not None:
                call = stage.chat(call)
        return call, target, pinned

    async def ask(self, body: Mapping[str, Any]) -> Reply:
        call, target, pinned = self._call()
        sent = {**body, "model": target, "stream": False}
        try:
            request = decode_chat_request(sent)
        except RequestError as exc:
            return Reply(None, f"the case is not a valid request: {exc}", 400)
        clock = self.runtime.process.clock
        ctx = RequestContext("evalgate-" + self.ids.new(), caller=Caller(user=USER, tags={"eval": "gate"}))
        ctx.started_at, ctx.started_mono = clock.time(), clock.monotonic()
        ctx.outcome.route, ctx.outcome.variant = self.route, self.arm
        if pinned is not None and pinned[1] is not None:
            ctx.prompt_choice = (pinned[0], pinned[1])
        outcome = Outcome(request=request)
        started = time.perf_counter()
        try:
            answer = await call(request, ctx)
        except BreakwaterError as exc:
            outcome.status, outcome.error = 502, exc
            return Reply(None, f"{type(exc).__name__}: {exc}", 502)
        finally:
            self._finish(ctx, outcome)
        assert not isinstance(answer, EventStream)  # asked for a whole answer
        latency_ms = (time.perf_counter() - started) * 1000
        recorded = outcome.recorded
        cost = None if recorded is None or recorded.cost_usd is None else float(recorded.cost_usd)
        return Reply(output_of(sent, orjson.loads(encode_chat_response(answer)), latency_ms=latency_ms, cost_usd=cost))

    def _finish(self, ctx: RequestContext, outcome: Outcome) -> None:
        ctx.outcome.route = self.route  # the router stage may have named the branch's route
        _record(self.runtime, ctx, outcome)

    async def aclose(self) -> None:
        return None


def _record(runtime: Runtime, ctx: RequestContext, outcome: Outcome) -> None:
    """The call's ledger row (the recording stage's end)."""
    for stage in runtime.pipeline.stages:
        if stage.name == "recording":
            stage.end(ctx, outcome)


def _judge(runtime: Runtime, route: str, ids: IdGenerator) -> JudgeCall:
    """A judge route's call in the running gateway, recorded like the arms' calls."""
    return judge_route(
        route,
        runtime.gateway.chat,
        lambda ctx, outcome: _record(runtime, ctx, outcome),
        runtime.process.clock,
        request_id=lambda: "evalgate-" + ids.new(),
        caller=lambda: Caller(user=USER, tags={"eval": "judge"}),
    )


@dataclass(frozen=True, slots=True)
class GateReading:
    """The suite's verdict on a canary: its pass rate and its control's, and whether it may advance."""

    passed: bool
    canary: float
    control: float
    message: str


def check_gates(config: Config) -> list[Problem]:
    """Every canary gate's suite read, its judges routes of ``config`` (part of the environment
    checks: check-config, start, reload, ``config apply``)."""
    from breakwater.engine.evals.suite import load_suite

    problems: list[Problem] = []
    for name, route in config.routes.items():
        ramp = None if route.variants is None else route.variants.ramp
        if ramp is None or ramp.gate is None:
            continue
        path = f"routes.{name}.variants.ramp.gate.suite"
        try:
            suite = load_suite(ramp.gate.suite, registry=config.prompts)
        except SuiteError as exc:
            problems.append(Problem(path, str(exc)))
            continue
        for case in suite.cases:
            judge = case.judge
            if judge is not None and (judge.kind != "breakwater" or judge.name not in config.routes):
                problems.append(
                    Problem(path, f"{case.path}: the gate's judge must be a route of this config: {judge.id}")
                )
                break
    return problems


async def read_gate(runtime: Runtime, route: str, canary: str, gate: EvalGate) -> GateReading:
    """Run ``gate.suite`` on the canary arm and on the control, and judge the canary.

    Raises:
        SuiteError: the suite cannot be read, or names a judge that is not a route of this config.
    """
    from breakwater.engine.evals.model_graded import Graders
    from breakwater.engine.evals.runner import EvalTarget, RunOptions, run_suite
    from breakwater.engine.evals.suite import load_suite

    variants = runtime.config.routes[route].variants
    assert variants is not None
    suite = await asyncio.to_thread(load_suite, gate.suite, registry=runtime.config.prompts)
    ids = IdGenerator()
    judges: dict[str, JudgeCall] = {}
    for case in suite.cases:
        spec = case.judge
        if spec is None or spec.id in judges:
            continue
        if spec.kind != "breakwater" or spec.name not in runtime.config.routes:
            raise SuiteError(
                f"{gate.suite}: {case.path}", f"the gate's judge must be a route of this config: {spec.id}"
            )
        judges[spec.id] = _judge(runtime, spec.name, ids)
    embedder = runtime.embedder or runtime.router_embedder
    similarity = None if embedder is None else similarity_by(embedder)

    def graders(case: Case) -> Graders:
        return Graders(similarity, None if case.judge is None else judges.get(case.judge.id))

    arms = [
        EvalTarget(ArmTarget(runtime, route, canary, ids)),
        EvalTarget(ArmTarget(runtime, route, variants.control, ids)),
    ]
    options = RunOptions(runtime.process.clock, gate.concurrency, None, graders)
    result = await run_suite(suite, arms, options)
    rate_c, rate_0 = (result.summary(a.label).pass_rate for a in arms)
    reasons = []
    if gate.min_pass_rate is not None and rate_c < gate.min_pass_rate:
        reasons.append(f"pass rate {rate_c:.3f} under {gate.min_pass_rate:g}")
    if rate_c < rate_0 - gate.max_drop - 1e-9:
        reasons.append(f"pass rate {rate_c:.3f} more than {gate.max_drop:g} under the control's {rate_0:.3f}")
    name = Path(gate.suite).name
    if reasons:
        return GateReading(False, rate_c, rate_0, f"eval suite {name}: " + "; ".join(reasons))
    return GateReading(True, rate_c, rate_0, f"eval suite {name}: pass rate {rate_c:.3f} (control {rate_0:.3f})")
