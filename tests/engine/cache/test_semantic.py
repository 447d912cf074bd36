"""The semantic index and scope, with a deterministic stand-in embedder (tests/server covers the real one)."""

from __future__ import annotations

import copy
from typing import Any

import numpy as np

from breakwater.engine.cache.semantic import Match, SemanticIndex, Vector
from breakwater.engine.cache.semantic_scope import question_of, scope_of
from breakwater.providers import openai_serve


def letters(text: str) -> Vector:
    """A deterministic stand-in embedding: the text's letter counts, normalised (similar
    spellings are similar vectors)."""
    v = np.zeros(26, dtype=np.float32)
    for ch in text.lower():
        if "a" <= ch <= "z":
            v[ord(ch) - 97] += 1
    n = float(np.linalg.norm(v))
    return v / n if n else v


def _add(index: SemanticIndex, scope: str, question: str, key: str) -> None:
    index.add(scope, question, key, letters(question))


def _match(index: SemanticIndex, scope: str, question: str, threshold: float) -> Match | None:
    return index.match(scope, question, letters(question), threshold)


def test_a_similar_question_matches_and_a_verifier_failure_does_not() -> None:
    """Above the threshold and through the verifier: a match with its key; else none."""
    index = SemanticIndex()
    _add(index, "s", "how do i reset my password", "k1")
    match = _match(index, "s", "how do i reset my password please", 0.9)
    assert match is not None and match.key == "k1" and match.similarity > 0.9
    assert _match(index, "s", "how do i reset my password", 0.9) is not None
    assert _match(index, "other scope", "how do i reset my password", 0.9) is None
    _add(index, "s", "convert 10 eur to usd", "k2")
    assert _match(index, "s", "convert 10 usd to eur", 0.9) is None  # identical letters, other order


def test_forget_and_the_bound() -> None:
    """A forgotten key no longer matches; past max_entries the oldest rows go first."""
    index = SemanticIndex(max_entries=3)
    for i, q in enumerate(["alpha question", "beta question", "gamma question", "delta question"]):
        _add(index, "s", q, f"k{i}")
    assert index.entries == 3
    assert _match(index, "s", "alpha question", 0.999) is None  # evicted
    assert _match(index, "s", "delta question", 0.999) is not None
    index.forget("s", "k3")
    assert _match(index, "s", "delta question", 0.999) is None and index.entries == 2


def test_a_vector_of_another_dimension_is_neither_added_nor_matched() -> None:
    """The first vector fixes the index's dimension; one of another length (an embedder swapped
    under it) is ignored instead of failing the request."""
    index = SemanticIndex()
    _add(index, "s", "opening hours", "k1")
    wider = np.ones(32, dtype=np.float32) / np.sqrt(32)
    index.add("s", "opening hours", "k2", wider)
    assert index.entries == 1 and index.dimensions == 26
    assert index.match("s", "opening hours", wider, 0.1) is None
    assert _match(index, "s", "opening hours", 0.99) is not None


BASE: dict[str, Any] = {
    "model": "faq",
    "temperature": 0,
    "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Opening hours?"}],
}


def _scope(body: dict[str, Any], tenant: str = "key:a") -> str:
    return scope_of(openai_serve.decode_chat_request(copy.deepcopy(body)), "fp", tenant)


def test_the_scope_is_everything_but_the_question() -> None:
    """Another question keeps the scope; another system prompt, earlier turn, tool set, parameter or
    tenant changes it."""
    other_question = copy.deepcopy(BASE)
    other_question["messages"][-1]["content"] = "When do you open?"
    assert _scope(other_question) == _scope(BASE)
    changed_system = copy.deepcopy(BASE)
    changed_system["messages"][0]["content"] = "Be verbose."
    earlier = copy.deepcopy(BASE)
    earlier["messages"][1:1] = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]
    tools = {**BASE, "tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}]}
    for changed in (changed_system, earlier, tools, {**BASE, "temperature": 0.5}):
        assert _scope(changed) != _scope(BASE)
    assert _scope(BASE, tenant="key:b") != _scope(BASE)


def test_only_a_plain_user_question_is_looked_up() -> None:
    """A last turn that is not a user's text (an assistant turn, a tool result, an image) has no question."""
    assert question_of(openai_serve.decode_chat_request(copy.deepcopy(BASE))) == "Opening hours?"
    tool_last = {**BASE, "messages": [*BASE["messages"], {"role": "assistant", "content": "9 to 5"}]}
    image = {
        **BASE,
        "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://x/y.png"}}]}],
    }
    for body in (tool_last, image):
        assert question_of(openai_serve.decode_chat_request(copy.deepcopy(body))) is None
