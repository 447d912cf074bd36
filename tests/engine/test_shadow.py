"""The shadow stage on its own: the caller never waits for the candidate, a full queue drops the
mirror (counted), a stream is mirrored once it ended, and each candidate call is told to the
recorder with the request it mirrors and how the answers compared."""

from __future__ import annotations

import asyncio
from typing import Any

from breakwater.core.config.dlp import RouteDlp
from breakwater.core.errors import UpstreamServerError
from breakwater.core.types import (
    ChatRequest,
    ChatResponse,
    Choice,
    FinishEvent,
    Message,
    StreamStart,
    TextDelta,
    TextPart,
)
from breakwater.engine.context import RequestContext
from breakwater.engine.guardrails.dlp import DlpPlan
from breakwater.engine.pipeline import Outcome
from breakwater.engine.shadow.stage import ShadowPlan, ShadowStage
from breakwater.engine.tee import EventStream
from breakwater.infra.clock import ManualClock


class Rng:
    def __init__(self, *values: float) -> None:
        self.values = list(values)

    def random(self) -> float:
        return self.values.pop(0)


def _answer(text: str) -> ChatResponse:
    return ChatResponse("id", "m", 0, [Choice(0, Message("assistant", [TextPart(text)]), "stop")])


def _request(model: str = "prod", stream: bool = False) -> ChatRequest:
    return ChatRequest(model=model, messages=[Message("user", [TextPart("capital of France?")])], stream=stream)


class Candidate:
    """The candidate route: answers ``text`` once released (or at once), or fails."""

    def __init__(self, text: str = "Paris.", *, fail: bool = False, stall: bool = False) -> None:
        self.text, self.fail = text, fail
        self.release = asyncio.Event()
        if not stall:
            self.release.set()
        self.calls: list[ChatRequest] = []
        self.entered = asyncio.Event()

    async def __call__(self, request: ChatRequest, ctx: RequestContext) -> ChatResponse:
        self.calls.append(request)
        self.entered.set()
        await self.release.wait()
        if self.fail:
            raise UpstreamServerError("down", provider="mock")
        return _answer(self.text)


class Finished:
    def __init__(self) -> None:
        self.calls: list[tuple[RequestContext, Outcome]] = []
        self.event = asyncio.Event()

    def __call__(self, ctx: RequestContext, outcome: Outcome) -> None:
        self.calls.append((ctx, outcome))
        self.event.set()

    async def wait(self, n: int) -> None:
        while len(self.calls) < n:
            self.event.clear()
            await self.event.wait()


async def _primary(request: ChatRequest, ctx: RequestContext) -> Any:
    return _answer("  paris. ")


def _stage(candidate: Candidate, finished: Finished, rng: Rng | None = None, **plan: Any) -> ShadowStage:
    plans = {"prod": ShadowPlan("next", **plan)}
    return ShadowStage(plans, candidate, ManualClock(), rng or Rng(*[0.0] * 100), finished)


async def test_the_caller_gets_its_answer_while_the_candidate_stalls() -> None:
    candidate, finished = Candidate(stall=True), Finished()
    stage = _stage(candidate, finished, queue=1, concurrency=1)
    call = stage.chat(_primary)
    answers = [await call(_request(), RequestContext("req-0"))]
    await candidate.entered.wait()  # the worker took the first mirror to the candidate
    answers += [await call(_request(), RequestContext(f"req-{i}")) for i in (1, 2)]
    assert all(a.choices[0].message.text() == "  paris. " for a in answers)
    # one mirror in the candidate's hands, one queued, the third dropped: nobody waited
    assert stage.counts.mirrored == {"prod": 2} and stage.counts.dropped == {"prod": 1}
    assert finished.calls == []
    candidate.release.set()
    await finished.wait(2)
    ctx, outcome = finished.calls[0]
    assert ctx.caller.user == "breakwater:shadow" and ctx.outcome.route == "next"
    assert ctx.outcome.shadow_of == "req-0" and ctx.outcome.shadow_exact is True  # case and spacing aside
    assert outcome.status == 200 and outcome.request is not None and outcome.request.model == "next"
    assert [r.model for r in candidate.calls] == ["next", "next"] and not candidate.calls[0].stream
    await stage.stop()


async def test_a_failing_candidate_is_recorded_and_counted() -> None:
    finished = Finished()
    stage = _stage(Candidate(fail=True), finished)
    await stage.chat(_primary)(_request(), RequestContext("req-1"))
    await finished.wait(1)
    ctx, outcome = finished.calls[0]
    assert outcome.status == 502 and isinstance(outcome.error, UpstreamServerError)
    assert ctx.outcome.shadow_exact is None
    assert stage.counts.failed == {"prod": 1}
    await stage.stop()


async def test_a_stream_is_mirrored_once_it_ended_and_answers_are_compared() -> None:
    finished = Finished()

    async def similarity(a: str, b: str) -> float | None:
        return 0.42

    stage = ShadowStage(
        {"prod": ShadowPlan("next", similarity=True)},
        Candidate("Lyon."),
        ManualClock(),
        Rng(0.0),
        finished,
        similarity=similarity,
    )

    async def events() -> Any:
        yield [StreamStart("id", "m", 0), TextDelta("Par")]
        yield [TextDelta("is."), FinishEvent("stop")]

    async def streamed(request: ChatRequest, ctx: RequestContext) -> Any:
        return EventStream(events())

    stream = await stage.chat(streamed)(_request(stream=True), RequestContext("req-s"))
    assert isinstance(stream, EventStream)
    assert stage.counts.mirrored == {}  # not before the stream ends
    async for _ in stream:
        pass
    await finished.wait(1)
    ctx, _ = finished.calls[0]
    assert (ctx.outcome.shadow_of, ctx.outcome.shadow_exact, ctx.outcome.shadow_similarity) == ("req-s", False, 0.42)
    await stage.stop()


async def test_only_the_sampled_share_and_shadowed_routes_are_mirrored() -> None:
    candidate, finished = Candidate(), Finished()
    stage = _stage(candidate, finished, Rng(0.05, 0.5, 0.09), share=0.1)
    call = stage.chat(_primary)
    for i in range(3):
        await call(_request(), RequestContext(f"req-{i}"))
    await call(_request("other"), RequestContext("req-other"))  # no shadow: no draw, no mirror
    await finished.wait(2)
    assert [c.outcome.shadow_of for c, _ in finished.calls] == ["req-0", "req-2"]
    await stage.stop()


async def test_stop_drops_what_is_still_queued() -> None:
    candidate, finished = Candidate(stall=True), Finished()
    stage = _stage(candidate, finished, queue=5, concurrency=1)
    await stage.chat(_primary)(_request(), RequestContext("req-0"))
    await candidate.entered.wait()
    for i in (1, 2):
        await stage.chat(_primary)(_request(), RequestContext(f"req-{i}"))
    assert stage.queued("prod") == 2
    await stage.stop()
    assert stage.counts.dropped == {"prod": 2}
    assert len(finished.calls) == 1  # the call cut short still leaves its record


async def test_the_candidate_call_carries_the_primarys_data_loss_plan() -> None:
    """A shadow call's deployments get what their providers may receive, like the primary's (a copy of its plan)."""
    seen: list[DlpPlan | None] = []

    async def candidate(request: ChatRequest, ctx: RequestContext) -> ChatResponse:
        seen.append(ctx.dlp)
        return _answer("Paris.")

    finished = Finished()
    stage = ShadowStage({"prod": ShadowPlan("next")}, candidate, ManualClock(), Rng(0.0), finished)
    ctx = RequestContext("req-1")
    ctx.dlp = DlpPlan(RouteDlp(action="redact"), {}, ["email"])
    await stage.chat(_primary)(_request(), ctx)
    await finished.wait(1)
    assert seen[0] is not None and seen[0] is not ctx.dlp and seen[0].route.action == "redact"
    await stage.stop()


async def test_a_route_burning_its_error_budget_sheds_its_mirrors() -> None:
    """While the route's budget burns fast (docs/slo.md) a sampled request is answered but not
    mirrored, and counted as shed; once the burn stops, mirroring resumes."""
    candidate, finished = Candidate(), Finished()
    stage = _stage(candidate, finished)
    burning = {"prod"}
    stage.shed = burning.__contains__
    call = stage.chat(_primary)
    answer = await call(_request(), RequestContext("req-0"))
    assert isinstance(answer, ChatResponse)
    assert stage.counts.shed == {"prod": 1} and stage.counts.mirrored == {} and not candidate.calls
    burning.clear()
    await call(_request(), RequestContext("req-1"))
    await finished.wait(1)
    assert [c.outcome.shadow_of for c, _ in finished.calls] == ["req-1"]
    await stage.stop()
