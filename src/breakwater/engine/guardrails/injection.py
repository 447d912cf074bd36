"""Is a text a prompt-injection attempt? A score from 0 to 1, from heuristics and an optional
classifier behind one interface (``InjectionDetector``).

The heuristics (``HeuristicDetector``) search the text's *views*:

- the normalised text (``normalise``): NFKC (full-width and styled letters become plain ones),
  confusable Cyrillic and Greek letters folded to their Latin look-alikes, invisible characters
  (zero-width spaces and joiners, soft hyphens, bidi controls) removed, lower case, whitespace
  collapsed. Invisible characters inside the text, Unicode tag characters (text smuggled as
  ``U+E0000``-range code points: decoded and searched too) and mixed-script words are signals of
  their own (``hidden_text``);
- a leetspeak reading (``1gn0r3`` -> ``ignore``), when the text mixes digits into words;
- decoded payloads: base64 and hex runs that decode to readable text, and the ROT13 reading of a
  text that mentions ROT13, searched with the same phrases (a match there is also ``encoded``).

The phrases are in ``injection_patterns.py``; a text's score adds the weights of the distinct
phrases it matches, capped at 1. A classifier would implement ``InjectionDetector`` too (none is
shipped: docs/guardrails.md, "With a classifier").

Nothing here raises on any ``str``: the stage calls it on the request path.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from breakwater.engine.guardrails.injection_patterns import ENCODED, HIDDEN, PATTERNS
from breakwater.engine.guardrails.literals import opening_literals, required_literals
from breakwater.engine.guardrails.pattern_set import Gated, PatternSet

#: characters that render as nothing: zero-width space/joiners, word joiner, BOM, soft hyphen,
#: bidi marks and overrides, invisible operators, Mongolian vowel separator
_INVISIBLE = re.compile("[\u00ad\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]")
#: Unicode tag characters (U+E0000-U+E007F): ASCII smuggled invisibly
_TAGS = Gated("[\U000e0000-\U000e007f]+")
#: Cyrillic and Greek letters that look like Latin ones (after lower-casing)
_CONFUSABLES = str.maketrans(
    {
        "а": "a", "в": "b", "е": "e", "ё": "e", "к": "k", "м": "m", "н": "h", "о": "o", "р": "p",
        "с": "c", "т": "t", "у": "y", "х": "x", "і": "i", "ї": "i", "ј": "j", "ѕ": "s", "ԁ": "d",
        "ԛ": "q", "ԝ": "w", "ɡ": "g", "α": "a", "β": "b", "ε": "e", "ι": "i", "κ": "k", "ν": "v",
        "ο": "o", "ρ": "p", "τ": "t", "υ": "u", "χ": "x", "ı": "i",
    }
)  # fmt: skip
_LEET = str.maketrans({"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s", "!": "i"})
#: escaped newlines typed out ("\\n\\n\\n\\n"): a fake end of the prompt
_ESCAPED_NEWLINES = Gated(r"(?:\\ ?n ?){4,}")
_LEET_CHAR = re.compile(r"[0-9@$!]")
_SPACED = Gated(r"\b(?:\w ){7,}\w\b")
_CYRILLIC_OR_GREEK = Gated("[\u0370-\u03ff\u0400-\u04ff]")
_MIXED_WORD = re.compile(r"\b(?=\w*[a-z])(?=\w*[\u0370-\u03ff\u0400-\u04ff])\w+\b")
_BASE64 = re.compile(r"[A-Za-z0-9+/]{16,}={0,2}")
_HEX = re.compile(r"\b(?:[0-9a-fA-F]{2}){10,}\b")
#: decoded payloads searched per text, at most (a text of many base64 runs is not decoded forever)
_MAX_PAYLOADS = 8
#: a phrase is tried only where one of its opening words occurs (``literals.py``), at most this
#: many places (then searched)
_MAX_OPENINGS = 256
#: a phrase without opening words is searched only around its required words: this far either
#: side (longer than any phrase's match), and in the whole text past this many occurrences
REACH = 300
_MAX_WINDOWS = 6
#: a leetspeak reading covers this far either side of a digit touching a letter
LEET_REACH = 80


@dataclass(frozen=True, slots=True)
class Verdict:
    """A text's injection score (0 to 1) and the kinds of trick found (``injection_patterns``)."""

    score: float
    signals: tuple[str, ...] = ()


CLEAN = Verdict(0.0)


class InjectionDetector(Protocol):
    """Anything that scores a text: the heuristics, the classifier, or both."""

    def score(self, text: str) -> Verdict: ...


def normalise(text: str) -> str:
    """The text as the phrases are written: NFKC, confusables folded, invisible characters
    removed, lower case, whitespace collapsed."""
    text = unicodedata.normalize("NFKC", text)
    text = _INVISIBLE.sub("", text).lower()
    if _CYRILLIC_OR_GREEK.search(text):  # only words mixing scripts: Russian stays Russian
        text = _MIXED_WORD.sub(lambda word: word.group().translate(_CONFUSABLES), text)
    text = " ".join(text.replace("\u2019", "'").split())
    if _SPACED.search(text):  # "s a y t h a t": letters spread out by spaces
        text = _SPACED.sub(lambda run: run.group().replace(" ", ""), text)
    return text


def leet_view(view: str) -> str:
    """The leetspeak reading of the parts of a normalised text where digits or symbols touch
    letters (``1gn0r3`` -> ``ignore``), joined by `` | ``; ``""`` when there are none."""
    spans: list[tuple[int, int]] = []
    end = len(view)
    for match in _LEET_CHAR.finditer(view):
        at = match.start()
        if (at and view[at - 1].isalpha()) or (at + 1 < end and view[at + 1].isalpha()):
            if spans and at - LEET_REACH <= spans[-1][1]:
                spans[-1] = (spans[-1][0], at + LEET_REACH)
            else:
                spans.append((max(at - LEET_REACH, 0), at + LEET_REACH))
    return " | ".join(view[a:b] for a, b in spans).translate(_LEET)


def _printable(data: bytes) -> str | None:
    """Decoded bytes as text, if they read as text (mostly letters and spaces)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if len(text) < 8:
        return None
    letters = sum(c.isalpha() or c == " " for c in text)
    return text if letters >= 0.8 * len(text) else None


def decoded_payloads(text: str) -> list[str]:
    """Base64 and hex runs in ``text`` that decode to readable text."""
    found: list[str] = []
    long_words = [word for word in text.split() if len(word) >= 16]
    if not long_words:
        return found
    text = " ".join(long_words)
    for match in _BASE64.finditer(text):
        run = match.group()
        if run.isalpha() and (run.islower() or run.isupper()):
            continue  # a long word, not base64
        try:
            data = base64.b64decode(run + "=" * (-len(run) % 4), validate=True)
        except (binascii.Error, ValueError):
            continue
        decoded = _printable(data)
        if decoded is not None:
            found.append(decoded)
        if len(found) >= _MAX_PAYLOADS:
            return found
    for match in _HEX.finditer(text):
        try:
            decoded = _printable(bytes.fromhex(match.group()))
        except ValueError:
            continue
        if decoded is not None:
            found.append(decoded)
        if len(found) >= _MAX_PAYLOADS:
            break
    return found


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
        #: one pass for every phrase (RE2's set), when google-re2 is there; else the literals
        self._set = PatternSet.of([rx for _, _, rx in (*patterns, *extra)]) if prefilter else None

    def _match(self, text: str, hits: dict[int, tuple[str, float]]) -> None:
        """Each phrase not found yet, tried where its words occur."""
        if self._set is not None:
            checks = self._checks
            for i in self._set.candidates(text):
                if i not in hits and checks[i][2].search(text) is not None:
                    hits[i] = (checks[i][0], checks[i][1])
            return
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
        smuggled = _TAGS.findall(text)
        if smuggled:
            extra[HIDDEN] = 0.6
            hidden = "".join(chr(ord(c) - 0xE0000) for run in smuggled for c in run)
            self._match(normalise(hidden), hits)
        if _INVISIBLE.search(text.strip("\ufeff")):
            extra[HIDDEN] = max(extra.get(HIDDEN, 0.0), 0.3)
        full = normalise(text)
        self._match(full, hits)
        if "\\" in text and _ESCAPED_NEWLINES.search(text):
            extra[HIDDEN] = max(extra.get(HIDDEN, 0.0), 0.4)
        if _SPACED.search(text):
            extra[HIDDEN] = max(extra.get(HIDDEN, 0.0), 0.5)
        if _CYRILLIC_OR_GREEK.search(text) and _MIXED_WORD.search(unicodedata.normalize("NFKC", text).lower()):
            extra[HIDDEN] = max(extra.get(HIDDEN, 0.0), 0.4)
        leet = leet_view(full)
        if leet:
            before = len(hits)
            self._match(leet, hits)
            if len(hits) > before:
                extra[HIDDEN] = max(extra.get(HIDDEN, 0.0), 0.2)
        payloads = decoded_payloads(text)
        if "rot13" in full or "rot-13" in full or "rot 13" in full:
            payloads.append(codecs.decode(full, "rot13"))
        for payload in payloads:
            before = len(hits)
            self._match(normalise(payload), hits)
            extra[ENCODED] = max(extra.get(ENCODED, 0.0), 0.4 if len(hits) > before else 0.2)
        if not hits and not extra:
            return CLEAN
        signals = {signal for signal, _ in hits.values()} | set(extra)
        total = sum(weight for _, weight in hits.values()) + sum(extra.values())
        return Verdict(min(round(total, 3), 1.0), tuple(sorted(signals)))
