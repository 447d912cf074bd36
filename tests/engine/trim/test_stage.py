"""The trim stage on its own (engine/trim/stage.py): what the next call receives, the fast
path's raw body, a summary written by the summarise route and charged to the request, a failed
summary falling back to dropping, and prompts under the budget passing untouched."""

from __future__ import annotations

from typing import Any

from breakwater.core.errors import UpstreamServerError
from breakwater.core.tokens import byte_estimate
from breakwater.core.types import ChatRequest, ChatResponse, Choice, Message, ResponsesBody, TextPart, Usage
from breakwater.engine.context import RequestContext
from breakwater.engine.pipeline import ChatAnswer
from breakwater.engine.trim.stage import SUMMARY_PREFIX, TrimPlan, TrimStage

OLD = "an old question " * 50  # about 200 tokens a message by the byte estimate


class Next:
    """The rest of the pipeline: records what it receives; the summarise route answers ``SUMMARY``."""

    def __init__(self, fail_summary: bool = False) -> None:
        self.seen: list[ChatRequest] = []
        self.fail_summary = fail_summary

    async def __call__(self, request: ChatRequest, ctx: RequestContext) -> ChatAnswer:
        self.seen.append(request)
        if request.model == "cheap":
            if self.fail_summary:
                raise UpstreamServerError("down", provider="p", upstream_status=503)
            ctx.outcome.deployment, ctx.outcome.provider, ctx.outcome.upstream_model = "d-cheap", "p", "mini"
            message = Message("assistant", [TextPart("They discussed old questions.")])
            return ChatResponse("s", "mini", 0, [Choice(0, message, "stop")], Usage(300, 20))
        return ChatResponse("a", request.model, 0, [])


def _conversation() -> list[Message]:
    return [
        Message("system", [TextPart("Be brief.")]),
        Message("user", [TextPart(OLD)]),
        Message("assistant", [TextPart(OLD)]),
        Message("user", [TextPart(OLD)]),
        Message("assistant", [TextPart(OLD)]),
        Message("user", [TextPart("And now?")]),
    ]


def _wire(messages: list[Message]) -> list[dict[str, Any]]:
    return [{"role": m.role, "content": m.text()} for m in messages]


def _stage(budget: int, summarise: bool = False) -> TrimStage:
    plan = TrimPlan(budget, 1, byte_estimate, "cheap" if summarise else None, 100)
    return TrimStage({"chat": plan})


async def test_a_prompt_under_budget_passes_as_it_is() -> None:
    """The very same request object reaches the next call; nothing is recorded."""
    nxt, ctx = Next(), RequestContext("r")
    request = ChatRequest("chat", _conversation())
    await _stage(10_000).chat(nxt)(request, ctx)
    assert nxt.seen == [request] and ctx.trimmed is None


async def test_a_prompt_under_budget_is_not_summarised_for_the_summarys_room() -> None:
    """The summary's room is kept only once something must go: a prompt under the budget is left alone."""
    nxt, ctx = Next(), RequestContext("r")
    request = ChatRequest("chat", _conversation())
    total = 3 + sum(4 + byte_estimate(m.text()) for m in request.messages)
    await _stage(total + 1, summarise=True).chat(nxt)(request, ctx)
    assert nxt.seen == [request] and ctx.trimmed is None


async def test_another_route_is_not_trimmed() -> None:
    """Only routes with a plan are looked at."""
    nxt = Next()
    request = ChatRequest("other", _conversation())
    await _stage(10).chat(nxt)(request, RequestContext("r"))
    assert nxt.seen == [request]


async def test_the_oldest_turns_are_dropped_in_the_request_and_its_raw_body() -> None:
    """Over budget by more than a turn: the two old turns go from both forms; the body's other fields stay."""
    nxt, ctx = Next(), RequestContext("r")
    messages = _conversation()
    raw = {"model": "chat", "messages": _wire(messages), "reasoning_effort": "low"}
    await _stage(300).chat(nxt)(ChatRequest("chat", messages, raw=raw), ctx)
    sent = nxt.seen[0]
    assert [m.text() for m in sent.messages] == ["Be brief.", "And now?"]
    assert sent.raw is not None and sent.raw["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "And now?"},
    ]
    assert sent.raw["reasoning_effort"] == "low" and raw["messages"] == _wire(messages), "the client's body untouched"
    assert ctx.trimmed is not None and ctx.trimmed.messages == 4 and not ctx.trimmed.summary
    assert ctx.trimmed.tokens == 4 * (4 + byte_estimate(OLD))


async def test_a_responses_body_no_longer_stands_for_the_trimmed_messages() -> None:
    """The forwarded Responses body keeps the old list: the request is translated, not forwarded as sent."""
    nxt = Next()
    messages = _conversation()
    forward = ResponsesBody({"input": "..."}, messages)
    await _stage(300).chat(nxt)(ChatRequest("chat", messages, responses=forward), RequestContext("r"))
    sent = nxt.seen[0]
    assert sent.responses is not None and sent.responses.messages is not sent.messages


async def test_summarise_mode_puts_the_summary_after_the_system_prompt_and_charges_it() -> None:
    """The summarise route gets the removed turns; its answer follows the system prompt; its usage is the request's."""
    nxt, ctx = Next(), RequestContext("r")
    messages = _conversation()
    raw = {"model": "chat", "messages": _wire(messages)}
    await _stage(400, summarise=True).chat(nxt)(ChatRequest("chat", messages, raw=raw), ctx)
    summary_call, sent = nxt.seen
    assert summary_call.model == "cheap" and summary_call.max_tokens == 100 and not summary_call.stream
    assert OLD.strip() in summary_call.messages[1].text()
    summary = SUMMARY_PREFIX + "They discussed old questions."
    assert [(m.role, m.text()) for m in sent.messages] == [
        ("system", "Be brief."),
        ("system", summary),
        ("user", "And now?"),
    ]
    assert sent.raw is not None and sent.raw["messages"][1] == {"role": "system", "content": summary}
    assert ctx.trimmed is not None and ctx.trimmed.summary and ctx.trimmed.messages == 4
    [spent] = ctx.outcome.earlier
    assert (spent.deployment, spent.usage) == ("d-cheap", Usage(300, 20))


async def test_a_failed_summary_leaves_the_turns_dropped() -> None:
    """The summarise route failing does not fail the request: the old turns are simply dropped."""
    nxt, ctx = Next(fail_summary=True), RequestContext("r")
    await _stage(400, summarise=True).chat(nxt)(ChatRequest("chat", _conversation()), ctx)
    sent = nxt.seen[-1]
    assert [m.text() for m in sent.messages] == ["Be brief.", "And now?"]
    assert ctx.trimmed is not None and not ctx.trimmed.summary and ctx.outcome.earlier == []
