"""A cascade step's confidence checks (``core/config/branching.Checks``), compiled once.

Each check reads the step's answer and says whether it may be kept; the first that fails names
itself (``matches``, ``json_schema``, ...), which goes into the ledger's ``decision``. None of
them runs Python from the config: a regular expression, phrases, a JSON schema, a threshold on
log probabilities, agreement of several answers, or a judge route's score. An answer a check
cannot read (no text, no logprobs, a judge that answers no number) fails it: a cascade escalates
when unsure.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable

from breakwater.core.config.branching import Checks as ChecksConfig
from breakwater.core.types import ChatRequest, ChatResponse, Message, TextPart
from breakwater.engine.guardrails.structured import format_error

#: asks a judge route for a score: (prompt) -> the judge's answer
JudgeCall = Callable[[ChatRequest], Awaitable[ChatResponse]]

JUDGE_SYSTEM = (
    "You grade an assistant's answer to a user's request. Reply with one integer from 1 (wrong or "
    "useless) to 10 (correct and complete), and nothing else."
)
_SCORE = re.compile(r"\b(10|[1-9])\b")


class Checks:
    """Args:
    config: which checks, with their settings.
    """

    def __init__(self, config: ChecksConfig) -> None:
        self.config = config
        self.matches = re.compile(config.matches) if config.matches is not None else None
        self.not_contains = (
            re.compile("|".join(re.escape(p) for p in config.not_contains), re.IGNORECASE)
            if config.not_contains
            else None
        )

    @property
    def samples(self) -> int:
        """Answers to ask each step for (``agreement``)."""
        return self.config.agreement or 1

    @property
    def wants_logprobs(self) -> bool:
        return self.config.min_mean_logprob is not None

    async def failed(self, request: ChatRequest, answer: ChatResponse, judge: JudgeCall | None = None) -> str | None:
        """The name of the first check ``answer`` fails, or ``None`` when it may be kept
        (``judge``: asks the judge route, when the checks have one)."""
        if not answer.choices:
            return "empty"
        text = answer.choices[0].message.text()
        config = self.config
        if self.matches is not None and self.matches.search(text) is None:
            return "matches"
        if self.not_contains is not None and self.not_contains.search(text) is not None:
            return "not_contains"
        if config.json_schema and not _valid_json(request, text):
            return "json_schema"
        if config.min_mean_logprob is not None and not _confident(answer, config.min_mean_logprob):
            return "min_mean_logprob"
        if config.agreement is not None and not _agree(answer, config.agreement):
            return "agreement"
        if config.judge is not None and not await _judged(judge, request, text, config.judge.min_score):
            return "judge"
        return None


async def _judged(judge_call: JudgeCall | None, request: ChatRequest, text: str, min_score: float) -> bool:
    if judge_call is None:
        return False
    question = "\n".join(f"{m.role}: {m.text()}" for m in request.messages if m.role != "system")
    prompt = f"Request:\n{question}\n\nAnswer:\n{text}\n\nScore (1-10):"
    judge = ChatRequest(
        model="",
        messages=[Message("system", [TextPart(JUDGE_SYSTEM)]), Message("user", [TextPart(prompt)])],
        temperature=0,
        max_tokens=5,
    )
    verdict = await judge_call(judge)
    found = _SCORE.search(verdict.choices[0].message.text()) if verdict.choices else None
    return found is not None and float(found.group(1)) >= min_score


def _valid_json(request: ChatRequest, text: str) -> bool:
    """The answer is JSON, valid against the request's schema when it has one."""
    return format_error(request.response_format, text) is None


def _confident(answer: ChatResponse, floor: float) -> bool:
    """The mean log probability of choice 0's tokens is at least ``floor``."""
    logprobs = answer.choices[0].logprobs
    entries = logprobs.get("content") if isinstance(logprobs, dict) else None
    if not isinstance(entries, list) or not entries:
        return False
    values = [e.get("logprob") for e in entries if isinstance(e, dict)]
    numbers = [float(v) for v in values if isinstance(v, int | float)]
    return bool(numbers) and sum(numbers) / len(numbers) >= floor


def _agree(answer: ChatResponse, k: int) -> bool:
    """At least ``k`` answers, all the same once case and spacing are set aside."""
    texts = {" ".join(c.message.text().lower().split()) for c in answer.choices}
    return len(answer.choices) >= k and len(texts) == 1
