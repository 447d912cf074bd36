"""Where an eval's cases are answered: a ``Target`` takes an OpenAI chat-completions request body
and gives a ``Reply`` (the graded ``Output``, or why there is none).

The targets themselves are in ``cli/eval_targets.py``: the gateway's engine in-process
(``breakwater:ROUTE``) and any OpenAI-compatible server (``openai:chat:MODEL``), a running gateway
included. ``output_of`` reads an OpenAI chat-completions answer into an ``Output``, for both.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from breakwater.engine.evals.asserts import Output


@dataclass(frozen=True, slots=True)
class Reply:
    """A target's answer to one case: ``output`` to grade, or ``error`` (then ``output`` is ``None``)."""

    output: Output | None
    error: str | None = None
    #: the HTTP status the target answered with
    status: int | None = None
    #: the model that answered, as the answer names it
    model: str | None = None
    #: the OpenAI chat-completions answer as received (a judge reads it back as a ``ChatResponse``)
    answer: Mapping[str, Any] | None = None


class Target(Protocol):
    @property
    def label(self) -> str:
        """How results name it: ``breakwater:ROUTE``, ``openai:chat:MODEL``."""
        ...

    async def ask(self, body: Mapping[str, Any]) -> Reply:
        """Answer one chat-completions request (``body["model"]`` is set by the target)."""
        ...

    async def aclose(self) -> None: ...


def prompt_text(messages: Any) -> str:
    """The request's turns as text (``role: content``), what a judge is shown as the question."""
    if not isinstance(messages, list):
        return ""
    lines = []
    for m in messages:
        if isinstance(m, Mapping):
            lines.append(f"{m.get('role', '')}: {content_text(m.get('content'))}")
    return "\n".join(lines)


def content_text(content: Any) -> str:
    """A message's ``content``: a string, or the text of its text parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, Mapping) and isinstance(p.get("text"), str))
    return ""


def output_of(
    body: Mapping[str, Any], answer: Mapping[str, Any], *, latency_ms: float, cost_usd: float | None = None
) -> Output:
    """An OpenAI chat-completions answer to ``body`` as the ``Output`` the assertions grade
    (choice 0: its text, tool calls and token log probabilities)."""
    choices = answer.get("choices")
    choice: Mapping[str, Any] = {}
    if isinstance(choices, list) and choices and isinstance(choices[0], Mapping):
        choice = choices[0]
    message = choice.get("message")
    message = message if isinstance(message, Mapping) else {}
    calls = message.get("tool_calls")
    logprobs = None
    found = choice.get("logprobs")
    entries = found.get("content") if isinstance(found, Mapping) else None
    if isinstance(entries, list):
        values = [e.get("logprob") for e in entries if isinstance(e, Mapping)]
        logprobs = [float(v) for v in values if isinstance(v, int | float) and not isinstance(v, bool)] or None
    tools = body.get("tools")
    return Output(
        text=content_text(message.get("content")),
        cost_usd=cost_usd,
        latency_ms=latency_ms,
        logprobs=logprobs,
        tool_calls=calls if isinstance(calls, list) and calls else None,
        tools=tools if isinstance(tools, list) else None,
        prompt=prompt_text(body.get("messages")),
    )
