"""OpenAI's legacy completions, client side: a completion request forwarded to an upstream that
serves ``/v1/completions`` (a deployment with ``legacy_completions: true``), and the log
probabilities of both shapes converted.

A forwarded request is the client's body with the deployment's ``model`` and the prompt taken
from the canonical request's one user message, so whatever the stages did to the prompt (data
loss prevention masking it) is what the upstream gets. A request whose messages a stage changed
otherwise (a rendered prompt, a canary's system message) is not forwarded but mapped onto chat:
a completion has nowhere to put them. The answers (``text_completion`` objects and chunks) are
read by the chat parsers (``openai.py``, ``openai_stream.py``), whose choices take ``text`` where
chat has ``message`` or ``delta``.
"""

from __future__ import annotations

from typing import Any

from breakwater.core.types import ChatRequest, TextPart
from breakwater.providers.base import Target


def forwarded(request: ChatRequest, target: Target) -> bool:
    """Whether ``request`` goes to ``target``'s ``/completions`` as a completion."""
    if request.completion is None or not target.legacy_completions or len(request.messages) != 1:
        return False
    message = request.messages[0]
    return message.role == "user" and all(isinstance(p, TextPart) for p in message.content)


def completion_body(request: ChatRequest, model: str) -> dict[str, Any]:
    """The body to send: the client's, with ``model`` and the (possibly rewritten) prompt."""
    assert request.completion is not None
    return {**request.completion, "model": model, "prompt": request.messages[0].text()}


def legacy_logprobs(entries: list[dict[str, Any]], offset: int) -> dict[str, Any]:
    """Chat logprob entries (``{"token", "logprob", "top_logprobs": [...]}``) in the completions'
    shape; ``offset``: where the first token starts in the choice's text."""
    tokens: list[str] = []
    token_logprobs: list[float] = []
    tops: list[dict[str, float]] = []
    offsets: list[int] = []
    for entry in entries:
        token = str(entry.get("token", ""))
        tokens.append(token)
        token_logprobs.append(entry.get("logprob", 0.0))
        tops.append({str(t.get("token", "")): t.get("logprob", 0.0) for t in entry.get("top_logprobs") or ()})
        offsets.append(offset)
        offset += len(token)
    return {"tokens": tokens, "token_logprobs": token_logprobs, "top_logprobs": tops, "text_offset": offsets}


def chat_entries(legacy: Any) -> list[dict[str, Any]] | None:
    """A completion's ``logprobs`` object as chat entries (``None`` when it is not one)."""
    if not isinstance(legacy, dict) or not isinstance(legacy.get("tokens"), list):
        return None
    logprobs = legacy.get("token_logprobs") or []
    tops = legacy.get("top_logprobs") or []
    entries = []
    for i, token in enumerate(legacy["tokens"]):
        top = tops[i] if i < len(tops) and isinstance(tops[i], dict) else {}
        entries.append(
            {
                "token": str(token),
                "logprob": logprobs[i] if i < len(logprobs) else 0.0,
                "bytes": None,
                "top_logprobs": [{"token": str(t), "logprob": lp, "bytes": None} for t, lp in top.items()],
            }
        )
    return entries
