"""A route's prompt-injection check (``routes.X.injection``, docs/guardrails.md)."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator

from breakwater.core.config.base import _Model

#: the score from which a text counts as an injection attempt
DEFAULT_THRESHOLD = 0.5


class InjectionPattern(_Model):
    """A phrase of your own, added to the shipped ones."""

    #: a regular expression in lower case, searched in the normalised text (lower case, single spaces)
    pattern: str = Field(min_length=1)
    #: what it adds to a text's score when it matches (1: flags alone)
    weight: float = Field(default=1.0, gt=0, le=1)

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"not a regular expression: {exc}") from None
        return value


class RouteInjection(_Model):
    """``routes.X.injection``: which turns are scored, and what an attempt leads to."""

    #: ``log``: the score in the ledger and the metric only; ``flag``: also the
    #: ``x-breakwater-injection`` response header; ``block``: a 400 in the caller's wire format
    action: Literal["log", "flag", "block"] = "log"
    #: the score (0 to 1) from which a text is an attempt
    threshold: float = Field(default=DEFAULT_THRESHOLD, gt=0, le=1)
    #: which messages are scored: the users' turns, and tool results (what a tool fetched)
    user: bool = True
    tools: bool = True
    #: only the last this many messages are scored (earlier turns were scored when they were sent)
    last_messages: int = Field(default=4, ge=1, le=1000)
    #: each scored message's first this many characters are searched
    max_chars: int = Field(default=20_000, ge=100, le=1_000_000)
    #: phrases of your own, added to the shipped ones
    patterns: list[InjectionPattern] = Field(default_factory=list)
