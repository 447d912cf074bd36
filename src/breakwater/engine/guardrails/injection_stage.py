"""The injection stage: a route's user turns and tool results scored by the injection detector
before anything is spent (``routes.X.injection``, docs/guardrails.md).

The highest score of the scored messages lands in ``ctx.injection_score`` (the ledger's
``injection_score``). A score at or over the route's threshold is an attempt: its action goes to
``ctx.injection_action`` (the ledger's ``injection_action``, the metric
``breakwater_injection_attempts_total{route,key,action}``) and is carried out: ``log`` only
records it, ``flag`` also answers with the ``x-breakwater-injection`` header, ``block`` refuses
the request (``InjectionBlocked``: a 400 in the caller's wire format naming the kind of message
and the signals, never the text).

Only the last ``last_messages`` messages are scored: a conversation's earlier turns were scored
when they were new, and rescoring the whole history on every turn would grow the cost with it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from breakwater.core.errors import InjectionBlocked
from breakwater.core.types import ChatRequest, Message
from breakwater.engine.context import RequestContext
from breakwater.engine.guardrails.injection import InjectionDetector, Verdict
from breakwater.engine.pipeline import ChatAnswer, ChatCall, Stage

#: ``ctx.injection_action`` by the route's ``action``
ACTIONS = {"log": "logged", "flag": "flagged", "block": "blocked"}


@dataclass(frozen=True, slots=True)
class InjectionPlan:
    """A route's check, as the stage runs it (``routes.X.injection``)."""

    detector: InjectionDetector
    action: str = "log"
    threshold: float = 0.5
    user: bool = True
    tools: bool = True
    last_messages: int = 4
    max_chars: int = 20_000


def scored_messages(request: ChatRequest, plan: InjectionPlan) -> list[tuple[str, Message]]:
    """The messages a plan scores, with their kind (``user`` or ``tool``)."""
    kinds: list[tuple[str, Message]] = []
    for message in request.messages[-plan.last_messages :]:
        if message.role == "user" and plan.user:
            kinds.append(("user", message))
        elif message.role == "tool" and plan.tools:
            kinds.append(("tool", message))
    return kinds


def check(request: ChatRequest, plan: InjectionPlan) -> tuple[float, str, Verdict]:
    """The highest score among the plan's messages, the kind of that message, and its verdict."""
    best, kind, verdict = 0.0, "", Verdict(0.0)
    for which, message in scored_messages(request, plan):
        found = plan.detector.score(message.text()[: plan.max_chars])
        if found.score > best or not kind:
            best, kind, verdict = found.score, which, found
    return best, kind, verdict


class InjectionStage(Stage):
    """Args:
    plans: by route name, the routes whose requests are scored.
    """

    name = "injection"

    def __init__(self, plans: Mapping[str, InjectionPlan]) -> None:
        self.plans = dict(plans)

    def chat(self, call: ChatCall) -> ChatCall:
        plans = self.plans

        async def checked(request: ChatRequest, ctx: RequestContext) -> ChatAnswer:
            plan = plans.get(request.model)
            if plan is None:
                return await call(request, ctx)
            score, kind, verdict = check(request, plan)
            ctx.injection_score = score
            if score >= plan.threshold:
                ctx.injection_action = ACTIONS[plan.action]
                if plan.action == "block":
                    signals = ", ".join(verdict.signals) or "score"
                    raise InjectionBlocked(
                        f"The request was refused: a {kind} message looks like a prompt-injection attempt ({signals})."
                    )
            return await call(request, ctx)

        return checked
