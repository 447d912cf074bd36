"""Which part of a request a semantic hit must share, and which part it may vary: the question.

Kept apart from ``semantic.py`` (which imports numpy) so the cache stage can use it in every
gateway without loading numpy where no route is semantic.
"""

from __future__ import annotations

import copy
import hashlib

import orjson

from breakwater.core.types import ChatRequest, TextPart
from breakwater.engine.cache.key import material_of


class EmbedderFailed(Exception):
    """An embedder could not embed a question: the stage skips the semantic lookup (an exact miss)."""


def question_of(request: ChatRequest) -> str | None:
    """The last turn's text when it is a user's plain-text question, else ``None`` (no semantic lookup)."""
    if not request.messages:
        return None
    last = request.messages[-1]
    if last.role != "user" or last.tool_calls or not last.content:
        return None
    if not all(isinstance(p, TextPart) for p in last.content):
        return None  # an image changes the question in a way the text cannot show
    text = last.text().strip()
    return text or None


def scope_of(request: ChatRequest, fingerprint: str, tenant: str) -> str:
    """The hash of everything a semantic hit must share: the route, the tenant, and the request's
    output-affecting fields with the last turn's text left out (system prompt, earlier turns,
    tools, response format, sampling parameters all stay in)."""
    last = request.messages[-1] if request.messages else None
    if request.raw is not None:
        kind, material = material_of(request)
        messages = material.get("messages")
        if isinstance(messages, list) and messages:
            material["messages"] = [*messages[:-1], {"role": "user", "content": None}]
    else:
        stripped = copy.copy(request)
        stripped.messages = request.messages[:-1] if last is not None else []
        kind, material = material_of(stripped)
    document = ["semantic", fingerprint, tenant, kind, material]
    return hashlib.sha256(orjson.dumps(document, option=orjson.OPT_SORT_KEYS)).hexdigest()
