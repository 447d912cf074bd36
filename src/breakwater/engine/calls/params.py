"""Dropping parameters an upstream cannot honour, when a route says ``unsupported_params: drop``.

Some parameters are hints, not instructions: ``cache_control`` asks Anthropic to cache a prompt
prefix, and an answer without it is the same answer at a higher price. Those (``ADVISORY``) are
dropped whatever the route says, and listed in ``x-breakwater-dropped-params`` like any other.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from breakwater.core.types import ChatRequest

#: parameters that never fail a request: dropped (and reported) where the upstream cannot honour them
ADVISORY = frozenset({"cache_control"})

# OpenAI spelling -> the canonical field reset and the raw body keys removed
_RESETS: dict[str, tuple[str, Any, tuple[str, ...]]] = {
    "max_tokens": ("max_tokens", None, ("max_tokens", "max_completion_tokens")),
    "stop": ("stop", [], ("stop",)),
    "n": ("n", 1, ("n",)),
    "tools": ("tools", [], ("tools",)),
    "tool_choice": ("tool_choice", None, ("tool_choice",)),
    "response_format": ("response_format", None, ("response_format",)),
    "cache_control": ("cache_breakpoints", False, ("cache_control",)),
}


def drop_params(request: ChatRequest, names: list[str]) -> ChatRequest:
    """A copy of ``request`` without ``names`` (canonical fields and the raw OpenAI body alike)."""
    changes: dict[str, Any] = {}
    raw = dict(request.raw) if request.raw is not None else None
    completion = dict(request.completion) if request.completion is not None else None
    extras = list(request.extra_params)
    for name in names:
        field, neutral, raw_keys = _RESETS.get(name, (name, None, (name,)))
        if name in extras:
            extras.remove(name)
        elif hasattr(request, field):
            changes[field] = neutral
        if completion is not None:  # a legacy completions body (providers/openai_completions.py)
            for key in raw_keys:
                completion.pop(key, None)
        if raw is not None:
            for key in raw_keys:
                raw.pop(key, None)
            if name == "cache_control":
                _strip_breakpoints(raw)
    return dataclasses.replace(request, **changes, extra_params=extras, raw=raw, completion=completion)


def _strip_breakpoints(raw: dict[str, Any]) -> None:
    """Remove ``cache_control`` from an OpenAI body's content parts and tools (copied, never mutated)."""
    messages = raw.get("messages")
    if isinstance(messages, list):
        raw["messages"] = [_without_in_content(m) for m in messages]
    tools = raw.get("tools")
    if isinstance(tools, list):
        raw["tools"] = [_without(t) for t in tools]


def _without_in_content(message: Any) -> Any:
    if not isinstance(message, dict) or not isinstance(message.get("content"), list):
        return message
    return {**message, "content": [_without(part) for part in message["content"]]}


def _without(item: Any) -> Any:
    if isinstance(item, dict) and "cache_control" in item:
        return {k: v for k, v in item.items() if k != "cache_control"}
    return item
