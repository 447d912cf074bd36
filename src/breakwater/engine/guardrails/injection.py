"""Is a text a prompt-injection attempt? A score from 0 to 1, from heuristics and an optional
classifier behind one interface (``InjectionDetector``).

The heuristics (``HeuristicDetector``) search the text's *views* (``injection_views.py``): the
normalised text, a leetspeak reading, decoded payloads (base64, hex, and ROT13 when the text
names it). Invisible characters inside the text, Unicode tag characters (decoded and searched
too) and mixed-script words are signals of their own (``hidden_text``).

Most texts cost one pass of RE2 (``pattern_set.py``): for an ASCII text, the phrases and the
views' triggers loosened to read the text as it came (any case, any whitespace), so a text that
matches none of them is clean without being normalised; otherwise one pass over the hidden-text
marks, then one over the normalised text for the phrases and the triggers. Python's ``re``
confirms only the phrases RE2 names, and a view is made only when its trigger matched.

The phrases are in ``injection_patterns.py``; a text's score adds the weights of the distinct
phrases it matches, capped at 1. A classifier would implement ``InjectionDetector`` too (none is
shipped: docs/guardrails.md, "With a classifier").

Nothing here raises on any ``str``: the stage calls it on the request path.
"""

from __future__ import annotations

import codecs
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from breakwater.core.pattern_set import PatternSet
from breakwater.engine.guardrails.injection_patterns import ENCODED, HIDDEN, PATTERNS
from breakwater.engine.guardrails.injection_views import (
    CYRILLIC_OR_GREEK,
    ESCAPED_NEWLINES,
    INVISIBLE,
    LEET_WORD,
    MARKS,
    MIXED_WORD,
    SPACED,
    TAGS,
    Marks,
    decoded_payloads,
    leet_view,
    normalise,
    normalised,
)
from breakwater.engine.guardrails.literals import opening_literals, required_literals

#: what a text needs more than its phrases searched for, as read on its normalised form (RE2's
#: syntax; ``HeuristicDetector.score``): a digit touching a letter (the leetspeak view), a run that
#: may be base64 or hex (the decoders); and for the fast path, ROT13 named, escaped newlines,
#: letters spread by spaces, and hidden-text marks (tags, invisible characters, Cyrillic or Greek)
_LEET_VIEW, _PAYLOAD_VIEW, _ROT13_VIEW, _SPACED_VIEW = 0, 1, 2, 4
_VIEW_TRIGGERS = (
    LEET_WORD,
    r"[a-z0-9+/]{16,}",
    r"rot(?: |-)?13",
    r"(?:\\ ?n ?){4,}",
    SPACED.regex.pattern,
    TAGS.regex.pattern,
    INVISIBLE.regex.pattern,
    CYRILLIC_OR_GREEK.regex.pattern,
)
#: the views made from the normalised text (the decoders read the text as it came)
_NEED_FULL = frozenset({_LEET_VIEW, _ROT13_VIEW, _SPACED_VIEW})
#: a phrase is tried only where one of its opening words occurs (``literals.py``), at most this
#: many places (then searched)
_MAX_OPENINGS = 256
#: a phrase without opening words is searched only around its required words: this far either
#: side (longer than any phrase's match), and in the whole text past this many occurrences
REACH = 300
_MAX_WINDOWS = 6


@dataclass(frozen=True, slots=True)
class Verdict:
    """A text's injection score (0 to 1) and the kinds of trick found (``injection_patterns``)."""

    score: float
    signals: tuple[str, ...] = ()


CLEAN = Verdict(0.0)


class InjectionDetector(Protocol):
    """Anything that scores a text: the heuristics, the classifier, or both."""

    def score(self, text: str) -> Verdict: ...


def _any_in(text: str, literals: tuple[str, ...], present: dict[str, bool]) -> bool:
    for literal in literals:
        known = present.get(literal)
        if known is None:
            known = present[literal] = literal in text
        if known:
            return True
    return False


class HeuristicDetector:
    """The phrases of ``injection_patterns`` over the text's views (see the module docstring).

    Args:
        patterns: ``(signal, weight, regex)`` entries; the shipped ones by default.
        extra: more entries (``routes.X.injection.patterns``), added to the shipped ones.
        prefilter: try only the phrases RE2's pattern set says may match (``pattern_set.py``;
            without google-re2, each phrase only where its words occur: ``literals.py``); off,
            every phrase is searched in the whole text (the same verdicts, slower: for tests).
    """

    def __init__(
        self,
        patterns: Sequence[tuple[str, float, str]] = PATTERNS,
        extra: Sequence[tuple[str, float, str]] = (),
        *,
        prefilter: bool = True,
    ) -> None:
        self._prefilter = prefilter
        self._checks = tuple(
            (signal, weight, re.compile(rx), opening_literals(rx), required_literals(rx))
            for signal, weight, rx in (*patterns, *extra)
        )
        phrases = [rx for _, _, rx in (*patterns, *extra)]
        #: one pass for every phrase and the view triggers (RE2's set), when google-re2 is
        #: there; else the literals
        self._set = PatternSet.of([*phrases, *_VIEW_TRIGGERS]) if prefilter else None
        #: the same, for an ASCII text before it is normalised
        self._raw = PatternSet.of([*phrases, *_VIEW_TRIGGERS], raw=True) if prefilter else None

    def _match(self, text: str, hits: dict[int, tuple[str, float]]) -> frozenset[int] | None:
        """Each phrase not found yet, tried where its words occur; the view triggers that may
        match (``None``: not known)."""
        if self._set is not None:
            candidates = self._set.candidates(text)
            phrases = len(self._checks)
            self._confirm(text, [i for i in candidates if i < phrases], hits)
            return frozenset(i - phrases for i in candidates if i >= phrases)
        found: dict[str, int] = {}
        present: dict[str, bool] = {}
        whole = not self._prefilter
        for i, (signal, weight, regex, opening, literals) in enumerate(self._checks):
            if i in hits:
                continue
            if not whole and literals is not None and not _any_in(text, literals, present):
                continue  # the common case: a word every match needs is absent
            if whole or (opening is None and literals is None):
                matched = regex.search(text) is not None
            elif opening is not None:
                matched = self._at(text, regex, opening, found)
            else:
                matched = self._near(text, regex, literals or (), found)
            if matched:
                hits[i] = (signal, weight)
        return None

    def _confirm(self, text: str, candidates: Sequence[int], hits: dict[int, tuple[str, float]]) -> None:
        """Each candidate phrase not found yet, searched by Python's ``re``."""
        checks = self._checks
        for i in candidates:
            if i not in hits and checks[i][2].search(text) is not None:
                hits[i] = (checks[i][0], checks[i][1])

    @staticmethod
    def _at(text: str, regex: re.Pattern[str], opening: tuple[str, ...], found: dict[str, int]) -> bool:
        tried = 0
        for literal in opening:
            at = found.get(literal)
            if at is None:
                at = found[literal] = text.find(literal)
            while at >= 0:
                if regex.match(text, at) is not None:
                    return True
                tried += 1
                if tried > _MAX_OPENINGS:
                    return regex.search(text) is not None
                at = text.find(literal, at + 1)
        return False

    @staticmethod
    def _near(text: str, regex: re.Pattern[str], literals: tuple[str, ...], found: dict[str, int]) -> bool:
        windows: list[int] = []
        for literal in literals:
            at = found.get(literal)
            if at is None:
                at = found[literal] = text.find(literal)
            while at >= 0 and len(windows) <= _MAX_WINDOWS:
                windows.append(at)
                at = text.find(literal, at + 1)
        if not windows:
            return False
        if len(windows) > _MAX_WINDOWS:
            return regex.search(text) is not None
        return any(regex.search(text, max(at - REACH, 0), at + REACH) is not None for at in windows)

    def score(self, text: str) -> Verdict:
        if not text:
            return CLEAN
        hits: dict[int, tuple[str, float]] = {}
        extra: dict[str, float] = {}
        views: frozenset[int] | None
        plain = text.isascii()
        if self._raw is not None and (plain or unicodedata.is_normalized("NFKC", text)):
            # one pass over the text as it came names the phrases that may match, the views it
            # needs and the hidden text it may hold (most texts: none of these)
            found = self._raw.candidates(text.lower())
            if not found:
                return CLEAN
        if self._raw is not None and plain:  # (ASCII holds no hidden text)
            phrases = len(self._checks)
            views = frozenset(i - phrases for i in found if i >= phrases)
            marks = Marks(tags=False, invisible=False, foreign=False, spaced=_SPACED_VIEW in views)
            candidates = [i for i in found if i < phrases]
            # the normalised text, when a phrase or a view needs it ("" reads as it: no ROT13)
            full = normalised(text, marks) if candidates or views & _NEED_FULL else ""
            self._confirm(full, candidates, hits)
            if not views:
                return _verdict(hits, extra)
        else:
            marks = Marks(*MARKS.open(text))
            smuggled = TAGS.regex.findall(text) if marks.tags else []
            if smuggled:
                extra[HIDDEN] = 0.6
                hidden = "".join(chr(ord(c) - 0xE0000) for run in smuggled for c in run)
                self._match(normalise(hidden), hits)
            if marks.invisible and INVISIBLE.regex.search(text.strip("\ufeff")):
                extra[HIDDEN] = max(extra.get(HIDDEN, 0.0), 0.3)
            full = normalised(text, marks)
            views = self._match(full, hits)
        if "\\" in text and ESCAPED_NEWLINES.search(text):
            extra[HIDDEN] = max(extra.get(HIDDEN, 0.0), 0.4)
        if marks.spaced and SPACED.regex.search(text):
            extra[HIDDEN] = max(extra.get(HIDDEN, 0.0), 0.5)
        if marks.foreign and MIXED_WORD.search(unicodedata.normalize("NFKC", text).lower()):
            extra[HIDDEN] = max(extra.get(HIDDEN, 0.0), 0.4)
        leet = leet_view(full) if views is None or _LEET_VIEW in views else ""
        if leet:
            before = len(hits)
            self._match(leet, hits)
            if len(hits) > before:
                extra[HIDDEN] = max(extra.get(HIDDEN, 0.0), 0.2)
        payloads = decoded_payloads(text) if views is None or _PAYLOAD_VIEW in views else []
        if "rot13" in full or "rot-13" in full or "rot 13" in full:
            payloads.append(codecs.decode(full, "rot13"))
        for payload in payloads:
            before = len(hits)
            self._match(normalise(payload), hits)
            extra[ENCODED] = max(extra.get(ENCODED, 0.0), 0.4 if len(hits) > before else 0.2)
        return _verdict(hits, extra)


def _verdict(hits: dict[int, tuple[str, float]], extra: dict[str, float]) -> Verdict:
    if not hits and not extra:
        return CLEAN
    signals = {signal for signal, _ in hits.values()} | set(extra)
    total = sum(weight for _, weight in hits.values()) + sum(extra.values())
    return Verdict(min(round(total, 3), 1.0), tuple(sorted(signals)))
