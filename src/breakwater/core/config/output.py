"""A route's ``output`` section: the checks on its answers (docs/guardrails.md, "Output checks")."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator

from breakwater.core.config.base import _Model

#: a finding that is blocked (the caller gets a 400, or an error event in a stream) or flagged
#: (the answer goes out; the ledger's ``output_flags`` and the metric say what was found)
Action = Literal["block", "flag"]


class RouteOutput(_Model):
    """What is checked in the route's answers, and what a finding does."""

    #: a random token per route (drawn when the config is loaded) added as a line of the system
    #: prompt; an answer holding it leaked the system prompt. ``flag`` cuts it out of the answer
    #: (it is never returned); in a stream it is always blocked (docs/guardrails.md, "Streams")
    canary: bool = False
    canary_action: Action = "block"
    #: an answer repeating this many consecutive words of the system prompt leaked it (0: off)
    verbatim_words: int = Field(default=0, ge=0, le=1000)
    verbatim_action: Action = "flag"
    #: regular expressions no answer may match (searched case-sensitively; use ``(?i)``)
    deny: list[str] = Field(default_factory=list)
    deny_action: Action = "block"
    #: personal data in answers (the DLP detectors): ``flag``, or ``redact`` (each finding
    #: replaced by ``[KIND]``; a stream is only flagged)
    dlp: Literal["off", "flag", "redact"] = "off"
    #: answers to requests with a JSON schema (``response_format``, or tools' parameters)
    #: validated: ``error`` refuses an answer still invalid after the retries, ``flag`` returns it
    #: flagged; a stream is only flagged
    structured: Literal["off", "error", "flag"] = "off"
    #: an invalid answer is asked again this many times, the validation error given as feedback
    structured_retries: int = Field(default=1, ge=0, le=3)
    #: a stream is searched for the canary and deny patterns over a window of this many
    #: characters (a match longer than the window is found by the check after the stream)
    stream_window: int = Field(default=256, ge=32, le=65536)

    @field_validator("verbatim_words")
    @classmethod
    def _long_enough(cls, value: int) -> int:
        if 0 < value < 5:
            raise ValueError("verbatim_words: 0 (off) or at least 5 (shorter spans are common phrases)")
        return value

    @field_validator("deny")
    @classmethod
    def _compile(cls, value: list[str]) -> list[str]:
        for i, pattern in enumerate(value):
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"deny[{i}]: not a regular expression: {exc}") from None
        return value

    @property
    def active(self) -> bool:
        """Does any check run?"""
        return bool(self.canary or self.verbatim_words or self.deny or self.dlp != "off" or self.structured != "off")
