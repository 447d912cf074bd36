"""The variants stage: a route with ``variants`` sends each request to the arm its subject is
assigned to (``assign.py``), the same arm for the same subject while the weights hold.

The subject is the route's ``sticky`` choice (the user, the virtual key, the session, or a
header's value); a request without it falls back to the user, then the key, then the request id
(which is not sticky: such requests are spread by weight). The request's model becomes the
arm's route, as the router stage does for a branch (that route may itself branch: the router
stage comes later); the ledger row stays on the route the client named, with the arm in its
``variant`` column. Every other route passes through untouched, at the cost of one dict lookup.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping
from dataclasses import dataclass

from breakwater.core.types import ChatRequest, EmbeddingRequest, EmbeddingResponse
from breakwater.engine.context import RequestContext
from breakwater.engine.pipeline import ChatAnswer, ChatCall, EmbeddingsCall, Stage
from breakwater.engine.variants.assign import Arm, Assigner


@dataclass(frozen=True, slots=True)
class Plan:
    """A route with variants, compiled: who sticks (``user``, ``key``, ``session`` or
    ``header:<name>``) and the arms' assigner."""

    route: str
    sticky: str
    assigner: Assigner

    @property
    def header(self) -> bytes | None:
        return self.sticky[len("header:") :].encode("latin-1") if self.sticky.startswith("header:") else None


def subject(plan: Plan, ctx: RequestContext, user: str | None) -> str:
    """The value the request is assigned by: the plan's ``sticky``, else user, key, request id.

    Args:
        user: the request body's ``user`` (the fallback for the ``x-breakwater-user`` header).
    """
    caller = ctx.caller
    user = caller.user or user
    sticky = plan.sticky
    found: str | None
    if sticky == "user":
        found = user
    elif sticky == "key":
        found = caller.key_id
    elif sticky == "session":
        found = caller.session
    else:
        name = plan.header
        found = next((value.decode("latin-1") for key, value in ctx.headers if key == name), None)
    if found:
        return f"{sticky}:{found}"
    # the kind is part of the subject, so a user and a key of the same text do not collide
    if user:
        return f"user:{user}"
    if caller.key_id:
        return f"key:{caller.key_id}"
    return f"request:{ctx.request_id}"


class VariantsStage(Stage):
    name = "variants"

    def __init__(self, plans: Mapping[str, Plan]) -> None:
        self.plans = plans

    def chat(self, call: ChatCall) -> ChatCall:
        return functools.partial(self._through, call)

    def embeddings(self, call: EmbeddingsCall) -> EmbeddingsCall:
        plans = self.plans

        async def assigned(request: EmbeddingRequest, ctx: RequestContext) -> EmbeddingResponse:
            plan = plans.get(request.model)
            if plan is None:
                return await call(request, ctx)
            arm = self._arm(plan, ctx, request.user)
            try:
                return await call(dataclasses.replace(request, model=arm.route), ctx)
            finally:
                ctx.outcome.route = plan.route

        return assigned

    async def _through(self, call: ChatCall, request: ChatRequest, ctx: RequestContext) -> ChatAnswer:
        plan = self.plans.get(request.model)
        if plan is None:
            return await call(request, ctx)
        arm = self._arm(plan, ctx, request.user)
        request.model = arm.route
        try:
            return await call(request, ctx)
        finally:
            request.model = ctx.outcome.route = plan.route  # the ledger row stays on the route the client named

    @staticmethod
    def _arm(plan: Plan, ctx: RequestContext, user: str | None) -> Arm:
        arm = plan.assigner.assign(subject(plan, ctx, user))
        ctx.outcome.variant = arm.name
        if arm.prompt is not None:
            ctx.prompt_choice = arm.prompt  # the prompts stage, after this one, renders it
        return arm
