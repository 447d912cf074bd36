"""The refusals stage: each chat answer is checked by the refusal detector (``detector.py``),
a stream through a tap; the verdict lands in ``ctx.refused`` for the ledger row (``refused``)
and the metric ``breakwater_refusals_total{route,variant}``.

Its place in ``ORDER``, right inside recording, lets it see the answer the client gets (a cache
hit too) and the upstream refusing the content outright (``ContentFiltered``).
"""

from __future__ import annotations

import functools

from breakwater.core.errors import ContentFiltered
from breakwater.core.types import ChatRequest
from breakwater.engine.context import RequestContext
from breakwater.engine.pipeline import ChatAnswer, ChatCall, Stage
from breakwater.engine.refusals.detector import RefusalDetector, RefusalTap
from breakwater.engine.tee import EventStream


class RefusalsStage(Stage):
    name = "refusals"

    def __init__(self, detector: RefusalDetector) -> None:
        self.detector = detector

    def chat(self, call: ChatCall) -> ChatCall:
        return functools.partial(self._checked, call)

    async def _checked(self, call: ChatCall, request: ChatRequest, ctx: RequestContext) -> ChatAnswer:
        try:
            answer = await call(request, ctx)
        except ContentFiltered:
            ctx.refused = True
            raise
        if isinstance(answer, EventStream):
            answer.tap(RefusalTap(self.detector, ctx))
        else:
            ctx.refused = self.detector.response(answer)
        return answer
