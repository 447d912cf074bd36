"""A canary's eval gate (``routes.X.variants.ramp.gate``): the suite run against the canary's arm
and the control's inside the running gateway, before each ramp step (docs/evals.md#eval-gated-rollout).

An arm is asked like a shadow candidate: its target route's deployments, retries and fallbacks
(``Gateway.chat``), through the prompts stage (the arm's pinned prompt version is rendered) and
the router stage (a branching target branches); never from the cache, which would grade
yesterday's answers. Each call is a ledger row of its own, user ``breakwater:eval-gate``, tag
``eval=gate``, so the gate's spend is visible and kept out of the canary's guards.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from breakwater.core.config.prompts import parse_ref
from breakwater.core.errors import BreakwaterError, RequestError
from breakwater.core.ids import IdGenerator
from breakwater.engine.context import Caller, RequestContext
from breakwater.engine.evals.target import Reply, output_of
from breakwater.engine.pipeline import ChatCall, Outcome
from breakwater.engine.tee import EventStream
from breakwater.providers.openai_serve import decode_chat_request, encode_chat_response

if TYPE_CHECKING:
    from breakwater.runtime.runtime import Runtime

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
        for stage in self.runtime.pipeline.stages:
            if stage.name == "recording":
                stage.end(ctx, outcome)

    async def aclose(self) -> None:
        return None
