"""The client's own bodies, forwarded on the fast paths, cleaned as their canonical text is
(``dlp.DlpPlan.outbound``): an OpenAI chat body's messages, and a Responses body's instructions
and the items the canonical form reads (messages, function calls and their outputs). Items only
OpenAI's ``/responses`` reads (a hosted tool's call, a reasoning item) are neither scanned nor
cleaned: docs/guardrails.md says so.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from breakwater.core.types import Message, ResponsesBody

Clean = Callable[[str], str]


def chat_body(raw: dict[str, Any], clean: Clean) -> dict[str, Any]:
    """The client's OpenAI body with the same text cleaned (the fast path keeps working)."""
    messages = []
    for message in raw.get("messages") or []:
        if not isinstance(message, dict):
            messages.append(message)
            continue
        message = dict(message)
        if "content" in message:
            message["content"] = _parts(message["content"], clean)
        calls = message.get("tool_calls")
        if isinstance(calls, list):
            message["tool_calls"] = [_call(call, clean) for call in calls]
        messages.append(message)
    return {**raw, "messages": messages}


def _call(call: Any, clean: Clean) -> Any:
    function = call.get("function") if isinstance(call, dict) else None
    if not isinstance(function, dict) or not isinstance(function.get("arguments"), str):
        return call
    return {**call, "function": {**function, "arguments": clean(function["arguments"])}}


def responses_body(forward: ResponsesBody, clean: Clean, messages: list[Message]) -> ResponsesBody:
    """A Responses body with the same text cleaned, standing for the cleaned ``messages``."""
    body = dict(forward.body)
    if isinstance(body.get("instructions"), str):
        body["instructions"] = clean(body["instructions"])
    value = body.get("input")
    if isinstance(value, str):
        body["input"] = clean(value)
    elif isinstance(value, list):
        body["input"] = [_item(item, clean) for item in value]
    return ResponsesBody(body, messages, forward.hints)


def _item(item: Any, clean: Clean) -> Any:
    if not isinstance(item, dict):
        return item
    kind = item.get("type", "message")
    if kind == "message":
        return {**item, "content": _parts(item.get("content"), clean)}
    if kind == "function_call" and isinstance(item.get("arguments"), str):
        return {**item, "arguments": clean(item["arguments"])}
    if kind == "function_call_output":
        return {**item, "output": _parts(item.get("output"), clean)}
    return item


def _parts(content: Any, clean: Clean) -> Any:
    """A string, or a list of parts whose ``text`` is cleaned."""
    if isinstance(content, str):
        return clean(content)
    if not isinstance(content, list):
        return content
    return [
        {**part, "text": clean(part["text"])} if isinstance(part, dict) and isinstance(part.get("text"), str) else part
        for part in content
    ]
