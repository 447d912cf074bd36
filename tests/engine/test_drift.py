"""The drift stage on its own: it samples the share its randomness says, never changes or delays
the answer (whole or streamed), grades off the request path through a bounded queue (overflow
counted), keeps no content in a score, calls a judge route as a call of its own; and the rolling
score's windows and the once-per-crossing alert."""

from __future__ import annotations

import asyncio
from typing import Any

from breakwater.core.types import (
    ChatRequest,
    ChatResponse,
    FinishEvent,
    Message,
    StreamStart,
    TextDelta,
    TextPart,
)
from breakwater.engine.context import RequestContext
from breakwater.engine.drift.stage import DriftPlan, DriftStage, Score
from breakwater.engine.drift.window import DriftWatch, QualityDrop, RollingScore
from breakwater.engine.evals.asserts import parse_assertion
from breakwater.engine.pipeline import Outcome
from breakwater.engine.tee import EventStream
from breakwater.infra.clock import ManualClock
from tests.engine.test_shadow import Rng, _answer

SECRET = "my card is 4111 1111 1111 1111"


def _request(model: str = "prod", stream: bool = False) -> ChatRequest:
    return ChatRequest(model=model, messages=[Message("user", [TextPart(SECRET)])], stream=stream)


def _plan(*asserts: dict[str, Any], **options: Any) -> DriftPlan:
    parsed = tuple(parse_assertion(a, f"asserts[{i}]") for i, a in enumerate(asserts))
    return DriftPlan(parsed or (parse_assertion({"type": "icontains", "value": "paris"}, "a"),), **options)


class Recorded:
    """The score store: keeps what it is given, and lets a test wait for a count."""

    def __init__(self) -> None:
        self.scores: list[Score] = []
        self.event = asyncio.Event()

    async def __call__(self, score: Score) -> None:
        self.scores.append(score)
        self.event.set()

    async def wait(self, n: int) -> None:
        while len(self.scores) < n:
            self.event.clear()
            await self.event.wait()


def _stage(
    plan: DriftPlan, rng: Rng, recorded: Recorded, *, chat: Any = None, finish: Any = None, **kw: Any
) -> DriftStage:
    async def no_judge(request: ChatRequest, ctx: RequestContext) -> ChatResponse:
        raise AssertionError("no judge configured")

    return DriftStage(
        {"prod": plan},
        chat or no_judge,
        kw.pop("clock", ManualClock(wall=1000.0)),
        rng,
        finish or (lambda ctx, outcome: None),
        record=recorded,
        **kw,
    )


async def test_only_the_share_the_randomness_picks_is_graded() -> None:
    """share 0.1: draws 0.5 and 0.2 are not sampled, 0.05 is; a route without a watch draws nothing."""
    recorded = Recorded()
    rng = Rng(0.5, 0.05, 0.2)
    stage = _stage(_plan(share=0.1), rng, recorded)
    answer = _answer("Paris.")

    async def primary(request: ChatRequest, ctx: RequestContext) -> Any:
        return answer

    call = stage.chat(primary)
    for i in range(3):
        assert await call(_request(), RequestContext(f"req-{i}")) is answer  # the very same object
    assert await call(_request("other"), RequestContext("req-x")) is answer
    await recorded.wait(1)
    assert rng.values == []  # three draws for prod, none for the unwatched route
    assert [s.request_id for s in recorded.scores] == ["req-1"]
    assert stage.counts.scored == {"prod": 1}
    await stage.stop()


async def test_a_stream_passes_unchanged_and_is_graded_once_it_ended() -> None:
    """The client sees the stream's batches as they were; the sample is graded from the whole answer."""
    recorded = Recorded()
    stage = _stage(_plan({"type": "icontains", "value": "paris"}, {"type": "regex", "value": "^Lyon"}), Rng(), recorded)
    batches = [[StreamStart("id", "m", 0), TextDelta("Par")], [TextDelta("is."), FinishEvent("stop")]]

    async def events() -> Any:
        for batch in batches:
            yield batch

    async def streamed(request: ChatRequest, ctx: RequestContext) -> Any:
        return EventStream(events())

    stream = await stage.chat(streamed)(_request(stream=True), RequestContext("req-s"))
    assert isinstance(stream, EventStream)
    seen = [batch async for batch in stream]
    assert seen == batches
    await recorded.wait(1)
    (score,) = recorded.scores
    assert (score.request_id, score.route, score.score, score.passed, score.failed) == (
        "req-s", "prod", 0.5, False, ("regex",)
    )  # fmt: skip
    assert SECRET not in repr(score) and "Paris" not in repr(score)  # nothing of the content
    await stage.stop()


async def test_a_stream_that_fails_is_not_graded() -> None:
    """An answer that never completed is not a sample."""
    recorded = Recorded()
    stage = _stage(_plan(), Rng(), recorded)

    async def events() -> Any:
        yield [StreamStart("id", "m", 0), TextDelta("Par")]
        raise ConnectionResetError("upstream gone")

    async def streamed(request: ChatRequest, ctx: RequestContext) -> Any:
        return EventStream(events())

    stream = await stage.chat(streamed)(_request(stream=True), RequestContext("req-f"))
    try:
        async for _ in stream:
            pass
    except ConnectionResetError:
        pass
    assert stage.queued("prod") == 0 and stage.counts.dropped == {}  # nothing offered (no await since the end)
    assert recorded.scores == [] and stage.counts.scored == {}
    await stage.stop()


async def test_a_full_queue_drops_the_sample_without_waiting() -> None:
    """queue 1, one grader held by its judge: the next sample queues, the one after is dropped."""
    recorded = Recorded()
    release, entered = asyncio.Event(), asyncio.Event()

    async def judge(request: ChatRequest, ctx: RequestContext) -> ChatResponse:
        entered.set()
        await release.wait()
        return _answer('{"pass": true, "score": 1, "reason": "fine"}')

    plan = _plan({"type": "llm-rubric", "value": "answers the question"}, judge="grader", queue=1, concurrency=1)
    stage = _stage(plan, Rng(), recorded, chat=judge)

    async def primary(request: ChatRequest, ctx: RequestContext) -> Any:
        return _answer("Paris.")

    call = stage.chat(primary)
    await call(_request(), RequestContext("req-0"))
    await entered.wait()  # the grader holds the first sample
    for i in (1, 2):
        await call(_request(), RequestContext(f"req-{i}"))
    assert stage.counts.dropped == {"prod": 1} and stage.queued("prod") == 1
    release.set()
    await recorded.wait(2)
    assert [s.request_id for s in recorded.scores] == ["req-0", "req-1"]
    await stage.stop()


async def test_a_judge_call_is_a_call_of_its_own_told_to_the_recorder() -> None:
    """llm-rubric asks the judge route; the call is finished with the drift user and the graded
    request named in its tags; a judge's reason is never part of the score."""
    recorded, finished = Recorded(), []

    async def judge(request: ChatRequest, ctx: RequestContext) -> ChatResponse:
        assert request.model == "grader" and not request.stream
        return _answer('{"pass": false, "score": 0.25, "reason": "mentions ' + SECRET + '"}')

    plan = _plan({"type": "llm-rubric", "value": "is polite"}, judge="grader")
    stage = _stage(plan, Rng(), recorded, chat=judge, finish=lambda ctx, outcome: finished.append((ctx, outcome)))

    async def primary(request: ChatRequest, ctx: RequestContext) -> Any:
        return _answer("Paris.")

    await stage.chat(primary)(_request(), RequestContext("req-j"))
    await recorded.wait(1)
    (score,) = recorded.scores
    assert (score.score, score.passed, score.failed) == (0.25, False, ("llm-rubric",))
    assert SECRET not in repr(score)
    ((ctx, outcome),) = finished
    assert isinstance(outcome, Outcome) and outcome.status == 200
    assert ctx.caller.user == "breakwater:drift" and ctx.caller.tags == {"drift_of": "req-j"}
    assert ctx.outcome.route == "grader"
    await stage.stop()


async def test_crossings_alert_once_and_again_only_after_clearing() -> None:
    """Scores fall below the baseline by more than the margin: one alert however many bad samples
    follow; after a recovery that clears it, a new drop alerts again."""
    clock = ManualClock(wall=10_000.0)
    alerts: list[QualityDrop] = []
    recorded = Recorded()
    plan = _plan(window_s=60, baseline_s=60, margin=0.2, min_samples=3)
    stage = _stage(plan, Rng(), recorded, clock=clock, alert=alerts.append)
    texts: list[str] = []

    async def primary(request: ChatRequest, ctx: RequestContext) -> Any:
        return _answer(texts.pop(0))

    call, n = stage.chat(primary), 0

    async def phase(text: str, count: int) -> None:
        nonlocal n
        for _ in range(count):
            texts.append(text)
            await call(_request(), RequestContext(f"req-{n}"))
            n += 1
        await recorded.wait(n)

    await phase("Paris.", 5)  # baseline: all pass
    clock.advance(60)
    await phase("Lyon.", 2)
    assert alerts == []  # below min_samples in the window
    await phase("Lyon.", 6)
    assert len(alerts) == 1 and stage.watches["prod"].alerting
    drop = alerts[0]
    assert (drop.route, drop.current, drop.baseline, drop.current_samples) == ("prod", 0.0, 1.0, 3)
    clock.advance(60)  # the bad window is the baseline now, good answers return: cleared
    await phase("Paris.", 4)
    assert not stage.watches["prod"].alerting and len(alerts) == 1
    clock.advance(60)
    await phase("Lyon.", 4)
    assert len(alerts) == 2
    reading = stage.reading("prod")
    assert (reading.current, reading.baseline, reading.current_samples) == (0.0, 1.0, 4)
    await stage.stop()


def test_rolling_windows_move_a_bucket_at_a_time_and_forget_the_past() -> None:
    """A one-minute window is 60 one-second buckets; the baseline the buckets just before; older ones go."""
    scores = RollingScore(60, 120)
    scores.add(1000.0, 1.0)
    scores.add(1000.9, 0.0)
    scores.add(1059.5, 0.5)
    r = scores.read(1059.9)
    assert (r.current, r.current_samples, r.baseline) == (0.5, 3, None)
    r = scores.read(1060.0)  # the bucket at 1000 left the window for the baseline
    assert (r.current, r.current_samples, r.baseline, r.baseline_samples) == (0.5, 1, 0.5, 2)
    r = scores.read(1180.0)  # the bucket at 1000 is past window + baseline: forgotten
    assert (r.current, r.baseline, r.baseline_samples) == (None, 0.5, 1)
    r = scores.read(1239.0)
    assert (r.current, r.baseline, r.baseline_samples) == (None, None, 0)


def test_too_few_samples_leave_the_state_as_it_was() -> None:
    """A quiet spell neither fires nor clears the alert."""
    watch = DriftWatch("r", 60, 60, 0.1, 2)
    for ts in (0.0, 1.0):
        watch.add(ts, 1.0, ts)
    assert watch.add(61.0, 0.0, 61.0) is None  # one sample in the window
    assert watch.add(62.0, 0.0, 62.0) is not None
    assert watch.check(500.0) is None and watch.alerting  # nothing left to judge by: still alerting


def test_a_reload_keeps_a_watch_with_the_same_windows() -> None:
    """The next configuration's stage shares a route's watch (scores, alert state) when its windows
    are unchanged, taking the new margin; other windows start afresh."""
    old = _stage(_plan(margin=0.1), Rng(), Recorded())
    old.watches["prod"].add(1000.0, 1.0, 1000.0)
    old.watches["prod"].alerting = True
    same = _stage(_plan(margin=0.3), Rng(), Recorded(), previous=old)
    assert same.watches["prod"] is old.watches["prod"] and same.watches["prod"].margin == 0.3
    assert same.reading("prod").current_samples == 1
    other = _stage(_plan(window_s=120, baseline_s=240), Rng(), Recorded(), previous=old)
    assert other.watches["prod"] is not old.watches["prod"] and not other.watches["prod"].alerting


async def test_a_route_burning_its_error_budget_sheds_its_samples() -> None:
    """While the route's budget burns fast (docs/slo.md) a sampled answer is not graded, and is
    counted as shed; the caller's answer is untouched."""
    recorded = Recorded()
    stage = _stage(_plan(), Rng(), recorded)
    stage.shed = lambda route: route == "prod"

    async def primary(request: ChatRequest, ctx: RequestContext) -> Any:
        return _answer("Paris.")

    answer = await stage.chat(primary)(_request(), RequestContext("req-0"))
    assert isinstance(answer, ChatResponse)
    assert stage.counts.shed == {"prod": 1} and stage.queued("prod") == 0 and not recorded.scores
    await stage.stop()
