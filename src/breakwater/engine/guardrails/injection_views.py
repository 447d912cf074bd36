"""The views of a text that the injection phrases are searched in (``injection.py``).

- the normalised text (``normalise``): NFKC (full-width and styled letters become plain ones),
  confusable Cyrillic and Greek letters folded to their Latin look-alikes, invisible characters
  (zero-width spaces and joiners, soft hyphens, bidi controls) removed, lower case, whitespace
  collapsed, letters spread out by spaces joined;
- a leetspeak reading (``leet_view``: ``1gn0r3`` -> ``ignore``) where digits touch letters;
- decoded payloads (``decoded_payloads``): base64 and hex runs that decode to readable text.

Each has a shortcut for ASCII (most traffic) that finds what the general scan finds at C speed;
property tests hold them equal. Nothing here raises on any ``str``.
"""

from __future__ import annotations

import base64
import binascii
import re
import unicodedata
from typing import NamedTuple

from breakwater.core.pattern_set import NON_ASCII, Gated, Gates

#: characters that render as nothing: zero-width space/joiners, word joiner, BOM, soft hyphen,
#: bidi marks and overrides, invisible operators, Mongolian vowel separator
INVISIBLE = Gated("[\u00ad\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]")
#: Unicode tag characters (U+E0000-U+E007F): ASCII smuggled invisibly
TAGS = Gated("[\U000e0000-\U000e007f]+")
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
ESCAPED_NEWLINES = Gated(r"(?:\\ ?n ?){4,}")
_LEET_RUN = re.compile(r"[0-9@$!]+")
SPACED = Gated(r"\b(?:\w ){7,}\w\b")
CYRILLIC_OR_GREEK = Gated("[\u0370-\u03ff\u0400-\u04ff]")
MIXED_WORD = re.compile(r"\b(?=\w*[a-z])(?=\w*[\u0370-\u03ff\u0400-\u04ff])\w+\b")
_BASE64 = re.compile(r"[A-Za-z0-9+/]{16,}={0,2}")
_HEX = re.compile(r"\b(?:[0-9a-fA-F]{2}){10,}\b")
#: decoded payloads searched per text, at most (a text of many base64 runs is not decoded forever)
_MAX_PAYLOADS = 8
#: a leetspeak reading covers this far either side of a digit touching a letter
LEET_REACH = 80


class Marks(NamedTuple):
    """What a text may hold (``False``: it does not), from one pass of RE2 over it."""

    tags: bool
    invisible: bool
    foreign: bool  # Cyrillic or Greek letters
    spaced: bool


ALL = Marks(True, True, True, True)
#: the hidden-text expressions, searched in one pass
MARKS = Gates(TAGS, INVISIBLE, CYRILLIC_OR_GREEK, SPACED)


def normalise(text: str) -> str:
    """The text as the phrases are written: NFKC, confusables folded, invisible characters
    removed, lower case, whitespace collapsed."""
    return normalised(text, ALL)


def normalised(text: str, marks: Marks) -> str:
    """``normalise``, skipping what ``marks`` rules out of the text."""
    if text.isascii():  # (NFKC, invisible characters and confusables are none of ASCII's)
        text = " ".join(text.lower().split())
    else:
        folded = unicodedata.normalize("NFKC", text)
        if folded != text:  # NFKC may have made what the marks were read without
            marks, text = ALL, folded
        if marks.invisible:
            text = INVISIBLE.sub("", text)
        text = text.lower()
        if marks.foreign and CYRILLIC_OR_GREEK.search(text):  # only words mixing scripts
            text = MIXED_WORD.sub(lambda word: word.group().translate(_CONFUSABLES), text)
        text = " ".join(text.replace("\u2019", "'").split())
        marks = ALL  # (collapsed whitespace may spread letters out)
    if marks.spaced and SPACED.search(text):  # "s a y t h a t": letters spread out by spaces
        text = SPACED.sub(lambda run: run.group().replace(" ", ""), text)
    return text


def leet_view(view: str) -> str:
    """The leetspeak reading of the parts of a normalised text where digits or symbols touch
    letters (``1gn0r3`` -> ``ignore``), joined by `` | ``; ``""`` when there are none."""
    spans: list[tuple[int, int]] = []
    for at in touching(view):
        if spans and at - LEET_REACH <= spans[-1][1]:
            spans[-1] = (spans[-1][0], at + LEET_REACH)
        else:
            spans.append((max(at - LEET_REACH, 0), at + LEET_REACH))
    return " | ".join(view[a:b] for a, b in spans).translate(_LEET)


#: ASCII as letter (``a``), leetspeak character (``1``) or neither (`` ``)
_LEET_CLASSES = (
    bytes(ord("a") if chr(c).isalpha() else ord("1") if chr(c) in "0123456789@$!" else ord(" ") for c in range(128))
    + b" " * 128
)


#: a leetspeak word holds this many letters at least (``1gn0r3``, ``ign0re``; not ``v2``, ``3rd``,
#: ``mp3``, ``x86``: versions, ordinals and names are not read as leetspeak)
LEET_LETTERS = 3
_LEET_CHARS = frozenset("0123456789@$!")
#: ``touching``'s trigger (RE2's syntax): a word of three letters or more with a digit or symbol in
#: it touches a letter at two letters, or has the digit between letters
LEET_WORD = "L L[0-9@$!]|[0-9@$!]L L|L[0-9@$!]+L".replace(" ", "").replace("L", f"[A-Za-z{NON_ASCII}]")


def touching(view: str) -> list[int]:
    """Where a digit or symbol touches a letter in a word of ``LEET_LETTERS`` letters or more
    (a word: letters and the characters leetspeak uses), in order."""
    if view.isascii():  # found at C speed: 'a1' and '1a' in the text's classes
        classes = view.encode("ascii").translate(_LEET_CLASSES)
        found: set[int] = set()
        for pair, offset in ((b"a1", 1), (b"1a", 0)):
            at = classes.find(pair)
            while at >= 0:
                start, end = classes.rfind(b" ", 0, at) + 1, classes.find(b" ", at)
                if classes.count(b"a", start, len(classes) if end < 0 else end) >= LEET_LETTERS:
                    found.add(at + offset)
                at = classes.find(pair, at + 1)
        return sorted(found)
    out: list[int] = []
    end = len(view)
    for run in _LEET_RUN.finditer(view):  # only a run's ends can touch a letter
        first, last = run.start(), run.end() - 1
        if first and view[first - 1].isalpha() and _letters_around(view, first) >= LEET_LETTERS:
            out.append(first)
        if (
            last + 1 < end
            and view[last + 1].isalpha()
            and (last != first or not out or out[-1] != last)
            and _letters_around(view, last) >= LEET_LETTERS
        ):
            out.append(last)
    return out


def _letters_around(view: str, at: int) -> int:
    """The letters of the word (letters and leetspeak characters) holding ``view[at]``."""
    start, end = at, at + 1
    while start and (view[start - 1].isalpha() or view[start - 1] in _LEET_CHARS):
        start -= 1
    while end < len(view) and (view[end].isalpha() or view[end] in _LEET_CHARS):
        end += 1
    return sum(c.isalpha() for c in view[start:end])


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
    words = long_words(text)
    if not words:
        return found
    text = " ".join(words)
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


#: ASCII as a base64 character (``b``), whitespace (`` ``, as ``str.split`` reads it) or other (``.``)
_BASE64_CLASSES = (
    bytes(
        ord("b") if chr(c).isalnum() or chr(c) in "+/" else ord(" ") if chr(c).isspace() else ord(".")
        for c in range(128)
    )
    + b"." * 128
)
_BASE64_RUN = b"b" * 16


def long_words(text: str) -> list[str]:
    """The words of ``text`` that may hold a base64 or hex run (16 characters or more)."""
    if not text.isascii():
        return [word for word in text.split() if len(word) >= 16]
    classes = text.encode("ascii").translate(_BASE64_CLASSES)  # the runs found at C speed
    words: list[str] = []
    at = classes.find(_BASE64_RUN)
    while at >= 0:
        end = classes.find(b" ", at)
        end = len(classes) if end < 0 else end
        words.append(text[classes.rfind(b" ", 0, at) + 1 : end])
        at = classes.find(_BASE64_RUN, end)
    return words
