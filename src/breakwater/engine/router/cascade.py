"""A cascade (FrugalGPT): ask the cheapest step first, keep its answer when the checks pass,
else ask the next; the last step's answer is kept as it is.

Every step but the last is asked for a whole answer, even when the caller streams: the checks
need all of it. A kept answer is then replayed to a streaming caller as a stream
(``engine/cache/replay.py``), so its first token comes when the step has finished (the TTFT
cost, docs/routing.md); the last step, with nothing left to check, streams as it comes. A
caller may skip the cascade with ``x-breakwater-cascade: skip`` (the last step, streamed).

A step that fails (an upstream error, no capacity, past the route's deadline) escalates like an
answer that failed its checks. What every step before the answer cost is kept on
``RouteOutcome.earlier``: the ledger row charges the sum. Headers and the ledger say which
step answered, after how many, and why the others did not.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Mapping
from typing import TYPE_CHECKING

from breakwater.core.errors import Saturated, UpstreamBadRequest, UpstreamError
from breakwater.core.types import ChatRequest, ChatResponse, Usage
from breakwater.engine.cache.replay import replayed
from breakwater.engine.context import RequestContext, SpentCall, charge_unanswered, fresh_tally
from breakwater.engine.pipeline import ChatAnswer, ChatCall
from breakwater.engine.ports import Clock
from breakwater.engine.router.checks import Checks, JudgeCall

if TYPE_CHECKING:
    from breakwater.engine.router.stage import RouterCounts

#: the request header that skips a cascade
SKIP_HEADER = b"x-breakwater-cascade"


class Cascade:
    """Args:
    steps: branch names, cheapest first.
    checks: what a step's answer must pass to be kept.
    clock: the deadline.
    deadline_s: the whole cascade's time (the route's ``timeouts.total``): once past it, the
        last step is asked at once.
    judge_route: the route that scores answers, when the checks have a judge.
    """

    def __init__(
        self,
        steps: tuple[str, ...],
        checks: Checks,
        clock: Clock,
        deadline_s: float | None = None,
        judge_route: str | None = None,
    ) -> None:
        self.steps = steps
        self.checks = checks
        self.clock = clock
        self.deadline_s = deadline_s
        self.judge_route = judge_route

    async def run(
        self,
        call: ChatCall,
        request: ChatRequest,
        ctx: RequestContext,
        branches: Mapping[str, str],
        counts: RouterCounts,
    ) -> ChatAnswer:
        outcome = ctx.outcome
        trail: list[str] = []
        skip = any(k == SKIP_HEADER and v.strip().lower() == b"skip" for k, v in ctx.headers)
        steps = self.steps[-1:] if skip else self.steps
        ends_at = None if self.deadline_s is None else self.clock.monotonic() + self.deadline_s
        for i, branch in enumerate(steps):
            outcome.branch, outcome.cascade_steps = branch, i + 1
            if i == len(steps) - 1:
                trail.append(f"{branch} (last step)" if not skip else f"{branch} (cascade skipped)")
                outcome.decision = "cascade: " + " -> ".join(trail)
                request.model = branches[branch]
                return await call(request, ctx)
            left = None if ends_at is None else ends_at - self.clock.monotonic()
            if left is not None and left <= 0:
                trail.append(f"{branch} (no time left)")
                continue
            step = self._step_request(request, branches[branch])
            try:
                async with asyncio.timeout(left):
                    answer = await call(step, ctx)
                assert isinstance(answer, ChatResponse)  # the step was asked without a stream
                failed = await self.checks.failed(request, answer, self._judge(call, ctx))
            except UpstreamBadRequest:
                raise  # the request itself is refused: every step would refuse it
            except (UpstreamError, Saturated, TimeoutError) as exc:
                counts.escalations += 1
                trail.append(f"{branch} (failed: {type(exc).__name__})")
                fresh_tally(ctx)
                continue
            if failed is None:
                trail.append(f"{branch} (passed)")
                outcome.decision = "cascade: " + " -> ".join(trail)
                return self._answer(request, answer, ctx)
            counts.escalations += 1
            trail.append(f"{branch} ({failed} failed)")
            charge_unanswered(ctx, answer.usage)
            fresh_tally(ctx)
        raise AssertionError("a cascade has at least two steps")  # pragma: no cover

    def _step_request(self, request: ChatRequest, route: str) -> ChatRequest:
        """``request`` for a checked step: a whole answer, with as many samples and logprobs as
        the checks need."""
        checks = self.checks
        n = max(request.n, checks.samples)
        logprobs = True if checks.wants_logprobs else request.logprobs
        raw = request.raw
        if raw is not None:
            raw = {k: v for k, v in raw.items() if k not in ("stream", "stream_options")}
            if n != request.n:
                raw["n"] = n
            if logprobs:
                raw["logprobs"] = True
        return dataclasses.replace(
            request, model=route, stream=False, include_usage=False, n=n, logprobs=logprobs, raw=raw
        )

    def _answer(self, request: ChatRequest, answer: ChatResponse, ctx: RequestContext) -> ChatAnswer:
        """The kept answer as the caller asked for it: its choices and logprobs, a stream if it streams."""
        if len(answer.choices) > request.n or (self.checks.wants_logprobs and not request.logprobs):
            choices = answer.choices[: request.n]
            if not request.logprobs:
                choices = [dataclasses.replace(c, logprobs=None) for c in choices]
            answer = dataclasses.replace(answer, choices=choices, raw_body=None)
            ctx.tally.response(answer)
        if not request.stream:
            return answer
        ctx.tally.first_event_at = ctx.tally.last_event_at = self.clock.monotonic()
        return replayed(answer)

    def _judge(self, call: ChatCall, ctx: RequestContext) -> JudgeCall | None:
        route = self.judge_route
        if route is None:
            return None

        async def judge(prompt: ChatRequest) -> ChatResponse:
            mine = RequestContext(ctx.request_id, caller=ctx.caller, headers=ctx.headers)
            # the grading request quotes this one: its deployments get it as this one's would
            mine.dlp = None if ctx.dlp is None else ctx.dlp.fork()
            mine.regions = ctx.regions  # and may go where this one may
            prompt.model = route
            verdict = await call(prompt, mine)
            assert isinstance(verdict, ChatResponse)
            spent = mine.outcome
            ctx.outcome.earlier.append(
                SpentCall(
                    spent.deployment or "", spent.provider or "", spent.upstream_model or "", verdict.usage or Usage()
                )
            )
            return verdict

        return judge
