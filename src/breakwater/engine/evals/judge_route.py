"""A judge route's call inside the gateway (``model_graded.Graders.judge``): the grading request
sent to the route through the gateway's calls, each call a ledger row of its own. The drift
watch's judges and a canary gate's judges are made here."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from breakwater.core.types import ChatRequest, ChatResponse
from breakwater.engine.context import Caller, RequestContext
from breakwater.engine.pipeline import Outcome
from breakwater.engine.ports import Clock
from breakwater.engine.router.checks import JudgeCall

if TYPE_CHECKING:
    from breakwater.engine.guardrails.dlp import DlpPlan


def judge_route(
    route: str,
    chat: Callable[[ChatRequest, RequestContext], Awaitable[ChatResponse]],
    finish: Callable[[RequestContext, Outcome], None],
    clock: Clock,
    *,
    request_id: Callable[[], str],
    caller: Callable[[], Caller],
    dlp: DlpPlan | None = None,
    regions: frozenset[str] | None = None,
) -> JudgeCall:
    """Args:
    route: the judge route.
    chat: the gateway's chat call (``Gateway.chat``).
    finish: told of each call when it is over (the recording stage's ``end``: its ledger row).
    request_id, caller: each call's request id and who the ledger says asked.
    dlp: the graded request's data-loss plan: the grading request quotes it, so each judge
        deployment gets it as that request's would (``DlpPlan.outbound``).
    regions: the graded request's allowed regions (data residency): the judge is held to them.

    A failed call is recorded (502; 499 when cancelled) and raised: ``model_graded`` fails the
    assertion, naming the error's type.
    """

    async def judge(prompt: ChatRequest) -> ChatResponse:
        ctx = RequestContext(request_id(), caller=caller())
        ctx.started_at, ctx.started_mono = clock.time(), clock.monotonic()
        ctx.outcome.route = route
        ctx.dlp = None if dlp is None else dlp.fork()
        ctx.regions = regions
        request = dataclasses.replace(prompt, model=route)
        outcome = Outcome(request=request)
        try:
            return await chat(request, ctx)
        except asyncio.CancelledError as exc:
            outcome.status, outcome.error = 499, exc
            raise
        except Exception as exc:
            outcome.status, outcome.error = 502, exc
            raise
        finally:
            finish(ctx, outcome)

    return judge
