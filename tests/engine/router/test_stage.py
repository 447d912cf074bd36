"""The router stage around a stub call: a learned router that fails sends the request to the
default branch and is counted; the request's model is the route's again afterwards."""

from __future__ import annotations

from breakwater.core.types import ChatRequest, ChatResponse, Message, TextPart
from breakwater.engine.context import RequestContext
from breakwater.engine.pipeline import ChatAnswer
from breakwater.engine.router.stage import Learned, Plan, RouterStage
from breakwater.infra.clock import ManualClock


class Broken:
    async def score(self, request: ChatRequest) -> float:
        raise ValueError("the embedder is gone")


class Fixed:
    def __init__(self, value: float) -> None:
        self.value = value

    async def score(self, request: ChatRequest) -> float:
        return self.value


def _plan(scorer: Broken | Fixed) -> Plan:
    learned = Learned(scorer, cheap="cheap", strong="strong", threshold=0.5)
    return Plan("smart", {"cheap": "small", "strong": "big"}, default="strong", learned=learned)


async def _route(plan: Plan) -> tuple[RouterStage, RequestContext, list[str], ChatRequest]:
    stage = RouterStage({"smart": plan}, ManualClock())
    seen: list[str] = []

    async def call(request: ChatRequest, ctx: RequestContext) -> ChatAnswer:
        seen.append(request.model)
        return ChatResponse("r", "m", 0, [])

    request = ChatRequest(model="smart", messages=[Message("user", [TextPart("hi")])])
    ctx = RequestContext("t")
    await stage.chat(call)(request, ctx)
    return stage, ctx, seen, request


async def test_a_failing_learned_router_uses_the_default_branch_and_is_counted() -> None:
    stage, ctx, seen, request = await _route(_plan(Broken()))
    assert seen == ["big"] and ctx.outcome.branch == "strong"
    assert ctx.outcome.decision == "default (learned router failed)"
    assert stage.counts.learned_failures == 1 and stage.chosen == {("smart", "strong"): 1}
    assert request.model == ctx.outcome.route == "smart"  # the ledger row stays on the route asked for


async def test_the_learned_score_against_its_threshold() -> None:
    _, ctx, seen, _ = await _route(_plan(Fixed(0.5)))
    assert seen == ["small"] and ctx.outcome.decision == "learned 0.500 >= 0.500"
    _, ctx, seen, _ = await _route(_plan(Fixed(0.49)))
    assert seen == ["big"] and ctx.outcome.decision == "learned 0.490 < 0.500"


async def test_other_routes_pass_through_untouched() -> None:
    stage = RouterStage({"smart": _plan(Fixed(1.0))}, ManualClock())
    seen: list[str] = []

    async def call(request: ChatRequest, ctx: RequestContext) -> ChatAnswer:
        seen.append(request.model)
        return ChatResponse("r", "m", 0, [])

    ctx = RequestContext("t")
    await stage.chat(call)(ChatRequest(model="plain", messages=[]), ctx)
    assert seen == ["plain"] and ctx.outcome.branch is None and stage.chosen == {}
