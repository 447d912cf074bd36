"""A string that matches a regular expression, for JSON schema ``pattern`` (best effort).

Schemas in tool definitions use a small, common part of regex syntax (``^[A-Z]{3}-\\d{4}$``,
``^[a-z]+@[a-z]+\\.com$``), so this covers exactly that: literals and escapes, ``.``,
``\\d \\w \\s`` and their negations, character classes with ranges and negation, groups
(capturing, ``(?:)``, named), alternation, the quantifiers ``? * + {n} {n,} {n,m}`` (lazy or
possessive suffixes too) and the anchors ``^ $ \\b``. Lookarounds and backreferences are not
covered: ``string_matching`` then returns None and the caller keeps its plain value.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass

_LETTERS = string.ascii_lowercase + string.ascii_uppercase
# preferred characters first, so negated classes still give readable text
_PRINTABLE = _LETTERS + string.digits + "_-. @:/+*#%&=~,;!?$^()[]{}|\\'\"<>`"
_CLASSES = {
    "d": string.digits,
    "w": _LETTERS + string.digits + "_",
    "s": " ",
    "D": _LETTERS,
    "W": "-",
    "S": _LETTERS,
}
_MAX_REPEAT = 1000
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "f": "\f", "v": "\v", "0": "\0"}


@dataclass(frozen=True, slots=True)
class _Set:
    """One character out of ``chars``."""

    chars: str


@dataclass(frozen=True, slots=True)
class _Seq:
    items: list[_Node]


@dataclass(frozen=True, slots=True)
class _Alt:
    branches: list[_Node]


@dataclass(frozen=True, slots=True)
class _Rep:
    """``node`` repeated; the shortest allowed count is generated, so only the minimum matters."""

    node: _Node
    minimum: int


_Node = _Set | _Seq | _Alt | _Rep
_EMPTY = _Seq([])


class _Unsupported(Exception):
    """The pattern uses syntax outside the covered subset."""


def string_matching(pattern: str, seed: int = 0) -> str | None:
    """A short string ``re.search(pattern, s)`` accepts, or None if the pattern is beyond the subset."""
    try:
        node = _Parser(pattern).parse()
        out: list[str] = []
        _generate(node, [seed & 0x7FFFFFFF], out)
        value = "".join(out)
        return value if re.search(pattern, value) is not None else None
    except (_Unsupported, re.error, IndexError, ValueError):
        return None


def _generate(node: _Node, state: list[int], out: list[str]) -> None:
    if isinstance(node, _Set):
        if not node.chars:
            raise _Unsupported("empty character class")
        out.append(node.chars[state[0] % len(node.chars)])
        # a small LCG step so consecutive characters differ but stay reproducible
        state[0] = (state[0] * 1103515245 + 12345) & 0x7FFFFFFF
    elif isinstance(node, _Seq):
        for child in node.items:
            _generate(child, state, out)
    elif isinstance(node, _Alt):
        _generate(node.branches[0], state, out)  # the first alternative: usually the plain one
    else:
        for _ in range(node.minimum):
            _generate(node.node, state, out)


class _Parser:
    __slots__ = ("_i", "_p")

    def __init__(self, pattern: str) -> None:
        self._p = pattern
        self._i = 0

    def parse(self) -> _Node:
        node = self._alt()
        if self._i != len(self._p):
            raise _Unsupported(f"unexpected {self._p[self._i]!r}")
        return node

    def _peek(self) -> str:
        return self._p[self._i] if self._i < len(self._p) else ""

    def _next(self) -> str:
        c = self._p[self._i]  # IndexError on a truncated pattern: caught by the caller
        self._i += 1
        return c

    def _alt(self) -> _Node:
        branches = [self._seq()]
        while self._peek() == "|":
            self._i += 1
            branches.append(self._seq())
        return _Alt(branches) if len(branches) > 1 else branches[0]

    def _seq(self) -> _Node:
        items: list[_Node] = []
        while self._peek() not in ("", "|", ")"):
            items.append(self._quantified(self._atom()))
        return _Seq(items)

    def _atom(self) -> _Node:
        c = self._next()
        if c == "(":
            if self._p.startswith("?:", self._i):
                self._i += 2
            elif self._p.startswith(("?P<", "?<"), self._i) and not self._p.startswith(("?<=", "?<!"), self._i):
                self._i = self._p.index(">", self._i) + 1
            elif self._peek() == "?":
                raise _Unsupported("lookaround or inline flags")
            node = self._alt()
            if self._next() != ")":
                raise _Unsupported("unbalanced group")
            return node
        if c in "^$":
            return _EMPTY
        if c == ".":
            return _Set(_LETTERS)
        if c == "[":
            return self._class()
        if c == "\\":
            return self._escape()
        if c in "*+?{":
            raise _Unsupported("quantifier without an atom")
        return _Set(c)

    def _escape(self) -> _Node:
        c = self._next()
        if c in _CLASSES:
            return _Set(_CLASSES[c])
        if c in "bBAzZ":
            return _EMPTY  # boundaries and anchors match positions, not characters
        return _Set(self._escaped_char(c))

    def _escaped_char(self, c: str) -> str:
        if c.isdigit() and c != "0":
            raise _Unsupported("backreference")
        if c in _ESCAPES:
            return _ESCAPES[c]
        if c in "ux":
            width = 4 if c == "u" else 2
            code = self._p[self._i : self._i + width]
            self._i += width
            return chr(int(code, 16))
        return c

    def _class(self) -> _Node:
        negate = self._peek() == "^"
        if negate:
            self._i += 1
        chars: list[str] = []
        first = True
        while True:
            c = self._next()
            if c == "]" and not first:
                break
            first = False
            if c == "\\":
                e = self._next()
                if e in _CLASSES:
                    chars.extend(_CLASSES[e])
                    continue
                c = self._escaped_char(e)
            if self._peek() == "-" and self._p[self._i + 1 : self._i + 2] not in ("]", ""):
                self._i += 1
                hi = self._next()
                if hi == "\\":
                    hi = self._escaped_char(self._next())
                chars.extend(chr(x) for x in range(ord(c), ord(hi) + 1))
            else:
                chars.append(c)
        if negate:
            excluded = set(chars)
            return _Set("".join(ch for ch in _PRINTABLE if ch not in excluded))
        # letters and digits first so "[ -~]" gives a letter rather than a space
        rank = {ch: i for i, ch in enumerate(_PRINTABLE)}
        return _Set("".join(sorted(dict.fromkeys(chars), key=lambda ch: rank.get(ch, len(rank)))))

    def _quantified(self, atom: _Node) -> _Node:
        c = self._peek()
        if c in ("?", "*"):
            minimum = 0
        elif c == "+":
            minimum = 1
        elif c == "{" and (m := re.match(r"\{(\d+)(,\d*)?\}", self._p[self._i :])):
            minimum = int(m.group(1))
            if minimum > _MAX_REPEAT:
                raise _Unsupported("a repeat count larger than the mock writes")
            self._i += len(m.group(0)) - 1
        else:
            return atom
        self._i += 1
        if self._peek() in ("?", "+"):  # lazy or possessive: same strings match
            self._i += 1
        return _Rep(atom, minimum)
