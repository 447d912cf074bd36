"""The dlp plan: which action each provider's deployments get, the outbound request, placeholders restored in streams."""

from __future__ import annotations

import pytest

from breakwater.core.config.dlp import ProviderDlp, RouteDlp
from breakwater.core.types import (
    ChatRequest,
    FinishEvent,
    Message,
    StreamEvent,
    TextDelta,
    TextPart,
    ToolCallDelta,
    Usage,
    UsageEvent,
)
from breakwater.engine.guardrails.dlp import DlpPlan, SensitiveDataBlocked, find
from breakwater.engine.guardrails.dlp_stream import Restorer

EMAIL = "jane@example.com"


def _request(text: str, raw: bool = True) -> ChatRequest:
    body = {"model": "r", "messages": [{"role": "user", "content": text}], "reasoning_effort": "low"}
    return ChatRequest(model="r", messages=[Message("user", [TextPart(text)])], raw=body if raw else None)


def _plan(request: ChatRequest, route: RouteDlp, **providers: ProviderDlp) -> DlpPlan:
    plan = DlpPlan(route, providers, find(request))
    plan.reserve(request)
    return plan


def _text(request: ChatRequest) -> str:
    part = request.messages[0].content[0]
    assert isinstance(part, TextPart)
    return part.text


def test_the_providers_policy_wins_over_the_routes() -> None:
    """Provider kind > provider default > route kind > route default."""
    request = _request(f"{EMAIL} 10.0.0.1")
    route = RouteDlp(action="redact", kinds={"ip": "mask"})
    plan = _plan(request, route, local=ProviderDlp(action="allow"), partner=ProviderDlp(kinds={"email": "block"}))
    assert plan.action("email", "external") == "redact" and plan.action("ip", "external") == "mask"
    assert plan.action("email", "local") == "allow" and plan.action("ip", "local") == "allow"
    assert plan.action("email", "partner") == "block" and plan.action("ip", "partner") == "mask"


def test_outbound_redacts_the_canonical_and_the_raw_body_alike() -> None:
    """A redacted request keeps its raw body (the fast path), with the same text in it."""
    request = _request(f"mail {EMAIL}")
    sent = _plan(request, RouteDlp(action="redact")).outbound(request, "external")
    assert _text(sent) == "mail [EMAIL]"
    assert sent.raw is not None and sent.raw["messages"][0]["content"] == "mail [EMAIL]"
    assert sent.raw["reasoning_effort"] == "low"


def test_outbound_masks_with_numbered_placeholders() -> None:
    """The same value keeps one placeholder; a masked stream goes out canonical so its chunks can be restored."""
    request = _request(f"{EMAIL}, bob@example.org and {EMAIL} again")
    plan = _plan(request, RouteDlp(action="mask"))
    sent = plan.outbound(request, "external")
    assert _text(sent) == "[EMAIL_1], [EMAIL_2] and [EMAIL_1] again"
    assert sent.raw is not None and sent.raw["messages"][0]["content"] == _text(sent)
    request.stream = True
    assert plan.outbound(request, "external").raw is None
    assert plan.restore("to [EMAIL_2] and [EMAIL_1], not [EMAIL_3]") == f"to bob@example.org and {EMAIL}, not [EMAIL_3]"
    assert plan.summary() == "email:mask:3"


def test_a_provider_that_blocks_refuses_the_request_naming_the_kind() -> None:
    """``block`` on the provider raises the 400 once the request would reach it; the message names kinds only."""
    request = _request(f"card 4111 1111 1111 1111 {EMAIL}")
    plan = _plan(request, RouteDlp(), partner=ProviderDlp(kinds={"card": "block"}))
    assert plan.outbound(request, "local") is request
    with pytest.raises(SensitiveDataBlocked) as info:
        plan.outbound(request, "partner")
    assert "card" in info.value.message and "4111" not in info.value.message


def _texts(events: list[StreamEvent]) -> str:
    return "".join(e.text for e in events if isinstance(e, TextDelta))


def test_a_placeholder_split_across_chunks_is_restored() -> None:
    """``[EMA`` + ``IL_1]`` is held back until whole; what cannot be a placeholder goes out at once."""
    request = _request(f"mail {EMAIL}")
    plan = _plan(request, RouteDlp(action="mask"))
    restorer = Restorer(plan)
    out: list[StreamEvent] = []
    for piece in ("Sent to [EMA", "IL", "_1", "] and [not one", " here]", " [EMAIL_1"):
        out += restorer.batch([TextDelta(piece)])
    assert _texts(out) == f"Sent to {EMAIL} and [not one here] "
    out += restorer.batch([TextDelta("]."), UsageEvent(Usage(1, 2)), FinishEvent("stop")])
    assert _texts(out) == f"Sent to {EMAIL} and [not one here] {EMAIL}."
    assert isinstance(out[-1], FinishEvent)


def test_what_is_held_back_comes_out_when_a_stream_ends_without_a_finish() -> None:
    """A stream cut short still delivers the held-back tail, restored where it can be."""
    plan = _plan(_request(EMAIL), RouteDlp(action="mask"))
    restorer = Restorer(plan)
    assert _texts(restorer.batch([TextDelta("x [EMAIL_1")])) == "x "
    assert _texts(restorer.rest()) == "[EMAIL_1"


def test_placeholders_in_streamed_tool_call_arguments_are_restored() -> None:
    """A tool call's arguments get the values back too, a placeholder split across deltas included."""
    plan = _plan(_request(f"mail {EMAIL}"), RouteDlp(action="mask"))
    restorer = Restorer(plan)
    out: list[StreamEvent] = []
    out += restorer.batch([ToolCallDelta(0, id="call_1", name="send"), ToolCallDelta(0, arguments='{"to": "[EMAI')])
    out += restorer.batch([ToolCallDelta(0, arguments='L_1]"}'), FinishEvent("tool_calls")])
    arguments = "".join(e.arguments for e in out if isinstance(e, ToolCallDelta))
    assert arguments == f'{{"to": "{EMAIL}"}}'
    assert isinstance(out[-1], FinishEvent)
