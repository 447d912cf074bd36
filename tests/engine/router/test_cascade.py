"""The cascade around stub steps: the deadline, a refused request, agreement and a judge."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from breakwater.core.config.branching import Checks as ChecksConfig
from breakwater.core.errors import UpstreamBadRequest
from breakwater.core.types import ChatRequest, ChatResponse, Choice, Message, TextPart, Usage
from breakwater.engine.context import RequestContext
from breakwater.engine.pipeline import ChatAnswer
from breakwater.engine.router.cascade import Cascade
from breakwater.engine.router.checks import Checks
from breakwater.engine.router.stage import RouterCounts
from breakwater.infra.clock import SystemClock

BRANCHES = {"cheap": "small", "strong": "big"}


def _answer(*texts: str, usage: Usage | None = None) -> ChatResponse:
    choices = [Choice(i, Message("assistant", [TextPart(t)]), "stop") for i, t in enumerate(texts)]
    return ChatResponse("r", "m", 0, choices, usage or Usage(10, 2))


def _request() -> ChatRequest:
    return ChatRequest(model="route", messages=[Message("user", [TextPart("What is 2+2?")])])


Step = Callable[[ChatRequest], ChatResponse]


def _call(steps: dict[str, Step], asked: list[ChatRequest]) -> Callable[[ChatRequest, RequestContext], object]:
    async def call(request: ChatRequest, ctx: RequestContext) -> ChatAnswer:
        asked.append(request)
        ctx.outcome.deployment = ctx.outcome.provider = ctx.outcome.upstream_model = request.model
        step = steps[request.model]
        if step is HANG:
            await asyncio.Event().wait()
        return step(request)

    return call


def HANG(request: ChatRequest) -> ChatResponse:  # a marker: the step never answers
    raise AssertionError("never called")


async def _run(cascade: Cascade, steps: dict[str, Step]) -> tuple[ChatAnswer, RequestContext, list[ChatRequest]]:
    asked: list[ChatRequest] = []
    ctx = RequestContext("t")
    answer = await cascade.run(_call(steps, asked), _request(), ctx, BRANCHES, RouterCounts())  # type: ignore[arg-type]
    return answer, ctx, asked


async def test_a_cheap_step_past_the_deadline_escalates() -> None:
    """The route's time limit cuts a hanging cheap step; the last step still answers."""
    cascade = Cascade(("cheap", "strong"), Checks(ChecksConfig()), SystemClock(), deadline_s=0.05)
    answer, ctx, _ = await _run(cascade, {"small": HANG, "big": lambda r: _answer("4")})
    assert isinstance(answer, ChatResponse) and answer.choices[0].message.text() == "4"
    assert ctx.outcome.decision == "cascade: cheap (failed: TimeoutError) -> strong (last step)"
    assert ctx.outcome.earlier == []  # nothing was paid for the step that never answered


async def test_a_request_the_upstream_refuses_is_not_escalated() -> None:
    def refuse(request: ChatRequest) -> ChatResponse:
        raise UpstreamBadRequest("bad request", provider="m")

    cascade = Cascade(("cheap", "strong"), Checks(ChecksConfig()), SystemClock())
    with pytest.raises(UpstreamBadRequest):
        await _run(cascade, {"small": refuse, "big": lambda r: _answer("4")})


async def test_agreement_asks_for_samples_and_returns_what_the_caller_asked_for() -> None:
    checks = Checks(ChecksConfig(agreement=3))
    cascade = Cascade(("cheap", "strong"), checks, SystemClock())
    answer, ctx, asked = await _run(
        cascade, {"small": lambda r: _answer("4", " 4", "4 "), "big": lambda r: _answer("x")}
    )
    assert asked[0].n == 3 and isinstance(answer, ChatResponse)
    assert [c.message.text() for c in answer.choices] == ["4"] and ctx.outcome.branch == "cheap"
    answer, ctx, _ = await _run(cascade, {"small": lambda r: _answer("4", "5", "4"), "big": lambda r: _answer("x")})
    assert ctx.outcome.branch == "strong" and "agreement failed" in (ctx.outcome.decision or "")
    assert [(e.deployment, e.usage.input_tokens) for e in ctx.outcome.earlier] == [("small", 10)]


@pytest.mark.parametrize(("verdict", "branch"), [("Score: 8", "cheap"), ("3", "strong"), ("no idea", "strong")])
async def test_a_judge_route_scores_the_cheap_answer(verdict: str, branch: str) -> None:
    """The judge's score decides; its call is paid for either way (it is in ``earlier``)."""
    checks = Checks(ChecksConfig.model_validate({"judge": {"route": "grader", "min_score": 7}}))
    cascade = Cascade(("cheap", "strong"), checks, SystemClock(), judge_route="grader")
    steps: dict[str, Step] = {
        "small": lambda r: _answer("4"),
        "big": lambda r: _answer("four"),
        "grader": lambda r: _answer(verdict, usage=Usage(50, 1)),
    }
    _, ctx, asked = await _run(cascade, steps)
    assert ctx.outcome.branch == branch
    judged = [r for r in asked if r.model == "grader"]
    assert len(judged) == 1 and "What is 2+2?" in judged[0].messages[-1].text() and "4" in judged[0].messages[-1].text()
    assert ("grader", 50) in [(e.deployment, e.usage.input_tokens) for e in ctx.outcome.earlier]
