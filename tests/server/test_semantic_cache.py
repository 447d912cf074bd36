"""The semantic cache end to end: a similar question in the same scope gets the stored answer
(``semantic-hit``, with its similarity); another system prompt, earlier turn, tool set or tenant,
or a question that only looks similar, does not."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

from breakwater.core.config import build_config
from breakwater.server.app import create_app
from tests.server.running import admin_http, openai_sdk, serve
from tests.server.test_ledger import _row

ADMIN = "adm-semantic-77aa"
QUESTION = "How do I reset my password?"
SIMILAR = "How can I reset my password?"  # cosine 0.98 with QUESTION on the bundled model


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path, Any]]:
    tmp = tmp_path_factory.mktemp("semantic")
    config = {
        "server": {"admin_key": "env:BW_ADMIN"},
        "access": {"store": f"sqlite:///{tmp}/keys.db"},
        "ledger": {"url": f"sqlite:///{tmp}/ledger.db", "spool_path": str(tmp / "spool"), "flush_interval_s": 0.05},
        "providers": {"m": {"type": "mock"}},
        "deployments": {"d": {"provider": "m", "model": "mock-gpt"}},
        "routes": {"faq": {"deployments": ["d"], "cache": {"mode": "semantic"}}},
    }
    app = create_app(build_config(config), environ={"BW_ADMIN": ADMIN})
    with serve(app) as url:
        yield url, tmp / "ledger.db", admin_http(url, ADMIN)


def _client(gateway: tuple[str, Path, Any], name: str) -> openai.OpenAI:
    url, _, admin = gateway
    made = admin.post("/admin/keys", json={"name": name})
    assert made.status_code == 201, made.text
    return openai_sdk(url, made.json()["key"])


def _ask(client: openai.OpenAI, text: str, system: str | None = None, **extra: Any) -> Any:
    messages: list[Any] = [{"role": "system", "content": system}] if system else []
    messages.append({"role": "user", "content": text})
    return client.chat.completions.with_raw_response.create(model="faq", messages=messages, temperature=0, **extra)


def _learn(client: openai.OpenAI, text: str, system: str | None = None) -> Any:
    """Ask ``text`` (a miss) and wait until its answer is stored and indexed."""
    first = _ask(client, text, system)
    assert first.headers["x-breakwater-cache"] == "miss"
    deadline = time.monotonic() + 10
    while _ask(client, text, system).headers["x-breakwater-cache"] != "hit":
        assert time.monotonic() < deadline, "the answer was never stored"
        time.sleep(0.02)
    return first


def test_a_similar_question_gets_the_stored_answer(gateway: tuple[str, Path, Any]) -> None:
    """A paraphrase in the same scope is a semantic hit: the first answer, the similarity in a
    header, a ledger row with cost 0; streamed, it is replayed as a stream."""
    client = _client(gateway, "paraphrase")
    first = _learn(client, QUESTION)
    hit = _ask(client, SIMILAR)
    assert hit.headers["x-breakwater-cache"] == "semantic-hit"
    assert float(hit.headers["x-breakwater-cache-similarity"]) >= 0.96
    assert hit.parse().choices[0].message.content == first.parse().choices[0].message.content
    row = _row(gateway[1], hit.headers["x-request-id"])
    assert row["cache"] == "semantic-hit" and row["attempts"] == 0 and float(row["cost_usd"]) == 0
    stream = client.chat.completions.create(
        model="faq", messages=[{"role": "user", "content": SIMILAR}], temperature=0, stream=True
    )
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text == first.parse().choices[0].message.content


@pytest.mark.parametrize(
    "change",
    [
        {"system": "You answer in French."},  # another system prompt
        {"earlier": True},  # another conversation before the question
        {"tools": True},  # another tool set
        {"tenant": True},  # another key
    ],
)
def test_the_same_question_in_another_scope_is_a_miss(gateway: tuple[str, Path, Any], change: dict[str, Any]) -> None:
    """Scope is everything but the last user turn: changing any of it means no semantic hit."""
    client = _client(gateway, "scoped")
    _learn(client, "What are the store opening hours?")
    asker = _client(gateway, "other-tenant") if change.get("tenant") else client
    messages: list[Any] = []
    if change.get("system"):
        messages.append({"role": "system", "content": change["system"]})
    if change.get("earlier"):
        messages += [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}]
    messages.append({"role": "user", "content": "What are the opening hours of the store?"})
    extra: dict[str, Any] = {}
    if change.get("tools"):
        extra["tools"] = [{"type": "function", "function": {"name": "hours", "parameters": {"type": "object"}}}]
    answer = asker.chat.completions.with_raw_response.create(model="faq", messages=messages, temperature=0, **extra)
    assert answer.headers["x-breakwater-cache"] == "miss"


@pytest.mark.parametrize(
    ("stored", "asked"),
    [
        ("How do I enable 2FA on my account?", "How do I disable 2FA on my account?"),
        ("Convert 10 EUR to USD", "Convert 10 USD to EUR"),
        ("What is 15% of 200?", "What is 25% of 200?"),
    ],
)
def test_a_question_that_only_looks_similar_is_a_miss(gateway: tuple[str, Path, Any], stored: str, asked: str) -> None:
    """The verifier keeps antonyms, swapped currencies and other numbers from being served."""
    client = _client(gateway, "lookalike")
    _learn(client, stored)
    assert _ask(client, asked).headers["x-breakwater-cache"] == "miss"
