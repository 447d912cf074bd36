"""Dropping parameters an upstream cannot honour, when a route says ``unsupported_params: drop``."""

from __future__ import annotations

import dataclasses
from typing import Any

from breakwater.core.types import ChatRequest

# OpenAI spelling -> the canonical field reset and the raw body keys removed
_RESETS: dict[str, tuple[str, Any, tuple[str, ...]]] = {
    "max_tokens": ("max_tokens", None, ("max_tokens", "max_completion_tokens")),
    "stop": ("stop", [], ("stop",)),
    "n": ("n", 1, ("n",)),
    "tools": ("tools", [], ("tools",)),
    "tool_choice": ("tool_choice", None, ("tool_choice",)),
    "response_format": ("response_format", None, ("response_format",)),
}


def drop_params(request: ChatRequest, names: list[str]) -> ChatRequest:
    """A copy of ``request`` without ``names`` (canonical fields and the raw OpenAI body alike)."""
    changes: dict[str, Any] = {}
    raw = dict(request.raw) if request.raw is not None else None
    extras = list(request.extra_params)
    for name in names:
        field, neutral, raw_keys = _RESETS.get(name, (name, None, (name,)))
        if name in extras:
            extras.remove(name)
        elif hasattr(request, field):
            changes[field] = neutral
        if raw is not None:
            for key in raw_keys:
                raw.pop(key, None)
    return dataclasses.replace(request, **changes, extra_params=extras, raw=raw)
