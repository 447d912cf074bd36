"""The semantic verifier: the published false hits of similarity-only caches are refused."""

from __future__ import annotations

import pytest

from breakwater.engine.cache.verify import Verifier


@pytest.mark.parametrize(
    ("stored", "asked", "rule"),
    [
        ("How do I enable 2FA?", "How do I disable 2FA?", "antonym"),
        ("10 EUR to USD", "10 USD to EUR", "order"),
        ("What is 15% of 200?", "What is 25% of 200?", "numbers"),
        ("Is it safe to fly?", "Is it not safe to fly?", "negation"),
        ("Why doesn't my build pass?", "Why does my build pass?", "negation"),
        ("What does os.path.join do?", "What does os.path.split do?", "identifiers"),
        ("How do I call getUserName?", "How do I call getUserId?", "identifiers"),
    ],
)
def test_pairs_that_differ_where_it_matters_are_refused(stored: str, asked: str, rule: str) -> None:
    """Each named rule catches its kind of difference."""
    assert Verifier().check(asked, stored) == rule


@pytest.mark.parametrize(
    ("stored", "asked"),
    [
        ("How do I reset my password?", "How can I reset my password?"),
        ("What is the capital of France?", "What's the capital of France?"),
        ("Convert 1,000 EUR to USD", "convert 1000 eur to usd"),
        ("What are the store opening hours?", "What are the opening hours of the store?"),
    ],
)
def test_paraphrases_pass(stored: str, asked: str) -> None:
    """Rewordings, case, and number formatting do not trip a rule."""
    assert Verifier().check(asked, stored) is None


def test_the_optional_rules() -> None:
    """Question word and content overlap are off by default (they did not pay on QQP) and work when on."""
    assert Verifier().check("What is a surrogate father?", "How can I find a surrogate father?") is None
    assert Verifier(same_question_word=True).check("What is X?", "How is X made?") == "question word"
    assert Verifier(min_overlap=0.6).check("How do I learn Python?", "How do I learn Java?") == "content"
