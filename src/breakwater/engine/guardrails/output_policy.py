"""A route's output checks, compiled once per config: what an answer's text is searched for and
what each finding does (``core/config/output.RouteOutput``).

Findings are recorded as ``check:action`` (``canary:blocked``, ``deny:flagged``,
``dlp:redacted``...) on ``ctx.output_flags``; a blocking finding raises ``OutputBlocked``, whose
``code`` names the kind (``system_prompt_leak``, ``output_denied``) and whose message never
quotes what was found.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Protocol

from breakwater.core.config.output import RouteOutput
from breakwater.core.detectors import scan
from breakwater.core.errors import OutputBlocked
from breakwater.engine.guardrails.leak import Verbatim, canary_line, make_canary
from breakwater.engine.ports import RandomSource

#: what replaces a canary cut out of a flagged answer
CUT = "[redacted]"


class Detectors(Protocol):
    """The DLP detectors: each finding as ``(kind, start, end)`` offsets into ``text``
    (``SharedDetectors``: the one detector set, ``core/detectors.py``; tests pass stubs)."""

    def find(self, text: str) -> list[tuple[str, int, int]]: ...


class SharedDetectors:
    """``core/detectors.scan`` (the detector set logs, captures and the dlp stage use) as the
    output checks' detectors."""

    def find(self, text: str) -> list[tuple[str, int, int]]:
        return [(f.kind, f.start, f.end) for f in scan(text)]


def leak_blocked(check: str) -> OutputBlocked:
    return OutputBlocked(
        f"The answer was blocked by the route's output checks: it repeats the system prompt ({check})",
        code="system_prompt_leak",
    )


def denied() -> OutputBlocked:
    return OutputBlocked("The answer was blocked by the route's output checks: a denied pattern", code="output_denied")


class Deny:
    """The route's deny patterns: one expression when they combine, else each in turn (a pattern
    with global flags such as ``(?i)`` cannot be part of an alternation)."""

    def __init__(self, patterns: list[str]) -> None:
        try:
            self._patterns = [re.compile("|".join(f"(?:{p})" for p in patterns))]
        except re.error:
            self._patterns = [re.compile(p) for p in patterns]

    def search(self, text: str) -> bool:
        return any(p.search(text) is not None for p in self._patterns)


@dataclass(slots=True)
class OutputPolicy:
    """Args:
    config: the route's ``output`` section.
    canary: the route's token (``None``: no canary).
    """

    config: RouteOutput
    canary: str | None
    deny: Deny | None
    verbatim: Verbatim | None

    @classmethod
    def of(cls, config: RouteOutput, rng: RandomSource) -> OutputPolicy:
        deny = Deny(config.deny) if config.deny else None
        verbatim = Verbatim(config.verbatim_words) if config.verbatim_words else None
        return cls(config, make_canary(rng) if config.canary else None, deny, verbatim)

    @property
    def line(self) -> str | None:
        """The line added to the system prompt (``None``: no canary)."""
        return None if self.canary is None else canary_line(self.canary)

    def text(self, text: str, system: str, detectors: Detectors | None, flags: list[str]) -> str:
        """``text`` as it may be returned (a canary cut out, personal data redacted); each
        finding added to ``flags``.

        Raises:
            OutputBlocked: a finding whose action is ``block``.
        """
        config = self.config
        if self.canary is not None and self.canary in text:
            if config.canary_action == "block":
                flags.append("canary:blocked")
                raise leak_blocked("canary")
            flags.append("canary:stripped")
            text = text.replace(self.canary, CUT)
        if self.verbatim is not None and self.verbatim.leaked(system, text):
            if config.verbatim_action == "block":
                flags.append("verbatim:blocked")
                raise leak_blocked("verbatim")
            flags.append("verbatim:flagged")
        if self.deny is not None and self.deny.search(text):
            if config.deny_action == "block":
                flags.append("deny:blocked")
                raise denied()
            flags.append("deny:flagged")
        if config.dlp != "off" and detectors is not None:
            found = detectors.find(text)
            if found:
                if config.dlp == "redact":
                    flags.append("dlp:redacted")
                    text = redacted(text, found)
                else:
                    flags.append("dlp:flagged")
        return text

    def flags_after(self, text: str, system: str, detectors: Detectors | None) -> list[str]:
        """What a whole streamed answer holds, each finding flagged (it has been sent)."""
        config = self.config
        flags: list[str] = []
        if self.canary is not None and self.canary in text:
            flags.append("canary:flagged")  # longer than the stream's window (never, for a canary)
        if self.verbatim is not None and self.verbatim.leaked(system, text):
            flags.append("verbatim:flagged")
        if self.deny is not None and self.deny.search(text):
            flags.append("deny:flagged")
        if config.dlp != "off" and detectors is not None and detectors.find(text):
            flags.append("dlp:flagged")
        return flags

    def window_finding(self, seen: str) -> str | None:
        """The check a stream's recent text fails at once (the canary; deny patterns that block)."""
        if self.canary is not None and self.canary in seen:
            return "canary"
        if self.deny is not None and self.config.deny_action == "block" and self.deny.search(seen):
            return "deny"
        return None


def redacted(text: str, found: list[tuple[str, int, int]]) -> str:
    """``text`` with each finding replaced by its kind in capitals (``[EMAIL]``); overlapping
    findings are merged into the first."""
    parts: list[str] = []
    at = 0
    for kind, start, end in sorted(found, key=lambda f: f[1]):
        if start < at:
            continue
        parts.append(text[at:start])
        parts.append(f"[{kind.upper()}]")
        at = end
    parts.append(text[at:])
    return "".join(parts)
