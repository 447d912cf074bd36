"""The recording stage: each finished exchange becomes a ledger row, request metrics and a trace.

The call marks a request whose prompt and answer are captured (the route's ``capture`` sample
rate) before it is sent, so the answer's text is kept as it passes; ``end`` writes the row
(``Recorder.record``) and leaves it on the ``Outcome`` for the stages outside (the access
stage settles limits with its usage and cost).
"""

from __future__ import annotations

from breakwater.core.types import ChatRequest
from breakwater.engine.context import RequestContext
from breakwater.engine.pipeline import ChatAnswer, ChatCall, Outcome, Stage
from breakwater.engine.ports import Clock
from breakwater.observability.recorder import Recorder


class RecordingStage(Stage):
    name = "recording"

    def __init__(self, recorder: Recorder, clock: Clock) -> None:
        self.recorder = recorder
        self.clock = clock

    def chat(self, call: ChatCall) -> ChatCall:
        capture = self.recorder.capture
        if capture is None:
            return call

        async def sampled(request: ChatRequest, ctx: RequestContext) -> ChatAnswer:
            ctx.tally.capture = capture.wants(request.model)
            return await call(request, ctx)

        return sampled

    def end(self, ctx: RequestContext, outcome: Outcome) -> None:
        outcome.recorded = self.recorder.record(
            ctx, outcome.request, outcome.status, outcome.error, self.clock.monotonic()
        )
