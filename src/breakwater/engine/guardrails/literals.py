"""The literal words every match of a regular expression contains: a cheap ``in`` test that
tells which expressions can be skipped for a text (the injection heuristics run ~100 of them).

``required_literals(r"\\b(?:ignore|forget) (?:all )?rules")`` is ``("forget", "ignore")`` (the
factor whose shortest word is longest): a text with neither cannot match.
``opening_literals`` gives the words every match *starts* with, so the expression need only be
tried at their occurrences. An expression without such words (or with one shorter than
``MIN_LENGTH`` characters) gives ``None``: it is searched as it is.
"""

from __future__ import annotations

import importlib
from typing import Any

#: the standard library's own regular-expression parser (private, stable since 3.11: ``re._parser``)
_PARSER: Any = importlib.import_module("re._parser")
LITERAL, AT, BRANCH, SUBPATTERN = _PARSER.LITERAL, _PARSER.AT, _PARSER.BRANCH, _PARSER.SUBPATTERN
MAX_REPEAT, MIN_REPEAT = _PARSER.MAX_REPEAT, _PARSER.MIN_REPEAT

#: factors shorter than this are not worth testing (every text has an "a")
MIN_LENGTH = 3


def _best(candidates: list[frozenset[str]]) -> frozenset[str] | None:
    usable = [c for c in candidates if c and min(map(len, c)) >= MIN_LENGTH]
    if not usable:
        return None
    return max(usable, key=lambda c: (min(map(len, c)), -len(c)))


def _sequence(items: Any) -> frozenset[str] | None:
    """A set of literals one of which every match of this sequence contains."""
    candidates: list[frozenset[str]] = []
    run: list[str] = []

    def flush() -> None:
        if run:
            candidates.append(frozenset(["".join(run)]))
            run.clear()

    for op, arg in items:
        if op is LITERAL:
            run.append(chr(arg))
            continue
        flush()
        if op is SUBPATTERN:
            found = _sequence(arg[-1])
        elif op is BRANCH:
            alternatives = [_sequence(alt) for alt in arg[1]]
            found = None if any(a is None for a in alternatives) else frozenset().union(*alternatives)  # type: ignore[arg-type]
        elif op in (MAX_REPEAT, MIN_REPEAT) and arg[0] >= 1:
            found = _sequence(arg[2])
        else:
            found = None
        if found is not None:
            candidates.append(found)
    flush()
    return _best(candidates)


def required_literals(pattern: str) -> tuple[str, ...] | None:
    """Literals one of which every match of ``pattern`` contains (``None``: no useful set).

    Written for case-sensitive patterns without inline flags: the injection phrases, searched
    in lower-cased text."""
    found = _sequence(_PARSER.parse(pattern))
    return None if found is None else tuple(sorted(found))


def _opening(items: Any) -> frozenset[str] | None:
    """The literals every match of this sequence starts with (after zero-width assertions)."""
    run: list[str] = []
    for op, arg in items:
        if op is LITERAL:
            run.append(chr(arg))
            continue
        if run:
            break
        if op is AT:
            continue
        if op is SUBPATTERN:
            return _opening(arg[-1])
        if op is BRANCH:
            alternatives = [_opening(alt) for alt in arg[1]]
            if any(a is None for a in alternatives):
                return None
            return frozenset().union(*alternatives)  # type: ignore[arg-type]
        return None
    return frozenset(["".join(run)]) if run else None


def opening_literals(pattern: str) -> tuple[str, ...] | None:
    """Literals one of which every match of ``pattern`` starts with (``None``: none, or one
    shorter than ``MIN_LENGTH``): the phrase need only be tried where one of them occurs."""
    found = _opening(_PARSER.parse(pattern))
    if not found or min(map(len, found)) < MIN_LENGTH:
        return None
    return tuple(sorted(found))
