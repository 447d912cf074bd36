"""Runtimes built from a config and from a previous runtime: what is kept, who stops what."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from breakwater.core.config import build_config
from breakwater.runtime.runtime import Process, Runtime, unchanged_deployments


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
    assert sorted(second.kept) == ["access", "ledger", "tracer"]  # alerts changed: rebuilt
    assert second.ledger is first.ledger and second.access is first.access
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


async def test_encodings_load_at_start_only_where_counted_tokens_decide_admission(tmp_path: Path) -> None:
    """With nothing that reserves counted tokens (access off, no tpm limit), no encoding loads at
    start, context windows included (they count by bytes until theirs loads on first use). A
    route with a tpm limit needs exact reservations from its first request: every configured
    deployment's encoding loads at start."""
    windowed = _config(tmp_path)
    windowed["deployments"]["a"] = {"provider": "m", "model": "gpt-4o", "context_window": 1000}
    assert Runtime(build_config(windowed), Process({})).exact_encodings() == []
    windowed["routes"]["r"]["limits"] = {"tpm": 100000}
    runtime = Runtime(build_config(windowed), Process({}))
    assert runtime.exact_encodings() == ["cl100k_base", "o200k_base"]  # gpt-4o, and mock-gpt
    await runtime.start()
    try:
        assert runtime.process.tokenizers.loaded() == ["cl100k_base", "o200k_base"]
    finally:
        await runtime.stop()
