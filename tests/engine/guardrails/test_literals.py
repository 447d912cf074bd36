"""Required and opening literals of a regular expression: every match contains (starts with) one
of them, and expressions without useful ones give None."""

from __future__ import annotations

import re

import pytest

from breakwater.engine.guardrails.injection_patterns import PATTERNS
from breakwater.engine.guardrails.literals import opening_literals, required_literals


@pytest.mark.parametrize(
    ("pattern", "required", "opening"),
    [
        (r"\b(?:ignore|forget) (?:all )?rules", ("forget", "ignore"), ("forget", "ignore")),
        (r"(?:^|[.!?] )you are (?:the|a) ", ("you are ",), None),
        (r"[a-z]+\d", None, None),
        (r"abc(?:cd)?x", ("abc",), ("abc",)),
        (r"\bpwned\b|\bexploit\w*", ("exploit", "pwned"), ("exploit", "pwned")),
        (r"(?:say){2,}now", ("say",), None),  # a repeat does not give an opening
    ],
)
def test_literals_of_an_expression(
    pattern: str, required: tuple[str, ...] | None, opening: tuple[str, ...] | None
) -> None:
    """Factors through groups, alternations and repeats of at least one; optional parts are not required."""
    assert required_literals(pattern) == required
    assert opening_literals(pattern) == opening


@pytest.mark.parametrize(("signal", "weight", "pattern"), PATTERNS)
def test_every_shipped_phrase_compiles_and_its_literals_are_lower_case(
    signal: str, weight: float, pattern: str
) -> None:
    """The shipped phrases compile, weigh in (0, 1], and their literals are lower case (the text is)."""
    re.compile(pattern)
    assert 0 < weight <= 1
    for literals in (required_literals(pattern), opening_literals(pattern)):
        assert literals is None or all(word == word.lower() for word in literals)
