"""The one detector set for personal data and secrets: log redaction and data-loss prevention share it.

``scan(text)`` returns ``Finding(kind, start, end)`` spans, sorted and never overlapping (when
two detectors claim the same characters, the earlier kind in ``KINDS`` wins: a JWT is a
``secret``, not a run of ``phone`` digits). Kinds:

- ``secret``: credentials by shape: bearer tokens, ``sk-``/``pk-``/``rk-`` keys (OpenAI,
  Anthropic ``sk-ant-``), Stripe ``sk_live_``, Google ``AIza`` keys and ``ya29.`` OAuth access
  tokens, AWS access key ids, GitHub, GitLab, Slack and Hugging Face tokens, JWTs, PEM
  private-key blocks, Breakwater ``bw-`` keys;
- ``email``; ``iban`` (ISO 13616, the mod-97 check); ``card`` (13-19 digits passing Luhn);
- ``cpf`` (Brazil, both check digits), ``dni`` (Spain, DNI and NIE with their check letter),
  ``ssn`` (US, area/group/serial rules), ``nino`` (UK National Insurance number: no checksum
  exists, the prefix and suffix rules are checked);
- ``phone`` (international ``+CC`` forms and North-American forms); ``ip`` (IPv4, IPv6);
- ``token``: generic high-entropy tokens (32+ characters of a key alphabet, mixed letters and
  digits, Shannon entropy >= 4.2 bits a character: random keys, not hex digests or words).

Unicode variants are caught: text that is not ASCII is first folded character for character
(fullwidth forms, Unicode dashes and spaces to their ASCII twins: ``４１１１`` is digits, ``＠`` an
at-sign), which keeps every offset valid for the original text; ``\\d`` matches any script's
digits. A percent-encoded at-sign (``%40``) still makes an e-mail address. Matching is a best
effort: it catches the common shapes, not every secret a user can type.
"""

from __future__ import annotations

import bisect
import functools
import ipaddress
import math
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Literal

from breakwater.core.pattern_set import Gated, PatternSet

Kind = Literal["secret", "email", "iban", "card", "cpf", "dni", "ssn", "nino", "phone", "ip", "token"]

#: every kind, in the order that wins an overlap
KINDS: tuple[Kind, ...] = ("secret", "email", "iban", "card", "cpf", "dni", "ssn", "nino", "phone", "ip", "token")


@dataclass(frozen=True, slots=True)
class Finding:
    """``text[start:end]`` looks like data of ``kind``. Carries no copy of the value."""

    kind: Kind
    start: int
    end: int


SECRET_SHAPES = re.compile(
    r"(?i:\bbearer\s+[A-Za-z0-9._~+/=-]{8,})"
    r"|\b(?:sk|pk|rk)-[A-Za-z0-9_-]{8,}"
    r"|\b[sr]k_(?:live|test)_[A-Za-z0-9]{16,}"
    r"|\bAIza[0-9A-Za-z_-]{20,}"
    r"|\bya29\.[0-9A-Za-z_-]{20,}"
    r"|\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"
    r"|\bgh[pousr]_[A-Za-z0-9]{20,}"
    r"|\bglpat-[A-Za-z0-9_-]{20,}"
    r"|\bxox[abposr]-[A-Za-z0-9-]{10,}"
    r"|\bhf_[A-Za-z0-9]{30,}"
    r"|\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"
    r"|-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----"
    r"|\bbw-[A-Za-z0-9_-]{16,}"
)
"""Credential shapes (also used on its own: a config text is refused when one appears in it)."""

_EMAIL = re.compile(r"\b[A-Za-z0-9._%+-]+(?:@|%40)[A-Za-z0-9.-]+\.[A-Za-z]{2,}\b")
_IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?\b")
_CARD = re.compile(r"\b(?:\d[ -]?){12,18}\d\b")
_CPF = re.compile(r"\b\d{3}\.\d{3}\.\d{3}-\d{2}\b|\b\d{11}\b")
_DNI = re.compile(r"\b(?:\d{8}|[XYZ]-?\d{7})-?[A-Z]\b")
_SSN = re.compile(r"\b(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}\b")
_NINO = re.compile(r"\b(?!BG|GB|NK|KN|TN|NT|ZZ)[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z] ?\d{2} ?\d{2} ?\d{2} ?[A-D]\b")
_PHONE = re.compile(r"(?<![\w+])(?:\+\d{1,3}[ .-]?)?\(?\d{3}\)?[ .-]\d{3}[ .-]\d{4}\b")
#: E.164 written with any grouping: ``+44 20 7946 0958``, ``+49 (151) 2345-6789``, ``+4915123456789``
_PHONE_INTL = re.compile(r"(?<![\w+])\+\d{1,3}(?:[ .-]?\(?\d{1,5}\)?){1,6}(?!\d)")
_IPV4 = re.compile(r"\b(?:(?:25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(?:25[0-5]|2[0-4]\d|1?\d?\d)\b")
_IPV6 = re.compile(r"(?<![\w:.])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?![\w:])")
_TOKEN = re.compile(r"(?<![\w+/=-])[A-Za-z0-9_+/=-]{32,}(?![\w+/=-])")

_DNI_LETTERS = "TRWAGMYFPDXBNJZSQVHLCKE"
_NON_DIGITS = re.compile(r"\D")


def _luhn(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        n = int(ch)
        if i % 2 == 1:
            n = n * 2 - 9 if n > 4 else n * 2
        total += n
    return total % 10 == 0


def _card(value: str) -> bool:
    digits = _NON_DIGITS.sub("", value)
    return 13 <= len(digits) <= 19 and _luhn(digits)


def _iban(value: str) -> bool:
    compact = value.replace(" ", "")
    if not 15 <= len(compact) <= 34:
        return False
    rearranged = compact[4:] + compact[:4]
    try:
        number = int("".join(str(int(c, 36)) for c in rearranged))
    except ValueError:  # a non-ASCII digit or letter in the body
        return False
    return number % 97 == 1


def _cpf(value: str) -> bool:
    digits = [int(c) for c in _NON_DIGITS.sub("", value)]
    if len(digits) != 11 or len(set(digits)) == 1:
        return False
    for n in (9, 10):
        check = sum(d * (n + 1 - i) for i, d in enumerate(digits[:n])) * 10 % 11 % 10
        if check != digits[n]:
            return False
    return True


def _dni(value: str) -> bool:
    compact = value.replace("-", "")
    body = compact[:-1]
    if body[0] in "XYZ":
        body = str("XYZ".index(body[0])) + body[1:]
    return _DNI_LETTERS[int(body) % 23] == compact[-1]


def _e164(value: str) -> bool:
    return 8 <= len(_NON_DIGITS.sub("", value)) <= 15


def _ipv6(value: str) -> bool:
    if sum(1 for group in value.split(":") if group) < 3:
        return False  # "::", "a::b", "12:30:45" read as IPv6 only by accident
    try:
        ipaddress.IPv6Address(value)
    except ValueError:
        return False
    return True


def _entropy(value: str) -> float:
    n = len(value)
    return -sum(c / n * math.log2(c / n) for c in Counter(value).values())


def _token(value: str) -> bool:
    return (
        any(c.isdigit() for c in value)
        and any(c.isupper() for c in value)
        and any(c.islower() for c in value)
        and _entropy(value) >= 4.2
    )


_Check = Callable[[str], bool] | None
#: kind -> its patterns, each with the check a match must pass
_DETECTORS: dict[Kind, tuple[tuple[re.Pattern[str], _Check], ...]] = {
    "secret": ((SECRET_SHAPES, None),),
    "email": ((_EMAIL, None),),
    "iban": ((_IBAN, _iban),),
    "card": ((_CARD, _card),),
    "cpf": ((_CPF, _cpf),),
    "dni": ((_DNI, _dni),),
    "ssn": ((_SSN, None),),
    "nino": ((_NINO, None),),
    "phone": ((_PHONE, None), (_PHONE_INTL, _e164)),
    "ip": ((_IPV4, None), (_IPV6, _ipv6)),
    "token": ((_TOKEN, _token),),
}

# Speed: a regular expression costs ~10 ns a character in CPython whatever it looks for, and a
# 4k-token prompt is ~16k characters. So each kind's patterns run only in *windows* around
# clues found at C speed (``bytes.translate`` then ``find``): three adjacent digits (or ``d.d``,
# ``dd dd``, ``::``) for the numeric kinds, an at-sign for e-mail, a run of 11+ key-alphabet characters
# (or ``bearer``, ``-----BEGIN``) for secrets, a run of 32 for tokens. A numeric window is only
# searched for a kind it holds enough digits for (a year is no card). A window runs from the
# whitespace before its clue to the whitespace after, so no pattern is cut inside a word.
_Clue = Literal["digits", "at", "secret", "long"]
_CLUES: dict[Kind, _Clue] = {"secret": "secret", "email": "at", "token": "long"}
#: what a numeric window must hold to be searched for a kind: ``(digits translated to 0, start,
#: end, its digit count)``; a date, an amount or an order number is searched for nothing
_NEEDS: dict[Kind, Callable[[bytes, int, int, int], bool]] = {
    "iban": lambda z, s, e, d: d >= 12,
    "card": lambda z, s, e, d: d >= 13,
    "cpf": lambda z, s, e, d: d >= 11,
    "dni": lambda z, s, e, d: z.find(b"0000000", s, e) != -1,
    "ssn": lambda z, s, e, d: d >= 9,
    "nino": lambda z, s, e, d: z.find(b"000000", s, e) != -1 or z.find(b"00 00 00", s, e) != -1,
    "phone": lambda z, s, e, d: d >= 10 or (d >= 7 and z.find(b"+", s, e) != -1),
    "ip": lambda z, s, e, d: d >= 2 and (z.count(b".", s, e) >= 3 or z.count(b":", s, e) >= 2),
}
#: the fewest digits a window holds to be kept at all
_FEWEST_DIGITS = 6
_OTHER_DIGIT = re.compile(r"(?![0-9])\d")
_ZEROS = bytes.maketrans(b"123456789", b"000000000")
_KEY_ALPHABET = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_+/=-.~")
_RUNS = bytes(ord("a") if i in _KEY_ALPHABET else ord(" ") for i in range(256))
_SECRET_RUN, _TOKEN_RUN = b"a" * 11, b"a" * 32
#: characters around a numeric clue a window takes in, before the whitespace around it
_BEFORE, _AFTER = 8, 16


class _Windows:
    """The clues of one (folded) text, found once, and the windows they make per kind."""

    __slots__ = ("_by_clue", "_digits", "_runs", "_zeros", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        data = text.encode()
        zeros = None
        if not text.isascii():
            # one byte a character ("?" for any other), so offsets hold; a digit of another
            # script is a digit clue too
            data = text.encode("ascii", "replace")
            others = [m.start() for m in _OTHER_DIGIT.finditer(text)]
            if others:
                marked = bytearray(data)
                for at in others:
                    marked[at] = 0x30
                zeros = bytes(marked).translate(_ZEROS)
        self._zeros = data.translate(_ZEROS) if zeros is None else zeros
        self._runs = data.translate(_RUNS)
        self._by_clue: dict[_Clue, list[tuple[int, int]]] = {}
        #: per numeric window: its digits
        self._digits: list[int] | None = None

    def of(self, kind: Kind) -> list[tuple[int, int]]:
        clue = _CLUES.get(kind, "digits")
        spans = self._by_clue.get(clue)
        if spans is None:
            spans = self._by_clue[clue] = self._find(clue)
        zeros = self._zeros
        if clue != "digits":
            return spans
        if self._digits is None:
            self._digits = [zeros.count(b"0", s, e) for s, e in spans]
        need = _NEEDS[kind]
        return [(s, e) for (s, e), d in zip(spans, self._digits, strict=True) if need(zeros, s, e, d)]

    def _find(self, clue: _Clue) -> list[tuple[int, int]]:
        text, n, zeros, runs = self.text, len(self.text), self._zeros, self._runs
        spans: list[tuple[int, int]] = []
        if clue == "at":
            for needle in ("@", "%40"):
                spans.extend((at, at + 1) for at in _hits(text, needle))
        elif clue == "digits":
            # three digits in a row (a year is one), a digit on each side of a dot (IPv4), digit
            # pairs with spaces (a UK NINO), a double colon (IPv6; only looked for with two colons)
            clues = (b"000", b"0.0", b"00 00", b"::") if zeros.count(b":") >= 2 else (b"000", b"0.0", b"00 00")
            for pair in clues:
                at = zeros.find(pair)
                while at != -1:
                    spans.append((at - _BEFORE if at > _BEFORE else 0, at + _AFTER))
                    # the window covers the next _AFTER characters: no need to look for clues there
                    at = zeros.find(pair, at + _AFTER // 2)
            # most numbers in prose are too short to be anything (the clues of a number follow
            # each other closely, so a merged window already holds all of its digits)
            spans = [
                (s, e)
                for s, e in _merged(spans)
                if zeros.count(b"0", s, e) >= _FEWEST_DIGITS
                or zeros.count(b".", s, e) >= 3
                or zeros.count(b":", s, e) >= 2
            ]
        elif clue == "long":
            return _runs_of(runs, _TOKEN_RUN, n)
        else:
            spans = _runs_of(runs, _SECRET_RUN, n)
            for needle in ("earer", "EARER"):
                spans.extend((max(0, at - 2), min(n, at + 16)) for at in _hits(text, needle))
            for at in _hits(text, "-----BEGIN"):
                closing = text.find("-----END", at)
                end = -1 if closing == -1 else text.find("-----", closing + 8)
                spans.append((at, n if end == -1 else end + 5))
        return [(_space_before(text, s), _space_after(text, e)) for s, e in _merged(spans)]


def _runs_of(runs: bytes, needle: bytes, n: int) -> list[tuple[int, int]]:
    """The spans of the runs at least as long as ``needle``."""
    spans: list[tuple[int, int]] = []
    at = runs.find(needle)
    while at != -1:
        end = runs.find(b" ", at)
        end = n if end == -1 else end
        spans.append((at, end))
        at = runs.find(needle, end)
    return spans


#: how far a window reaches for the whitespace around it (a longer word is cut there)
_REACH = 128


def _space_before(text: str, at: int) -> int:
    """Where the word holding ``at`` starts (at most ``_REACH`` back; a newline counts only as a
    word character here, which makes a window larger, never cut inside a match)."""
    floor = max(0, at - _REACH)
    found = text.rfind(" ", floor, at)
    return floor if found == -1 else found + 1


def _space_after(text: str, at: int) -> int:
    """Where the word holding ``at`` ends (at most ``_REACH`` on)."""
    ceiling = min(len(text), at + _REACH)
    found = text.find(" ", at, ceiling)
    return ceiling if found == -1 else found


def _merged(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    spans.sort()
    merged: list[tuple[int, int]] = []
    for start, end in spans:
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def _hits(text: str, needle: str) -> Iterator[int]:
    """Where ``needle`` occurs in ``text``."""
    at = text.find(needle)
    while at != -1:
        yield at
        at = text.find(needle, at + 1)


@functools.cache
def _fold_table() -> dict[int, str]:
    """Non-ASCII characters with a one-character ASCII twin (built on first use, not at import)."""
    table = {code: chr(code - 0xFEE0) for code in range(0xFF01, 0xFF5F)}  # fullwidth forms
    for code in (0x2010, 0x2011, 0x2012, 0x2013, 0x2014, 0x2212, 0xFE63):
        table[code] = "-"
    for code in (0x00A0, 0x2007, 0x2009, 0x200A, 0x202F, 0x3000, *range(0x2000, 0x2007)):
        table[code] = " "
    table[0xFE6B] = "@"
    table[0xFF0E] = "."
    return table


#: the characters ``_fold_table`` maps (``str.translate`` looks every character of a non-ASCII
#: text up in a dict, ~50 ns each: a substitution of only these is ten times faster, and RE2
#: rules out in one faster pass a text with none of them)
_FOLDABLE = Gated("[\uff01-\uff5e\u2010-\u2014\u2212\ufe63\u00a0\u2000-\u200a\u202f\u3000\ufe6b]")


def fold(text: str) -> str:
    """``text`` with Unicode look-alikes of ASCII folded, character for character (same length)."""
    if text.isascii():
        return text
    table = _fold_table()
    return _FOLDABLE.sub(lambda m: table[ord(m.group())], text)


#: each pattern of ``_DETECTORS`` in one RE2 set, and the kind each stands for (``False``: not
#: made yet; ``None``: no google-re2)
_GATE: tuple[PatternSet, tuple[Kind, ...]] | bool | None = False


def _may_hold(text: str) -> set[Kind]:
    """The kinds whose patterns may match ``text`` once folded (one pass of RE2 over it as it
    is; every kind without google-re2). A text of prose with numbers in it (dates, amounts,
    versions) is ruled out of every numeric kind here, before it is folded or any window made."""
    global _GATE
    gate = _GATE
    if gate is False:
        entries = [(kind, pattern.pattern) for kind, checks in _DETECTORS.items() for pattern, _ in checks]
        found = PatternSet.of([pattern for _, pattern in entries], folding=True)
        gate = _GATE = None if found is None else (found, tuple(kind for kind, _ in entries))
    if not isinstance(gate, tuple):
        return set(KINDS)
    found, kind_of = gate
    return {kind_of[i] for i in found.candidates(text)}


def scan(text: str, kinds: Iterable[Kind] = KINDS) -> list[Finding]:
    """The spans of ``text`` that look like personal data or secrets, sorted, never overlapping.

    Args:
        text: any text; no input raises.
        kinds: the kinds to look for (an overlap is won by the earlier kind in ``KINDS``).
    """
    wanted = set(kinds) & _may_hold(text)
    if not wanted:
        return []
    folded = fold(text)
    windows = _Windows(folded)
    claimed: list[Finding] = []
    starts: list[int] = []  # claimed spans by start, to refuse an overlap in O(log n)
    ends: list[int] = []
    for kind in KINDS:
        if kind not in wanted:
            continue
        spans = windows.of(kind)
        for pattern, check in _DETECTORS[kind]:
            for match in (m for s, e in spans for m in pattern.finditer(folded, s, e)):
                start, end = match.span()
                if check is not None and not check(match.group()):
                    continue
                at = bisect.bisect_right(starts, start)
                if (at and ends[at - 1] > start) or (at < len(starts) and starts[at] < end):
                    continue
                starts.insert(at, start)
                ends.insert(at, end)
                claimed.append(Finding(kind, start, end))
    claimed.sort(key=lambda f: f.start)
    return claimed


def replace(text: str, findings: list[Finding], placeholder: Callable[[Finding], str]) -> str:
    """``text`` with each finding's span (``scan``'s, sorted, disjoint) replaced by its placeholder."""
    if not findings:
        return text
    return "".join(_pieces(text, findings, placeholder))


def _pieces(text: str, findings: list[Finding], placeholder: Callable[[Finding], str]) -> Iterator[str]:
    at = 0
    for finding in findings:
        yield text[at : finding.start]
        yield placeholder(finding)
        at = finding.end
    yield text[at:]
