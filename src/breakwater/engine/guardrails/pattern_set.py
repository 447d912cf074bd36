"""One pass over a text for many regular expressions: RE2's pattern set (``google-re2``) names
the expressions that may match, and Python's ``re`` confirms only those.

Each expression goes into the set *widened* so that the set finds a superset of Python's matches:
word boundaries (``\\b``, ``\\B``) dropped, ``\\w`` and ``\\d`` spelled as the Unicode classes
Python gives them (RE2's are ASCII). An expression RE2 cannot hold in that form (lookarounds,
backreferences, ``\\W``/``\\S``/``\\D``) is a candidate for every text. Without ``google-re2``
(no wheel for the platform) ``PatternSet.of`` gives ``None`` and callers search as before.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from typing import Any

log = logging.getLogger("breakwater.guardrails")

#: what RE2 does not have, or what cannot be widened safely
_UNSUPPORTED = re.compile(r"\(\?<?[=!]|\\[1-9WSDZA]|\(\?P=")
_CLASS_OUT = {"w": r"[\p{L}\p{N}_]", "d": r"\p{Nd}"}
_CLASS_IN = {"w": r"\p{L}\p{N}_", "d": r"\p{Nd}"}


def widened(pattern: str) -> str | None:
    """``pattern`` as RE2 reads it, matching at least what Python's ``re`` matches; ``None``
    when it cannot be written so."""
    if _UNSUPPORTED.search(pattern):
        return None
    out: list[str] = []
    in_class, i, n = False, 0, len(pattern)
    while i < n:
        ch = pattern[i]
        if ch == "\\" and i + 1 < n:
            nxt = pattern[i + 1]
            if nxt in "bB":
                if in_class:  # [\b] is a backspace in a class: kept
                    out.append(pattern[i : i + 2])
            elif nxt in _CLASS_OUT:
                out.append((_CLASS_IN if in_class else _CLASS_OUT)[nxt])
            else:
                out.append(pattern[i : i + 2])
            i += 2
            continue
        if ch == "[" and not in_class:
            in_class = True
            out.append(ch)
            if i + 1 < n and pattern[i + 1] == "^":
                out.append("^")
                i += 1
            if i + 1 < n and pattern[i + 1] == "]":  # a leading ] is a literal
                out.append("]")
                i += 1
        elif ch == "]" and in_class:
            in_class = False
            out.append(ch)
        else:
            out.append(ch)
        i += 1
    return "".join(out)


class PatternSet:
    """Args:
    pattern_set: the compiled RE2 set (its indices are ``indices``' positions).
    indices: the expression each set entry stands for.
    always: the expressions not in the set: candidates for every text.
    """

    def __init__(self, pattern_set: Any, indices: Sequence[int], always: Sequence[int]) -> None:
        self._set = pattern_set
        self._indices = tuple(indices)
        self._always = tuple(always)

    @classmethod
    def of(cls, patterns: Sequence[str]) -> PatternSet | None:
        """The set of ``patterns`` (their positions are what ``candidates`` returns), or ``None``
        without ``google-re2``."""
        try:
            import re2  # type: ignore[import-untyped]
        except ImportError:
            return None
        options = re2.Options()
        options.log_errors = False
        found = re2.Set.SearchSet(options)
        indices: list[int] = []
        always: list[int] = []
        for i, pattern in enumerate(patterns):
            wide = widened(pattern)
            if wide is None:
                always.append(i)
                continue
            try:
                found.Add(wide)
            except re2.error:  # (it raises a plain error saying it failed to add)
                always.append(i)
                continue
            indices.append(i)
        try:
            found.Compile()
        except re2.error:
            log.warning("a pattern set did not compile: each expression is searched instead")
            return None
        return cls(found, indices, always)

    def candidates(self, text: str) -> list[int]:
        """The expressions that may match ``text``, in order."""
        try:
            matched = self._set.Match(text) or ()
        except UnicodeEncodeError:  # a lone surrogate is not UTF-8: every expression is a candidate
            return sorted({*self._indices, *self._always})
        return sorted({*(self._indices[m] for m in matched), *self._always})


class Gated:
    """A Python regular expression behind an RE2 gate: a text the (widened) RE2 form does not
    match cannot match the Python one, so most texts are ruled out in one fast pass.

    Args:
        pattern: the expression (Python syntax; compiled once for each engine).
    """

    def __init__(self, pattern: str) -> None:
        self.regex = re.compile(pattern)
        self._pattern = pattern
        #: made at the first search, not at import (``False``: not made yet; ``None``: no RE2)
        self._gate: PatternSet | bool | None = False

    def _ruled_out(self, text: str) -> bool:
        gate = self._gate
        if gate is False:
            gate = self._gate = PatternSet.of([self._pattern])
        return isinstance(gate, PatternSet) and not gate.candidates(text)

    def search(self, text: str) -> re.Match[str] | None:
        return None if self._ruled_out(text) else self.regex.search(text)

    def findall(self, text: str) -> list[Any]:
        return [] if self._ruled_out(text) else self.regex.findall(text)

    def sub(self, repl: Any, text: str) -> str:
        return self.regex.sub(repl, text)
