"""Is an answer a refusal? The providers' own signals first, then the patterns on its opening.

Signals: ``finish_reason: content_filter`` (what the adapters make of Anthropic's
``stop_reason: "refusal"``, Gemini's ``SAFETY`` / ``PROHIBITED_CONTENT`` / ... finish reasons
and OpenAI's or Azure's ``content_filter``), OpenAI's ``message.refusal`` (``Choice.refusal``)
and, on the fast path, a ``refusal`` in a forwarded chunk's delta (``PassthroughChunk.refusal``).
Failing those, the first ``max_chars`` characters of the first choice's text, lower-cased, are
searched with the patterns: refusals open the answer, so the rest is never looked at.

Patterns are written in lower case and searched in the lower-cased opening. Each is tried only
where its literal opening (``"i can"``, ``"ich kann "``) occurs, found with ``str.find``: one
regular expression of every pattern, even without ``re.IGNORECASE``, costs about 10 us a
300-character opening, the literal-first search about 1 us (docs/benchmarks.md). A pattern
without a literal opening is searched as it is.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from breakwater.core.types import ChatResponse, FinishEvent, PassthroughChunk, StreamEvent, TextDelta, TextPart
from breakwater.engine.context import RequestContext


class RefusalDetector:
    """The patterns, compiled once.

    Args:
        patterns: by language, regular expressions in lower case (searched in the lower-cased
            opening: ``core/config/refusals.py`` refuses upper-case letters in them).
        max_chars: how much of an answer's opening is searched.
    """

    def __init__(self, patterns: Mapping[str, Sequence[str]], max_chars: int) -> None:
        self._checks = tuple((literal_opening(p), re.compile(p)) for group in patterns.values() for p in group)
        self.max_chars = max_chars

    def text(self, text: str) -> bool:
        """The opening of this answer text says it refuses."""
        if not self._checks:
            return False
        opening = text[: self.max_chars].lower().replace("\u2019", "'")
        for literal, regex in self._checks:
            if not literal:
                if regex.search(opening):
                    return True
                continue
            at = opening.find(literal)
            while at >= 0:
                if regex.match(opening, at):
                    return True
                at = opening.find(literal, at + 1)
        return False

    def response(self, response: ChatResponse) -> bool:
        """A whole answer refuses (judged on its first choice)."""
        if not response.choices:
            return False
        choice = response.choices[0]
        if choice.finish_reason == "content_filter" or choice.refusal:
            return True
        opening = "".join(p.text for p in choice.message.content if isinstance(p, TextPart))
        return self.text(opening)


_SPECIAL = frozenset("\\.^$*+?{}[]|()")
_OPTIONAL = frozenset("*?{")


def literal_opening(pattern: str) -> str:
    """The characters every match of ``pattern`` starts with ("" when it has no literal opening,
    or has an alternation at its top level, which could start with something else)."""
    depth, escaped, in_class = 0, False, False
    for char in pattern:  # a top-level "|" anywhere: no common opening
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif in_class:
            in_class = char != "]"
        elif char == "[":
            in_class = True
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        elif char == "|" and depth == 0:
            return ""
    end = 0
    while end < len(pattern) and pattern[end] not in _SPECIAL:
        end += 1
    if end < len(pattern) and pattern[end] in _OPTIONAL:
        end -= 1  # the last literal is optional ("ab?c" opens with "a")
    return pattern[: max(end, 0)]


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
                if event.refusal or "content_filter" in event.finish_reasons:
                    self._ctx.refused = True
                    return
                if event.text and not self._text_done:
                    self._keep(event.text)
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
