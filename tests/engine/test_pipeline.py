"""The request pipeline (stages in their declared order around the calls) and the one stream tee."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from breakwater.core.errors import UpstreamTimeout
from breakwater.core.types import (
    ChatRequest,
    ChatResponse,
    EmbeddingRequest,
    EmbeddingResponse,
    Message,
    StreamEvent,
    TextDelta,
    TextPart,
    Usage,
)
from breakwater.engine.context import Caller, RequestContext
from breakwater.engine.pipeline import ORDER, ChatAnswer, ChatCall, EmbeddingsCall, Outcome, Pipeline, Stage
from breakwater.engine.tee import EventStream, StreamClosed
from breakwater.providers.openai_moderations import ModerationRequest


def _request(stream: bool = False) -> ChatRequest:
    return ChatRequest(model="m", messages=[Message("user", [TextPart("hi")])], stream=stream)


async def _batches(*batches: list[StreamEvent], fail: BaseException | None = None) -> AsyncIterator[list[StreamEvent]]:
    for batch in batches:
        yield batch
    if fail is not None:
        raise fail


class Calls:
    def __init__(self) -> None:
        self.seen: list[str] = []

    async def chat(self, request: ChatRequest, ctx: RequestContext) -> ChatResponse:
        self.seen.append("chat")
        return ChatResponse(id="x", model=request.model, created=0, choices=[])

    async def chat_stream(self, request: ChatRequest, ctx: RequestContext) -> EventStream:
        self.seen.append("chat_stream")
        return EventStream(_batches([TextDelta("a")], [TextDelta("b")]))

    async def embeddings(self, request: EmbeddingRequest, ctx: RequestContext) -> EmbeddingResponse:
        self.seen.append("embeddings")
        return EmbeddingResponse(model=request.model, vectors=[], usage=Usage())

    async def moderations(self, request: ModerationRequest, ctx: RequestContext) -> bytes:
        self.seen.append("moderations")
        return b"{}"


def _stage(name: str, log: list[str], *, end_fails: bool = False) -> Stage:
    class Recording(Stage):
        def begin(self, ctx: RequestContext) -> None:
            log.append(f"begin {name}")

        def chat(self, call: ChatCall) -> ChatCall:
            async def wrapped(request: ChatRequest, ctx: RequestContext) -> ChatAnswer:
                log.append(f"in {name}")
                answer = await call(request, ctx)
                log.append(f"out {name}")
                return answer

            return wrapped

        def embeddings(self, call: EmbeddingsCall) -> EmbeddingsCall:
            async def wrapped(request: EmbeddingRequest, ctx: RequestContext) -> EmbeddingResponse:
                log.append(f"embed {name}")
                return await call(request, ctx)

            return wrapped

        def end(self, ctx: RequestContext, outcome: Outcome) -> None:
            log.append(f"end {name}")
            if end_fails:
                raise RuntimeError("boom")

    Recording.name = name
    return Recording()


async def test_stages_run_in_the_declared_order_whatever_order_they_are_given_in() -> None:
    assert ORDER.index("access") < ORDER.index("recording")
    log: list[str] = []
    calls = Calls()
    # given inner first: the pipeline still puts access outside recording
    pipeline = Pipeline({"recording": _stage("recording", log), "access": _stage("access", log)}, calls)
    ctx = RequestContext("r1")
    pipeline.begin(ctx)
    answer = await pipeline.chat(_request(), ctx)
    assert isinstance(answer, ChatResponse)
    pipeline.end(ctx, Outcome(_request()))
    assert log == [
        "begin access",
        "begin recording",
        "in access",
        "in recording",
        "out recording",
        "out access",
        "end recording",  # innermost first, like finally blocks unwinding
        "end access",
    ]
    assert calls.seen == ["chat"]


async def test_streams_and_embeddings_take_the_same_stages() -> None:
    log: list[str] = []
    calls = Calls()
    pipeline = Pipeline({"access": _stage("access", log)}, calls)
    ctx = RequestContext("r2")
    stream = await pipeline.chat(_request(stream=True), ctx)
    assert isinstance(stream, EventStream) and ctx.stream
    embedded = await pipeline.embeddings(EmbeddingRequest(model="e", inputs=["x"]), ctx)
    assert embedded.model == "e" and ctx.outcome.route == "e"
    assert calls.seen == ["chat_stream", "embeddings"]
    assert log == ["in access", "out access", "embed access"]


async def test_a_stage_whose_end_fails_does_not_stop_the_others(caplog: pytest.LogCaptureFixture) -> None:
    log: list[str] = []
    pipeline = Pipeline(
        {"access": _stage("access", log), "recording": _stage("recording", log, end_fails=True)}, Calls()
    )
    pipeline.end(RequestContext("r3"), Outcome(None, 500, RuntimeError("x")))
    assert log == ["end recording", "end access"]
    assert "'recording' failed at the end of request r3" in caplog.text


def test_a_stage_not_in_the_order_is_refused() -> None:
    with pytest.raises(ValueError, match="not in the pipeline's ORDER: cache2"):
        Pipeline({"cache2": _stage("cache2", [])}, Calls())


async def test_request_metadata_becomes_tags_the_header_wins() -> None:
    ctx = RequestContext("r4", caller=Caller(tags={"team": "header"}))
    request = _request()
    request.metadata = {"team": "body", "feature": "search"}
    await Pipeline({}, Calls()).chat(request, ctx)
    assert ctx.caller.tags == {"team": "header", "feature": "search"}


class Tap:
    def __init__(self, log: list[object], name: str) -> None:
        self.log, self.name = log, name

    def batch(self, events: list[StreamEvent]) -> None:
        self.log.append((self.name, [e.text for e in events if isinstance(e, TextDelta)]))

    def end(self, error: BaseException | None) -> None:
        self.log.append((self.name, "end", type(error).__name__ if error else None))


async def test_every_tap_sees_each_batch_then_one_end() -> None:
    log: list[object] = []
    stream = EventStream(_batches([TextDelta("a")], [TextDelta("b")]))
    stream.tap(Tap(log, "usage"))
    stream.tap(Tap(log, "cache"))
    got = [batch async for batch in stream]
    await stream.aclose()  # after the end: no second end
    assert len(got) == 2
    assert log == [
        ("usage", ["a"]),
        ("cache", ["a"]),
        ("usage", ["b"]),
        ("cache", ["b"]),
        ("usage", "end", None),
        ("cache", "end", None),
    ]


async def test_a_failed_stream_ends_its_taps_with_the_error() -> None:
    log: list[object] = []
    stream = EventStream(_batches([TextDelta("a")], fail=UpstreamTimeout("slow")))
    stream.tap(Tap(log, "t"))
    with pytest.raises(UpstreamTimeout):
        async for _ in stream:
            pass
    assert log == [("t", ["a"]), ("t", "end", "UpstreamTimeout")]


async def test_a_stream_closed_early_ends_its_taps_with_stream_closed() -> None:
    log: list[object] = []
    stream = EventStream(_batches([TextDelta("a")], [TextDelta("b")]))
    stream.tap(Tap(log, "t"))
    assert [e.text for e in await anext(stream) if isinstance(e, TextDelta)] == ["a"]
    await stream.aclose()
    await stream.aclose()
    assert log == [("t", ["a"]), ("t", "end", StreamClosed.__name__)]
