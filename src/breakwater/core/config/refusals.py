"""The ``refusals`` section: the refusal detector that feeds the refusal rate per route and
variant (docs/variants.md)."""

from __future__ import annotations

import re

from pydantic import Field, field_validator

from breakwater.core.config.base import _Model

#: an escape sequence (``\W``, ``\S``, ``\B``...): upper case there is not a letter to match
_ESCAPES = re.compile(r"\\.")


class RefusalSettings(_Model):
    """Which answers count as refusals: the providers' own signals, and these patterns."""

    #: on by default: it looks at the first ``max_chars`` of each answer only (docs/benchmarks.md)
    enabled: bool = True
    #: refusals open the answer: only this many characters of it are searched
    max_chars: int = Field(default=300, ge=20, le=4000)
    #: the shipped patterns (English, German, French, Spanish) are used as well as ``patterns``
    defaults: bool = True
    #: by language (any label): regular expressions in lower case, searched in the answer's
    #: lower-cased opening; a language named here replaces the shipped one of that name
    patterns: dict[str, list[str]] = Field(default_factory=dict)

    @field_validator("patterns")
    @classmethod
    def _compile(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        for language, patterns in value.items():
            for i, pattern in enumerate(patterns):
                try:
                    re.compile(pattern)
                except re.error as exc:
                    raise ValueError(f"{language}[{i}]: not a regular expression: {exc}") from None
                if any(c.isupper() for c in _ESCAPES.sub("", pattern)):
                    raise ValueError(
                        f"{language}[{i}]: write patterns in lower case (the answer is lower-cased before it is searched)"
                    )
        return value
