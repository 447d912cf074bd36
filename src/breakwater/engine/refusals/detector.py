"""Is an answer a refusal? The providers' own signals first, then the patterns on its opening.

Signals: ``finish_reason: content_filter`` (what the adapters make of Anthropic's
``stop_reason: "refusal"``, Gemini's ``SAFETY`` / ``PROHIBITED_CONTENT`` / ... finish reasons
and OpenAI's or Azure's ``content_filter``), OpenAI's ``message.refusal`` (``Choice.refusal``)
and, on the fast path, a non-null ``refusal`` in a forwarded chunk's delta. Failing those, the
first ``max_chars`` characters of the first choice's text are searched with the patterns, all
of them as one regular expression: refusals open the answer, so the rest is never looked at.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from breakwater.core.types import ChatResponse, FinishEvent, PassthroughChunk, StreamEvent, TextDelta, TextPart
from breakwater.engine.context import RequestContext
from breakwater.providers.openai import passthrough_text

_REFUSAL_FIELD = re.compile(rb'"refusal"\s*:\s*"')


class RefusalDetector:
    """The patterns, compiled once.

    Args:
        patterns: by language, regular expressions (searched case-insensitively).
        max_chars: how much of an answer's opening is searched.
    """

    def __init__(self, patterns: Mapping[str, Sequence[str]], max_chars: int) -> None:
        every = [p for group in patterns.values() for p in group]
        self._regex = re.compile("|".join(f"(?:{p})" for p in every), re.IGNORECASE) if every else None
        self.max_chars = max_chars

    def text(self, text: str) -> bool:
        """The opening of this answer text says it refuses."""
        if self._regex is None:
            return False
        return self._regex.search(text[: self.max_chars].replace("\u2019", "'")) is not None

    def response(self, response: ChatResponse) -> bool:
        """A whole answer refuses (judged on its first choice)."""
        if not response.choices:
            return False
        choice = response.choices[0]
        if choice.finish_reason == "content_filter" or choice.refusal:
            return True
        opening = "".join(p.text for p in choice.message.content if isinstance(p, TextPart))
        return self.text(opening)


class RefusalTap:
    """A stream's refusal check, batch by batch: the opening's text is kept until ``max_chars``
    (then searched once); provider signals are looked for in every batch (a finish reason comes
    last). The verdict goes to ``ctx.refused`` as soon as it is known, and at the end."""

    __slots__ = ("_ctx", "_detector", "_opening", "_seen", "_text_done")

    def __init__(self, detector: RefusalDetector, ctx: RequestContext) -> None:
        self._detector = detector
        self._ctx = ctx
        self._opening: list[str] = []
        self._seen = 0
        self._text_done = False
        ctx.refused = False

    def batch(self, events: list[StreamEvent]) -> None:
        if self._ctx.refused:
            return
        for event in events:
            if isinstance(event, PassthroughChunk):
                if "content_filter" in event.finish_reasons or _REFUSAL_FIELD.search(event.data):
                    self._ctx.refused = True
                    return
                if not self._text_done:
                    try:
                        self._keep(passthrough_text(event))
                    except ValueError:
                        pass  # a tool call, another choice: no text of the opening
            elif isinstance(event, TextDelta):
                if event.index == 0 and not self._text_done:
                    self._keep(event.text)
            elif isinstance(event, FinishEvent) and event.index == 0 and event.reason == "content_filter":
                self._ctx.refused = True
                return

    def _keep(self, text: str) -> None:
        self._opening.append(text)
        self._seen += len(text)
        if self._seen >= self._detector.max_chars:
            self._text_done = True
            self._ctx.refused = self._detector.text("".join(self._opening))
            self._opening = []

    def end(self, error: BaseException | None) -> None:
        if not self._text_done and not self._ctx.refused:
            self._ctx.refused = self._detector.text("".join(self._opening))
