"""One pass over a text for many regular expressions: RE2's pattern set (``google-re2``) names
the expressions that may match, and Python's ``re`` confirms only those.

Each expression goes into the set *widened* so that the set finds a superset of Python's matches:
word boundaries (``\\b``, ``\\B``) and lookarounds dropped, ``\\w``, ``\\d`` and ``\\s`` spelled as the
Unicode classes Python gives them (RE2's are ASCII; RE2's ``\\W``, ``\\D`` and ``\\S`` hold more than
Python's, so they stay, except in a negated class). An expression RE2 cannot hold in that form
(backreferences, ``\\Z``, ``\\A``) is a candidate for every text. ``loosened`` goes one step further,
for searching a text *before* it is lower-cased and its whitespace collapsed. Without
``google-re2`` (no wheel for the platform) ``PatternSet.of`` gives ``None`` and callers search as
before.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from typing import Any

log = logging.getLogger("breakwater.guardrails")

#: what RE2 does not have, or what cannot be widened safely
_UNSUPPORTED = re.compile(r"\\[1-9ZA]|\(\?P=")
_LOOKAROUND = ("(?=", "(?!", "(?<=", "(?<!")
#: every character past ASCII: Python's ``\\w``, ``\\d`` and ``\\s`` are written as their ASCII
#: members and this, a superset that RE2 holds in a few byte ranges (the exact Unicode classes
#: cost megabytes of program for a set of phrases); exact only in a negated class
NON_ASCII = r"\x{80}-\x{10ffff}"
_CLASS_IN = {"w": f"0-9A-Za-z_{NON_ASCII}", "d": f"0-9{NON_ASCII}", "s": f"\\t-\\r\\x1c-\\x20{NON_ASCII}"}
_CLASS_OUT = {key: f"[{members}]" for key, members in _CLASS_IN.items()}
#: in a negated class, Python's classes exactly (the complement of more is less)
_CLASS_NEGATED = {"w": r"\p{L}\p{N}_", "d": r"\p{Nd}", "s": r"\t-\r\x1c-\x1f\x85\p{Z}"}


def widened(pattern: str) -> str | None:
    """``pattern`` as RE2 reads it, matching at least what Python's ``re`` matches; ``None``
    when it cannot be written so."""
    if _UNSUPPORTED.search(pattern):
        return None
    out: list[str] = []
    in_class = negated = False
    i, n = 0, len(pattern)
    while i < n:
        ch = pattern[i]
        if not in_class and pattern.startswith(_LOOKAROUND, i):  # dropped: matches at least as much
            i = _group_end(pattern, i)
            continue
        if ch == "\\" and i + 1 < n:
            nxt = pattern[i + 1]
            if nxt in "bB":
                if in_class:  # [\b] is a backspace in a class: kept
                    out.append(pattern[i : i + 2])
            elif nxt in _CLASS_OUT:
                out.append((_CLASS_NEGATED if negated else _CLASS_IN if in_class else _CLASS_OUT)[nxt])
            elif nxt in "WDS" and negated:  # (the complement of more is less)
                return None
            else:
                out.append(pattern[i : i + 2])
            i += 2
            continue
        if ch == "[" and not in_class:
            in_class = True
            out.append(ch)
            negated = i + 1 < n and pattern[i + 1] == "^"
            if negated:
                out.append("^")
                i += 1
            if i + 1 < n and pattern[i + 1] == "]":  # a leading ] is a literal
                out.append("]")
                i += 1
        elif ch == "]" and in_class:
            in_class = negated = False
            out.append(ch)
        else:
            out.append(ch)
        i += 1
    return "".join(out)


def _class_end(pattern: str, i: int) -> int:
    """The index past the character class opening at ``pattern[i]``."""
    i += 1
    if pattern.startswith("^", i):
        i += 1
    if pattern.startswith("]", i):  # a leading ] is a literal
        i += 1
    while i < len(pattern) and pattern[i] != "]":
        i += 2 if pattern[i] == "\\" else 1
    return i + 1


def _group_end(pattern: str, i: int) -> int:
    """The index past the group opening at ``pattern[i]``."""
    depth = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\":
            i += 2
            continue
        if ch == "[":
            i = _class_end(pattern, i)
            continue
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    return i


#: RE2's memory budget for a set: its program and DFA cache (the default, 8 MiB, is tight)
_MAX_MEM = 16 << 20
#: a run of what ``str.split`` takes for whitespace (``str.isspace``, exactly: a third of the
#: program the superset with everything past ASCII makes, and as fast)
_WS = r"[\t-\r\x1c-\x20\x85\xa0\x{1680}\x{2000}-\x{200a}\x{2028}\x{2029}\x{202f}\x{205f}\x{3000}]+"
#: the apostrophe and its typographic twin (normalising folds U+2019 to ')
_APOSTROPHE = "'\\x{2019}"


def loosened(pattern: str) -> str:
    """``pattern`` (RE2's syntax, as ``widened`` writes it) for a lower-cased text, where the
    pattern was written for its normalised form (each run of whitespace one space, trimmed, U+2019
    an apostrophe): it matches the text wherever the pattern matches that form, for a text NFKC
    leaves as it is. Whatever can match a space (a space, ``\\s``, ``.``, a class holding a space
    or negated) also matches a run of whitespace, ``^`` and ``$`` allow the whitespace trimmed, and
    an apostrophe is either. (Not ``(?i)`` for the case: RE2 folds ``s`` and ``k`` with letters
    past ASCII, so every class holding those would hold them.)"""
    out: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        ch = pattern[i]
        if ch == "\\":
            end = pattern.find("}", i) + 1 if pattern.startswith(("\\p{", "\\P{"), i) else i + 2
            token = pattern[i:end]
            out.append(f"(?:{_WS})" if token == r"\s" else token)
            i = end
            continue
        if ch == "[":
            end = _class_end(pattern, i)
            cls = pattern[i:end]
            spacy = cls.startswith("[^") or " " in cls or r"\x20" in cls or r"\p{Z}" in cls
            if "'" in cls and not cls.startswith("[^"):
                cls = f"[{_APOSTROPHE}{cls[1:]}"
            out.append(f"(?:{_WS}|{cls})" if spacy else cls)
            i = end
            continue
        loose = {
            " ": f"(?:{_WS})",
            ".": f"(?:{_WS}|.)",
            "^": f"^(?:{_WS})?",
            "$": f"(?:{_WS})?$",
            "'": f"[{_APOSTROPHE}]",
        }
        out.append(loose.get(ch, ch))
        i += 1
    return "".join(out)


_QUANTIFIER = re.compile(r"\{\d+(?:,\d*)?\}")


def unfolded(pattern: str) -> str:
    """``pattern`` (RE2's syntax, as ``widened`` writes it) for a text before its Unicode
    look-alikes of ASCII are folded (``core/detectors.fold``: fullwidth forms, dashes, spaces): it
    matches the text wherever the pattern matches the folded text. Every literal ASCII character,
    and every class but a negated one, also takes any character past ASCII (a superset: only a
    text holding some can match more)."""
    out: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        ch = pattern[i]
        if ch == "\\":
            end = pattern.find("}", i) + 1 if pattern.startswith(("\\p{", "\\P{", "\\x{"), i) else i + 2
            token = pattern[i:end]
            literal = len(token) == 2 and not token[1].isalnum()  # an escaped punctuation mark
            out.append(f"[{token}{NON_ASCII}]" if literal else token)
            i = end
            continue
        if ch == "[":
            end = _class_end(pattern, i)
            cls = pattern[i:end]
            if not cls.startswith("[^"):  # (first: after a trailing "-" it would make a range)
                at = 2 if cls.startswith("[]") else 1
                cls = f"{cls[:at]}{NON_ASCII}{cls[at:]}"
            out.append(cls)
            i = end
            continue
        if pattern.startswith("(?", i):  # a group's syntax: (?: (?i:
            ends = [k for k in (pattern.find(":", i), pattern.find(")", i)) if k >= 0]
            end = min(ends) + 1 if ends else n
            out.append(pattern[i:end])
            i = end
            continue
        quantifier = _QUANTIFIER.match(pattern, i) if ch == "{" else None
        if quantifier is not None:
            out.append(quantifier.group())
            i = quantifier.end()
            continue
        if ch in "^$.|?*+()" or not (ch.isascii() and ch.isprintable()):
            out.append(ch)
        else:
            out.append(f"[{ch if ch.isalnum() else chr(92) + ch}{NON_ASCII}]")
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
    def of(cls, patterns: Sequence[str], *, raw: bool = False, folding: bool = False) -> PatternSet | None:
        """The set of ``patterns`` (their positions are what ``candidates`` returns), or ``None``
        without ``google-re2``. ``raw``: each pattern ``loosened``, for texts not yet normalised;
        ``folding``: each pattern ``unfolded``, for texts not yet folded."""
        try:
            import re2  # type: ignore[import-untyped]
        except ImportError:
            return None
        options = re2.Options()
        options.log_errors = False
        options.max_mem = _MAX_MEM
        found = re2.Set.SearchSet(options)
        indices: list[int] = []
        always: list[int] = []
        for i, pattern in enumerate(patterns):
            wide = widened(pattern)
            if wide is None:
                always.append(i)
                continue
            if raw:
                wide = loosened(wide)
            if folding:
                wide = unfolded(wide)
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
        return text if self._ruled_out(text) else self.regex.sub(repl, text)


class Gates:
    """Gated expressions searched together: one RE2 pass says which of them may match a text.

    Args:
        gated: the expressions (``Gated``), in the order ``open`` answers.
    """

    def __init__(self, *gated: Gated) -> None:
        self._patterns = [each.regex.pattern for each in gated]
        #: made at the first search (``False``: not made yet; ``None``: no RE2)
        self._set: PatternSet | bool | None = False

    def open(self, text: str) -> tuple[bool, ...]:
        """For each expression, whether it may match ``text`` (every one, without RE2)."""
        found = self._set
        if found is False:
            found = self._set = PatternSet.of(self._patterns)
        if not isinstance(found, PatternSet):
            return (True,) * len(self._patterns)
        may = set(found.candidates(text))
        return tuple(i in may for i in range(len(self._patterns)))
