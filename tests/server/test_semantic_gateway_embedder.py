"""The semantic cache with ``cache.embedder: {model: ROUTE}``: questions embedded by one of the
gateway's own embeddings routes (here the mock's bag-of-words embeddings, on which paraphrases
sharing most words are similar), each embedding a ledger row of its own; an embedder that fails
skips the semantic lookup and fails no request."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import openai
import pytest

from breakwater.core.config import build_config
from breakwater.server.app import create_app
from tests.server.running import openai_sdk, serve

QUESTION = "How do I reset my password?"
SIMILAR = "How can I reset my password?"  # five words of six in common: cosine about 0.83 on the mock


def _config(tmp: Path, embed_faults: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    embedder: dict[str, Any] = {"type": "mock"}
    if embed_faults:
        embedder["faults"] = embed_faults
    return {
        "access": {"enabled": False},
        "ledger": {"url": f"sqlite:///{tmp}/ledger.db", "spool_path": str(tmp / "spool"), "flush_interval_s": 0.05},
        "providers": {"m": {"type": "mock"}, "e": embedder},
        "deployments": {
            "chat": {"provider": "m", "model": "mock-gpt"},
            "vectors": {"provider": "e", "model": "mock-embed"},
        },
        "routes": {
            "faq": {"deployments": ["chat"], "cache": {"mode": "semantic", "similarity": 0.8}},
            "embed": {"deployments": ["vectors"]},
        },
        "cache": {"embedder": {"model": "embed"}},
    }


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    tmp = tmp_path_factory.mktemp("gateway-embedder")
    with serve(create_app(build_config(_config(tmp)), environ={})) as url:
        yield url, tmp / "ledger.db"


def _ask(client: openai.OpenAI, text: str) -> Any:
    messages: Any = [{"role": "user", "content": text}]
    return client.chat.completions.with_raw_response.create(model="faq", messages=messages, temperature=0)


def _embedder_rows(ledger: Path, at_least: int, timeout_s: float = 10.0) -> list[dict[str, Any]]:
    """The ledger rows of the embedder's own calls, once there are ``at_least`` (bounded wait)."""
    deadline = time.monotonic() + timeout_s
    while True:
        rows: list[dict[str, Any]] = []
        if ledger.exists():
            db = sqlite3.connect(ledger)
            db.row_factory = sqlite3.Row
            try:
                found = db.execute("SELECT * FROM breakwater_ledger WHERE user = 'breakwater:semantic-cache'")
                rows = [dict(r) for r in found.fetchall()]
            except sqlite3.OperationalError:  # table not created yet
                pass
            finally:
                db.close()
        if len(rows) >= at_least:
            return rows
        assert time.monotonic() < deadline, f"{len(rows)} embedder rows after {timeout_s}s, expected {at_least}"
        time.sleep(0.02)


def _metric(url: str, name: str) -> float:
    for line in httpx2.get(f"{url}/metrics").text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not in /metrics")


def test_a_paraphrase_is_a_semantic_hit_through_the_gateway_embedder(gateway: tuple[str, Path]) -> None:
    """The first question is a miss, embedded by the ``embed`` route; once stored, a paraphrase
    is a semantic hit with the first answer; each embedding is a ledger row on that route."""
    url, ledger = gateway
    client = openai_sdk(url)
    first = _ask(client, QUESTION)
    assert first.headers["x-breakwater-cache"] == "miss"
    deadline = time.monotonic() + 10
    while True:  # the answer is stored once the response has gone out: wait for the exact hit
        again = _ask(client, QUESTION)
        if again.headers["x-breakwater-cache"] == "hit":
            break
        assert time.monotonic() < deadline, "the answer was never stored"
        time.sleep(0.02)
    hit = _ask(client, SIMILAR)
    assert hit.headers["x-breakwater-cache"] == "semantic-hit"
    assert 0.8 <= float(hit.headers["x-breakwater-cache-similarity"]) < 0.95
    assert hit.parse().choices[0].message.content == first.parse().choices[0].message.content
    rows = _embedder_rows(ledger, 2)  # the miss's question and the paraphrase (an exact hit embeds nothing)
    assert {r["route"] for r in rows} == {"embed"} and {r["deployment"] for r in rows} == {"vectors"}
    assert all(r["status"] == 200 and r["input_tokens"] > 0 and r["key_id"] == "" for r in rows)


def test_a_failing_embedder_skips_the_semantic_lookup_and_fails_no_request(tmp_path: Path) -> None:
    """The embeddings route answers 400: every question is still answered (an exact miss, then an
    exact hit), the failures are counted in /metrics and on the ledger, and no semantic hit is made."""
    faults = [{"fault": "status=400", "paths": ["/v1/embeddings"]}]
    with serve(create_app(build_config(_config(tmp_path, faults)), environ={})) as url:
        client = openai_sdk(url)
        first = _ask(client, QUESTION)
        assert first.status_code == 200 and first.headers["x-breakwater-cache"] == "miss"
        assert _ask(client, SIMILAR).headers["x-breakwater-cache"] == "miss"
        assert _metric(url, "breakwater_cache_embed_failures_total") == 2  # one per request, not one per step
        rows = _embedder_rows(tmp_path / "ledger.db", 2)
        assert {r["status"] for r in rows} == {502} and {r["error_class"] for r in rows} == {"UpstreamBadRequest"}


def test_the_embedder_must_be_a_route_of_the_config() -> None:
    """``cache.embedder.model`` naming no route is a config error, said with its path."""
    from breakwater.core.config import ConfigError

    config = _config(Path("/nonexistent"))
    config["cache"] = {"embedder": {"model": "nowhere"}}
    with pytest.raises(ConfigError) as caught:
        build_config(config)
    assert "cache.embedder.model" in str(caught.value) and "nowhere" in str(caught.value)
