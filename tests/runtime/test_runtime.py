"""Runtimes built from a config and from a previous runtime: what is kept, who stops what."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from breakwater.core.config import build_config
from breakwater.core.types import ChatRequest, Message, TextPart
from breakwater.engine.context import RequestContext
from breakwater.engine.pipeline import Outcome
from breakwater.runtime.process import Process
from breakwater.runtime.reuse import unchanged_deployments
from breakwater.runtime.runtime import Runtime


def _config(tmp: Path, *, timeout: float = 600, alerts: bool = False) -> dict[str, Any]:
    config: dict[str, Any] = {
        "access": {"enabled": False},
        "ledger": {"url": f"sqlite:///{tmp}/ledger.db", "spool_path": f"{tmp}/ledger.spool"},
        "providers": {"m": {"type": "mock", "wire": "openai"}},
        "deployments": {
            "a": {"provider": "m", "model": "mock-gpt"},
            "b": {"provider": "m", "model": "mock-gpt", "timeouts": {"total": timeout}},
        },
        "routes": {"r": {"deployments": ["a", "b"]}},
    }
    if alerts:
        config["alerts"] = {"error_rate": {"threshold": 0.5, "window_s": 60, "min_requests": 10}}
    return config


async def test_a_runtime_built_from_another_keeps_what_did_not_change_and_stops_it_once(tmp_path: Path) -> None:
    process = Process({})
    first = Runtime(build_config(_config(tmp_path)), process)
    await first.start()
    first.commit()
    breaker = first.gateway.breaker(first.router.routes["r"].deployments[0])

    second = Runtime(build_config(_config(tmp_path, timeout=300, alerts=True)), process, previous=first)
    assert sorted(second.kept) == ["access", "batches", "cache", "ledger", "responses", "tracer"]  # alerts: rebuilt
    assert second.ledger is first.ledger and second.access is first.access
    assert second.responses is first.responses  # stored responses (in memory too) outlive the reload
    assert second.batches is first.batches  # so do batch files and batches
    assert second.alerts is not None and second.alerts is not first.alerts
    assert second.gateway.breakers["a"] is breaker  # deployment a unchanged: its state carried
    await second.start()
    second.commit()
    assert process.current is second

    await first.retire()  # no request running on it: stops what it still owns, not what second took
    assert first.ledger is not None and second.ledger is not None
    assert second.ledger.writer is first.ledger.writer
    assert second.ledger.writer.running  # the old runtime did not stop what the new one took over
    await second.stop()  # the kept ledger is stopped by its new owner
    assert not second.ledger.writer.running


def test_unchanged_deployments_need_the_same_deployment_and_provider(tmp_path: Path) -> None:
    old = build_config(_config(tmp_path))
    new = build_config(_config(tmp_path, timeout=300))
    assert unchanged_deployments(old, new) == {"a"}
    changed_provider = _config(tmp_path)
    changed_provider["providers"]["m"]["wire"] = "anthropic"
    assert unchanged_deployments(old, build_config(changed_provider)) == set()


async def test_no_encoding_loads_at_start_and_a_token_reservation_waits_for_its_own(tmp_path: Path) -> None:
    """Nothing loads a tokenizer encoding at start, even where counted tokens decide admission
    (a route with a tpm limit): the first request that reserves tokens waits for its model's
    encoding (gpt-4o: ``o200k_base``) and only that one, so its reservation is exact; a context
    window no request comes near never counts at all."""
    config = _config(tmp_path)
    config["deployments"]["a"] = {"provider": "m", "model": "gpt-4o", "context_window": 100_000}
    config["routes"]["r"] = {"deployments": ["a"], "limits": {"tpm": 100_000}}
    config["routes"]["w"] = {"deployments": ["a"]}
    runtime = Runtime(build_config(config), Process({}))
    await runtime.start()
    try:
        assert runtime.process.tokenizers.loaded() == []
        await _ask(runtime, "w")  # a window the request is far from, no tpm: nothing counted
        assert runtime.process.tokenizers.loaded() == []
        await _ask(runtime, "r")
        assert runtime.process.tokenizers.loaded() == ["o200k_base"]
    finally:
        await runtime.stop()


async def _ask(runtime: Runtime, model: str) -> None:
    ctx = RequestContext("t")
    runtime.pipeline.begin(ctx)
    request = ChatRequest(model=model, messages=[Message("user", [TextPart("hello")])])
    try:
        await runtime.pipeline.chat(request, ctx)
    finally:
        runtime.pipeline.end(ctx, Outcome(request, 200))


def _semantic(tmp: Path, embed_model: str) -> dict[str, Any]:
    config = _config(tmp)
    config["deployments"]["vectors"] = {"provider": "m", "model": embed_model}
    config["routes"]["faq"] = {"deployments": ["a"], "cache": {"mode": "semantic"}}
    config["routes"]["embed"] = {"deployments": ["vectors"]}
    config["cache"] = {"embedder": {"model": "embed"}}
    return config


def test_a_semantic_index_is_kept_only_for_vectors_of_the_same_embedder(tmp_path: Path) -> None:
    """A reload keeps the semantic index (and the store) while the embeddings route is served by
    the same models; once its upstream model changes, the old vectors are not comparable: a new
    index, and the cache section is not kept."""
    process = Process({})
    first = Runtime(build_config(_semantic(tmp_path, "mock-embed")), process)
    assert first.semantic is not None and first.semantic.identity.startswith("route:")
    same = Runtime(build_config(_semantic(tmp_path, "mock-embed")), process, previous=first)
    assert "cache" in same.kept and same.semantic is first.semantic and same.cache_store is first.cache_store
    other = Runtime(build_config(_semantic(tmp_path, "mock-embed-large")), process, previous=first)
    assert "cache" not in other.kept and other.semantic is not None and other.semantic is not first.semantic
    assert other.semantic.identity != first.semantic.identity
