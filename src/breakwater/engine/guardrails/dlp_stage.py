"""The dlp stage: personal data and secrets in a request, found before anything is spent.

It scans the request's text once with the shared detectors (``core/detectors.py``) and leaves a
``DlpPlan`` on the context (kinds only: the ledger's ``dlp_findings``, the metric
``breakwater_dlp_findings_total{kind,action,route}``). The route's ``block`` answers 400 here;
every other action is applied per deployment by the gateway (``DlpPlan.outbound``), because a
self-hosted deployment may receive what an external one may not. A masked request's answer gets
its values back: a whole answer here, a stream through ``dlp_stream.restoring``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping

from breakwater.core.config.dlp import ProviderDlp, RouteDlp
from breakwater.core.detectors import Kind, scan
from breakwater.core.types import ChatRequest, EmbeddingRequest, EmbeddingResponse
from breakwater.engine.context import RequestContext
from breakwater.engine.guardrails.dlp import DlpPlan, blocked, find
from breakwater.engine.guardrails.dlp_stream import restoring
from breakwater.engine.pipeline import ChatAnswer, ChatCall, EmbeddingsCall, ModerationsCall, Stage
from breakwater.engine.tee import EventStream
from breakwater.providers.openai_moderations import ModerationRequest

#: a route without ``dlp`` whose request reaches a provider with one: counted, not changed
_LOG_ONLY = RouteDlp()


class DlpStage(Stage):
    """Args:
    routes: each route's policy (routes without one are not scanned unless some provider has one).
    providers: each provider's policy over the route's.
    """

    name = "dlp"

    def __init__(self, routes: Mapping[str, RouteDlp], providers: Mapping[str, ProviderDlp]) -> None:
        self.routes = routes
        self.providers = providers

    def chat(self, call: ChatCall) -> ChatCall:
        return functools.partial(self._guarded, call)

    async def _guarded(self, call: ChatCall, request: ChatRequest, ctx: RequestContext) -> ChatAnswer:
        plan = self._plan(request.model, ctx, lambda: find(request))
        if plan is None:
            return await call(request, ctx)
        plan.reserve(request)
        answer = await call(request, ctx)
        if not plan.originals:
            return answer
        if isinstance(answer, EventStream):
            return restoring(answer, plan)
        return plan.restored(answer)

    def embeddings(self, call: EmbeddingsCall) -> EmbeddingsCall:
        return functools.partial(self._guarded_embeddings, call)

    async def _guarded_embeddings(
        self, call: EmbeddingsCall, request: EmbeddingRequest, ctx: RequestContext
    ) -> EmbeddingResponse:
        """The inputs scanned like a chat's text; each deployment gets them as its provider may
        (``DlpPlan.outbound_embeddings``). Token-id inputs are not text: not scanned."""
        self._plan(request.model, ctx, lambda: [f.kind for text in request.inputs for f in scan(text)])
        return await call(request, ctx)

    def moderations(self, call: ModerationsCall) -> ModerationsCall:
        return functools.partial(self._guarded_moderations, call)

    async def _guarded_moderations(
        self, call: ModerationsCall, request: ModerationRequest, ctx: RequestContext
    ) -> bytes:
        """The texts to classify are sent to a provider too: scanned, and cleaned per deployment."""
        self._plan(request.model, ctx, lambda: [f.kind for text in request.texts if text for f in scan(text)])
        return await call(request, ctx)

    def _plan(self, route: str, ctx: RequestContext, findings: Callable[[], list[Kind]]) -> DlpPlan | None:
        """The request's plan, left on ``ctx`` and counted (``None``: nothing to act on); raises
        when the route blocks a kind found."""
        policy = self.routes.get(route)
        if policy is None and not self.providers:
            return None
        kinds = findings()
        if not kinds:
            return None
        plan = ctx.dlp = DlpPlan(policy or _LOG_ONLY, self.providers, kinds)
        plan.count(None)
        refused = [kind for kind in kinds if plan.action(kind, None) == "block"]
        if refused:
            raise blocked(refused)
        return plan
