"""The output checks stage: each answer of a route with an ``output`` section is checked before
it leaves the engine (docs/guardrails.md, "Output checks").

Its place in ``ORDER``, between the cache and the router, means the cache keys the request as
the caller sent it (before the canary line is added) and stores only answers that passed; a
cache hit was checked when it was stored. For each request on such a route:

1. the route's canary line is added to a copy of the request's system prompt (``leak.py``);
2. the answer: a whole one is checked here; a stream goes through ``output_stream.py``;
3. structured outputs first: an answer that does not satisfy the request's JSON schema
   (``response_format``, or an offered tool's parameters) is asked again, up to
   ``structured_retries`` times, with the validation error as feedback (each answer paid for
   is charged on the ledger row, like a cascade's steps); still invalid, it is refused (``error``)
   or returned flagged (``flag``);
4. then each choice's text and tool-call arguments: the canary, a verbatim span of the system
   prompt, deny patterns, personal data (``output_policy.py``).

What was found is left on ``ctx.output_flags`` (the ledger's ``output_flags``, the metric
``breakwater_output_checks_total``).
"""

from __future__ import annotations

import dataclasses
import functools
import logging
from collections.abc import Mapping
from typing import Any

from breakwater.core.config import Config
from breakwater.core.errors import OutputBlocked
from breakwater.core.types import ChatRequest, ChatResponse, ContentPart, Message, TextPart
from breakwater.engine.context import RequestContext, charge_unanswered, fresh_tally
from breakwater.engine.guardrails.leak import system_text, with_canary
from breakwater.engine.guardrails.output_policy import Detectors, OutputPolicy, SharedDetectors
from breakwater.engine.guardrails.output_stream import guard_stream
from breakwater.engine.guardrails.structured import answer_error, wants_structure
from breakwater.engine.pipeline import ChatAnswer, ChatCall, Stage
from breakwater.engine.ports import RandomSource
from breakwater.engine.tee import EventStream

log = logging.getLogger("breakwater.guardrails")


class OutputChecksStage(Stage):
    """Args:
    policies: by route name (a ``prefix/*`` route's name covers the routes made from it).
    detectors: the DLP detectors, for routes with ``output.dlp`` (``of``: the shared set).
    """

    name = "output_checks"

    @classmethod
    def of(cls, config: Config, rng: RandomSource, detectors: Detectors | None = None) -> OutputChecksStage | None:
        """The stage for a config's routes with output checks (``None`` when none has any);
        each route's canary is drawn here, once per config."""
        policies = {
            name: OutputPolicy.of(route.output, rng)
            for name, route in config.routes.items()
            if route.output is not None and route.output.active
        }
        if not policies:
            return None
        return cls(policies, SharedDetectors() if detectors is None else detectors)

    def __init__(self, policies: Mapping[str, OutputPolicy], detectors: Detectors | None = None) -> None:
        self.policies = policies
        self.detectors = detectors

    def chat(self, call: ChatCall) -> ChatCall:
        return functools.partial(self._checked, call)

    def _policy(self, model: str) -> OutputPolicy | None:
        policy = self.policies.get(model)
        if policy is None and "/" in model:
            policy = self.policies.get(model.split("/", 1)[0] + "/*")
        return policy

    async def _checked(self, call: ChatCall, request: ChatRequest, ctx: RequestContext) -> ChatAnswer:
        policy = self._policy(request.model)
        if policy is None:
            return await call(request, ctx)
        line = policy.line
        sent = request if line is None else with_canary(request, line)
        system = system_text(request.messages) if policy.verbatim is not None else ""
        answer = await call(sent, ctx)
        if isinstance(answer, EventStream):
            return guard_stream(answer, policy, request, system, ctx, self.detectors)
        flags = ctx.output_flags = []
        if policy.config.structured != "off" and wants_structure(request):
            answer = await self._structured(policy, call, request, sent, answer, ctx, flags)
        return self._inspected(policy, answer, system, flags)

    async def _structured(
        self,
        policy: OutputPolicy,
        call: ChatCall,
        request: ChatRequest,
        sent: ChatRequest,
        answer: ChatResponse,
        ctx: RequestContext,
        flags: list[str],
    ) -> ChatResponse:
        """The answer once it satisfies the request's schema, asked again when it does not."""
        error = answer_error(request, answer)
        tries = 0
        while error is not None and tries < policy.config.structured_retries:
            tries += 1
            flags.append("structured:retried")
            charge_unanswered(ctx, answer.usage)
            fresh_tally(ctx)
            again = await call(repair_request(sent, request.model, answer, error), ctx)
            assert isinstance(again, ChatResponse)  # asked like the request: not a stream
            answer = again
            error = answer_error(request, answer)
        if error is None:
            if tries:
                flags.append("structured:repaired")
            return answer
        if policy.config.structured == "error":
            flags.append("structured:blocked")
            raise OutputBlocked(
                f"The answer does not satisfy the request's JSON schema (asked {tries + 1} time(s))",
                code="output_schema_invalid",
            )
        flags.append("structured:flagged")
        return answer

    def _inspected(self, policy: OutputPolicy, answer: ChatResponse, system: str, flags: list[str]) -> ChatResponse:
        """``answer`` as it may be returned (or ``OutputBlocked``)."""
        detectors = self.detectors
        choices = answer.choices
        changed = False
        for i, choice in enumerate(choices):
            message = choice.message
            text = message.text()
            kept = policy.text(text, system, detectors, flags) if text else text
            calls = message.tool_calls
            kept_calls = [
                dataclasses.replace(c, arguments=policy.text(c.arguments, system, detectors, flags)) for c in calls
            ]
            if kept != text or any(k.arguments != c.arguments for k, c in zip(kept_calls, calls, strict=True)):
                if not changed:
                    choices, changed = list(choices), True
                content: list[ContentPart] = [TextPart(kept)] if kept else []
                choices[i] = dataclasses.replace(
                    choice, message=dataclasses.replace(message, content=content, tool_calls=kept_calls)
                )
        if not changed:
            return answer
        return dataclasses.replace(answer, choices=choices, raw_body=None)  # re-encoded: the client's bytes changed


#: the feedback an invalid structured answer is asked again with
REPAIR_NOTE = (
    "Your previous answer was not valid: {error}. Answer the request again, following the required format exactly."
)


def repair_request(sent: ChatRequest, route: str, answer: ChatResponse, error: str) -> ChatRequest:
    """``sent`` again, followed by the invalid answer's text and a note saying what was wrong."""
    note = REPAIR_NOTE.format(error=error)
    text = answer.choices[0].message.text() if answer.choices else ""
    turns = [Message("assistant", [TextPart(text)])] if text else []
    turns.append(Message("user", [TextPart(note)]))
    raw = sent.raw
    if raw is not None:
        wire: list[Any] = [{"role": "assistant", "content": text}] if text else []
        wire.append({"role": "user", "content": note})
        raw = {**raw, "messages": [*(raw.get("messages") or []), *wire]}
    return dataclasses.replace(sent, model=route, messages=[*sent.messages, *turns], raw=raw)
