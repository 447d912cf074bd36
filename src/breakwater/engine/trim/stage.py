"""The trim stage: a route's prompts kept within a token budget by dropping or summarising their oldest turns.

A request on a route with ``trim`` (``core/config/trim.py``) is estimated as the access layer
estimates it (``core/tokens.estimate_prompt_tokens`` with the route's first deployment's
tokenizer). Over ``max_input_tokens``, its oldest whole turns go (``history.plan_cut``); in
``summarise`` mode a summary of them, written by the summarise route through the rest of the
pipeline (as a cascade's judge is asked), takes their place as a system message after the
system prompt, and what it cost is charged to the request (``RouteOutcome.earlier``). A summary
that fails leaves the turns dropped.

What was removed lands in ``ctx.trimmed``: the ledger's ``trimmed_messages``,
``trimmed_tokens`` and ``trim_summary``, and the ``breakwater_trimmed_*`` metrics. The OpenAI
fast path's body (``ChatRequest.raw``) loses the same messages; a Responses body, standing for
the old message list, is no longer forwarded as sent (``ResponsesBody.messages``).

A prompt under the budget costs one pass over its bytes: its UTF-8 length is a bound on any
tokenizer's count (``core/tokens.token_bound``), so it is only tokenized when it might be over.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from breakwater.core.errors import BreakwaterError
from breakwater.core.tokens import TextCounter, estimate_prompt_tokens, message_tokens, token_bound
from breakwater.core.types import ChatRequest, ChatResponse, Message, TextPart, Usage
from breakwater.engine.context import RequestContext, SpentCall
from breakwater.engine.pipeline import ChatAnswer, ChatCall, Stage
from breakwater.engine.trim.history import Cut, plan_cut

log = logging.getLogger("breakwater.trim")

#: what the summarise route is asked to do with the removed turns
INSTRUCTION = (
    "Summarise the earlier part of a conversation between a user and an assistant, so the "
    "assistant can continue it without the original messages. Keep facts, names, numbers, "
    "decisions, open questions and the results of tool calls; leave out pleasantries. Answer "
    "with the summary only."
)
#: the tokens priming every reply (``core/tokens.estimate_prompt_tokens``'s framing)
PRIMING = 3
#: the summary's message opens with this, so the model knows what it is reading
SUMMARY_PREFIX = "Summary of the earlier conversation: "


@dataclass(frozen=True, slots=True)
class TrimPlan:
    """A route's trimmer, built once per config."""

    max_input_tokens: int
    keep_last_turns: int
    #: the route's first deployment's tokenizer (``engine/ports.text_counter``)
    count: TextCounter
    #: ``None``: drop mode
    summarise_route: str | None = None
    summary_max_tokens: int = 256


@dataclass(frozen=True, slots=True)
class Trimmed:
    """What the trimmer removed from a request (``ctx.trimmed``)."""

    messages: int
    tokens: int
    #: the removed turns were replaced by a summary
    summary: bool


class TrimStage(Stage):
    name = "trim"

    def __init__(self, plans: Mapping[str, TrimPlan], counted: frozenset[tuple[str | None, str]] = frozenset()) -> None:
        self.plans = plans
        #: the ``(provider, model)`` pairs whose tokenizers the plans count with: loaded when the
        #: runtime starts, so the first requests are counted exactly rather than estimated
        self.counted = counted

    def chat(self, call: ChatCall) -> ChatCall:
        return functools.partial(self._through, call)

    async def _through(self, call: ChatCall, request: ChatRequest, ctx: RequestContext) -> ChatAnswer:
        plan = self.plans.get(request.model)
        if plan is not None:
            request = await self.trim(plan, request, ctx, call)
        return await call(request, ctx)

    async def trim(self, plan: TrimPlan, request: ChatRequest, ctx: RequestContext, call: ChatCall) -> ChatRequest:
        """``request`` within ``plan``'s budget (itself when it fits or nothing can go)."""
        budget = plan.max_input_tokens
        if estimate_prompt_tokens(request, token_bound) <= budget:
            return request
        count = plan.count
        messages = request.messages
        shares = [message_tokens(m, count) for m in messages]  # each message counted once
        total = sum(shares) + (estimate_prompt_tokens(_tools_only(request), count) if request.tools else PRIMING)
        if total <= budget:
            return request
        if plan.summarise_route is not None:
            budget -= plan.summary_max_tokens  # room for the summary, once something must go
        cut = plan_cut(messages, shares, total, budget, plan.keep_last_turns)
        if cut is None:
            return request
        summary = None
        if plan.summarise_route is not None:
            summary = await self._summary(
                plan.summarise_route, plan.summary_max_tokens, messages[cut.start : cut.end], ctx, call
            )
        ctx.trimmed = Trimmed(cut.messages, cut.tokens, summary is not None)
        added = [] if summary is None else [Message("system", [TextPart(SUMMARY_PREFIX + summary)])]
        kept = [*messages[: cut.start], *added, *messages[cut.end :]]
        return dataclasses.replace(request, messages=kept, raw=_raw(request, cut, summary))

    async def _summary(
        self, route: str, max_tokens: int, removed: list[Message], ctx: RequestContext, call: ChatCall
    ) -> str | None:
        """The summary of ``removed`` by ``route`` (``None`` when it could not be had)."""
        mine = RequestContext(ctx.request_id, caller=ctx.caller, headers=ctx.headers)
        # the summary request quotes this one: its deployments get it as this one's would
        mine.dlp = None if ctx.dlp is None else ctx.dlp.fork()
        mine.regions = ctx.regions  # and may go where this one may
        prompt = ChatRequest(
            model=route,
            messages=[Message("system", [TextPart(INSTRUCTION)]), Message("user", [TextPart(transcript(removed))])],
            max_tokens=max_tokens,
            temperature=0.0,
        )
        try:
            answer = await call(prompt, mine)
        except BreakwaterError as exc:
            log.warning(
                "history summary by route %r failed (%s): the oldest turns are dropped", route, type(exc).__name__
            )
            return None
        spent = mine.outcome
        if spent.deployment is not None:
            usage = answer.usage if isinstance(answer, ChatResponse) else None
            ctx.outcome.earlier.append(
                SpentCall(spent.deployment, spent.provider or "", spent.upstream_model or "", usage or Usage())
            )
        if not isinstance(answer, ChatResponse) or not answer.choices:
            return None
        text = answer.choices[0].message.text().strip()
        return text or None


def _tools_only(request: ChatRequest) -> ChatRequest:
    """``request``'s tool definitions with no messages: their share of the estimate, and the priming."""
    return ChatRequest(request.model, [], tools=request.tools)


def transcript(messages: list[Message]) -> str:
    """The removed turns as plain text for the summariser: one ``role: text`` block a message."""
    lines = []
    for m in messages:
        text = m.text()
        if m.role == "tool":
            lines.append(f"tool result ({m.tool_call_id or ''}): {text}")
            continue
        if text:
            lines.append(f"{m.role}: {text}")
        for c in m.tool_calls:
            lines.append(f"{m.role} called {c.name}({c.arguments})")
    return "\n\n".join(lines)


def _raw(request: ChatRequest, cut: Cut, summary: str | None) -> dict[str, Any] | None:
    """The fast path's body without the removed messages (``None``: it no longer matches them)."""
    raw = request.raw
    if raw is None:
        return None
    wire = raw.get("messages")
    if not isinstance(wire, list) or len(wire) != len(request.messages):
        return None  # (every stage keeps them one for one: this is a guard, not a path)
    added: list[Any] = [] if summary is None else [{"role": "system", "content": SUMMARY_PREFIX + summary}]
    return {**raw, "messages": [*wire[: cut.start], *added, *wire[cut.end :]]}
