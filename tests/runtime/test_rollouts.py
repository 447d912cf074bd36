"""Automatic rollback and ramps of a canary, end to end: a gateway running from stored
configuration versions, a route with variants and guards, the mock provider as the arms'
upstreams. A flaky canary is rolled back (a new version with its weight 0, an alert), a healthy
one is not, a tiny sample never trips, and a healthy canary with a ramp advances a step.

The guards' check runs on its own schedule in the gateway (``check_s``: 1 s here); the tests
wait, by polling, for a number of checks or for the version to move.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
import yaml

from breakwater.infra.clock import SystemRandom
from breakwater.runtime.rollouts import with_weights
from breakwater.runtime.stored_config import apply, versions_store
from breakwater.server.app import BreakwaterApp, create_stored_app
from tests.polling import until
from tests.server.running import serve

ENV: dict[str, str] = {}


def _config(tmp: Path, *, canary: str = "shaky", guards: dict[str, Any] | None = None, ramp: Any = None) -> str:
    variants: dict[str, Any] = {
        "sticky": "header:x-subject",
        "arms": {"control": {"route": "stable", "weight": 50}, "canary": {"route": canary, "weight": 50}},
        "guards": {"min_requests": 20, "check_s": 1, "max_latency_ratio": None, **(guards or {})},
    }
    if ramp is not None:
        variants["ramp"] = ramp
    config = {
        "access": {"enabled": False},
        "ledger": {"url": f"sqlite:///{tmp}/ledger.db", "spool_path": str(tmp / "spool"), "flush_interval_s": 0.05},
        "providers": {
            "m": {"type": "mock", "answers": [{"text": "Paris.", "matches": "capital"}]},
            "flaky": {"type": "mock", "faults": [{"fault": "status=500", "rate": 0.6}]},
            "liar": {"type": "mock", "answers": [{"text": "Lyon.", "matches": "capital"}]},
        },
        "deployments": {
            "good": {"provider": "m", "model": "mock-gpt"},
            "bad": {"provider": "flaky", "model": "mock-gpt"},
            "lies": {"provider": "liar", "model": "mock-gpt"},
        },
        "routes": {
            "stable": {"deployments": ["good"]},
            "fine": {"deployments": ["good"]},
            "shaky": {"deployments": ["bad"], "retry": {"max_attempts": 1}},
            "wrong": {"deployments": ["lies"]},
            "chat": {"variants": variants},
        },
    }
    return yaml.safe_dump(config, sort_keys=False)


def _apply(url: str, text: str) -> None:
    async def run() -> None:
        store = versions_store(url, ENV)
        await store.open()
        try:
            await apply(store, text, author="test", message="canary on", now=1.0, environ=ENV)
        finally:
            await store.close()

    asyncio.run(run())


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Any]:
    """Start a gateway from a store holding ``text`` as version 1; yields (url, app, store url)."""
    stack: list[Any] = []

    def go(text: str) -> tuple[str, BreakwaterApp, str]:
        store = f"sqlite:///{tmp_path}/keys.db"
        _apply(store, text)
        app = create_stored_app(store, environ=ENV, rng=SystemRandom(7))
        served = serve(app)
        url = served.__enter__()
        stack.append(served)
        return url, app, store

    yield go
    for served in stack:
        served.__exit__(None, None, None)


def _send(url: str, n: int, content: str = "hi") -> list[int]:
    statuses = []
    for i in range(n):
        r = httpx.post(
            f"{url}/v1/chat/completions",
            json={"model": "chat", "messages": [{"role": "user", "content": content}]},
            headers={"x-subject": f"user-{i}"},
            timeout=10,
        )
        statuses.append(r.status_code)
    return statuses


def _version(url: str) -> int:
    value: int = httpx.get(f"{url}/readyz", timeout=5).json()["config"]["version"]
    return value


def test_a_flaky_canary_is_rolled_back(start: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    url, app, _ = start(_config(tmp_path))
    caplog.set_level(logging.WARNING, logger="breakwater.alerts")
    statuses = _send(url, 80)
    assert any(s >= 500 for s in statuses)  # the canary fails some
    until(lambda: _version(url) == 2, 20, "the guard rolls the canary back (version 2)")
    watch = app.rollouts
    assert watch is not None and watch.actions[-1].kind == "rollback"
    history = httpx.get(f"{url}/admin/config/versions", timeout=5).json()["data"]
    newest = history[0]
    assert (newest["action"], newest["author"]) == ("auto-rollback", "breakwater:guard")
    assert "route chat: canary canary weight 50 -> 0: error_rate" in newest["message"]
    text = httpx.get(f"{url}/admin/config/versions/2", timeout=5).json()["text"]
    arms = yaml.safe_load(text)["routes"]["chat"]["variants"]["arms"]
    assert (arms["canary"]["weight"], arms["control"]["weight"]) == (0, 50)
    assert set(_send(url, 20)) == {200}  # everyone on the control now
    until(lambda: "canary_rollback" in caplog.text, 10, "the alert is logged")


def test_a_healthy_canary_is_not_rolled_back(start: Any, tmp_path: Path) -> None:
    url, app, _ = start(_config(tmp_path, canary="fine"))
    assert set(_send(url, 80)) == {200}
    watch = app.rollouts
    assert watch is not None
    seen = watch.checks
    until(lambda: watch.checks >= seen + 3, 20, "three more checks ran over the requests")
    assert _version(url) == 1 and watch.actions == []


def test_a_tiny_sample_does_not_trip(start: Any, tmp_path: Path) -> None:
    url, app, _ = start(_config(tmp_path, guards={"min_requests": 20}))
    _send(url, 12)  # about 6 a side: under min_requests
    watch = app.rollouts
    assert watch is not None
    seen = watch.checks
    until(lambda: watch.checks >= seen + 3, 20, "three more checks ran")
    assert _version(url) == 1 and watch.actions == []


def test_a_healthy_canary_ramps_a_step(start: Any, tmp_path: Path) -> None:
    text = _config(tmp_path, canary="fine", ramp={"steps": [50, 80, 100], "hold_s": 1})
    url, _, _ = start(text)
    assert set(_send(url, 60)) == {200}
    second = _second(url)
    assert second["action"] == "auto-ramp" and "ramped to 80%" in second["message"]
    arms = yaml.safe_load(httpx.get(f"{url}/admin/config/versions/2", timeout=5).json()["text"])["routes"]["chat"][
        "variants"
    ]["arms"]
    assert (arms["canary"]["weight"], arms["control"]["weight"]) == (80, 20)


SUITE = """
prompts: ["What is the capital of {{ country }}?"]
tests:
  - vars: {country: France}
    assert: [{type: icontains, value: paris}]
"""


def _gated(tmp: Path, canary: str, gate: dict[str, Any]) -> str:
    (tmp / "capitals.yaml").write_text(SUITE)
    return _config(tmp, canary=canary, ramp={"steps": [50, 80, 100], "hold_s": 1, "gate": gate})


def _newest(url: str) -> dict[str, Any]:
    newest: dict[str, Any] = httpx.get(f"{url}/admin/config/versions", timeout=5).json()["data"][0]
    return newest


def _second(url: str) -> dict[str, Any]:
    """Version 2 of the config, the first change after start (a loaded machine may have ramped
    again, a step later, by the time the test looks)."""
    until(lambda: _version(url) >= 2, 20, "the rollout changes the config (version 2)")
    versions = httpx.get(f"{url}/admin/config/versions", timeout=5).json()["data"]
    second: dict[str, Any] = next(v for v in versions if v["number"] == 2)
    return second


def test_a_canary_that_fails_its_eval_gate_is_rolled_back_instead_of_ramped(start: Any, tmp_path: Path) -> None:
    url, app, _ = start(_gated(tmp_path, "wrong", {"suite": str(tmp_path / "capitals.yaml")}))
    assert set(_send(url, 60)) == {200}  # its guards hold: it answers, just wrongly
    until(lambda: _version(url) == 2, 20, "the gate rolls the canary back (version 2)")
    newest = _newest(url)
    assert newest["action"] == "auto-rollback"
    assert "canary canary weight 50 -> 0: eval suite capitals.yaml: pass rate 0.000" in newest["message"]
    assert "under the control's 1.000" in newest["message"]
    assert app.rollouts.actions[-1].kind == "rollback"


def test_a_canary_that_passes_its_eval_gate_ramps(start: Any, tmp_path: Path) -> None:
    url, _, _ = start(_gated(tmp_path, "fine", {"suite": "capitals.yaml", "min_pass_rate": 0.9}))
    assert set(_send(url, 60)) == {200}
    second = _second(url)
    assert second["action"] == "auto-ramp"
    assert (
        "ramped to 80% (its guards held; eval suite capitals.yaml: pass rate 1.000 (control 1.000))"
        in (second["message"])
    )

    def gate_rows() -> list[tuple[str, str]]:
        with sqlite3.connect(tmp_path / "ledger.db") as db:
            found = db.execute("SELECT variant, tags FROM breakwater_ledger WHERE user = 'breakwater:eval-gate'")
            return sorted(found.fetchall())

    until(lambda: len(gate_rows()) >= 2, 10, "the gate's two calls are in the ledger")
    variants = [variant for variant, _ in gate_rows()]  # (two more a step later, if it ramped again)
    assert variants in (["canary", "control"], ["canary", "canary", "control", "control"])


def test_a_gate_whose_suite_cannot_run_holds_the_ramp(
    start: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    url, app, _ = start(_gated(tmp_path, "fine", {"suite": "capitals.yaml"}))
    (tmp_path / "capitals.yaml").write_text("prompts: [hi]\ntests: [{assert: [{type: javascript}]}]\n")
    assert set(_send(url, 60)) == {200}
    watch = app.rollouts
    until(lambda: "its eval gate cannot run" in caplog.text, 20, "the broken gate is alerted")
    seen = watch.checks
    until(lambda: watch.checks >= seen + 2, 20, "two more checks ran")
    assert _version(url) == 1 and caplog.text.count("its eval gate cannot run") == 2  # the log line and the alert


def test_a_canary_whose_live_answers_fail_their_drift_asserts_is_rolled_back(start: Any, tmp_path: Path) -> None:
    config = yaml.safe_load(_config(tmp_path, canary="wrong", guards={"max_eval_fail_increase": 0.1}))
    drift = {"share": 1.0, "asserts": [{"type": "icontains", "value": "paris"}]}
    for arm_route in ("stable", "wrong"):
        config["routes"][arm_route]["drift"] = drift
    url, _, _ = start(yaml.safe_dump(config, sort_keys=False))
    assert set(_send(url, 60, "What is the capital of France?")) == {200}
    until(lambda: _version(url) == 2, 20, "the eval guard rolls the canary back (version 2)")
    newest = _newest(url)
    assert newest["action"] == "auto-rollback"
    assert "eval_fail_rate: canary 1 vs control 0, above the allowed +0.1" in newest["message"]


def test_check_config_reads_each_gate_s_suite(tmp_path: Path) -> None:
    from breakwater.core.config import parse_config
    from breakwater.runtime.eval_gate import check_gates

    (tmp_path / "judged.yaml").write_text(
        "prompts: [hi]\ndefaultTest: {options: {provider: 'openai:chat:gpt-4o'}}\n"
        "tests: [{assert: [{type: llm-rubric, value: polite}]}]\n"
    )
    problems = []
    for suite in ("missing.yaml", "judged.yaml"):
        text = _gated(tmp_path, "fine", {"suite": str(tmp_path / suite)})
        problems += [(p.path, p.message) for p in check_gates(parse_config(text))]
    path = "routes.chat.variants.ramp.gate.suite"
    assert [p for p, _ in problems] == [path, path]
    assert "missing.yaml: cannot read the suite" in problems[0][1]
    assert "the gate's judge must be a route of this config: openai:chat:gpt-4o" in problems[1][1]


def test_with_weights_changes_only_the_arms_named() -> None:
    text = "routes:\n  chat:\n    variants:\n      arms:\n        a: {route: x, weight: 99}\n        b: {route: y, weight: 1}\n"
    changed = yaml.safe_load(with_weights(text, "chat", {"b": 0.0}))
    assert changed["routes"]["chat"]["variants"]["arms"] == {
        "a": {"route": "x", "weight": 99},
        "b": {"route": "y", "weight": 0},
    }


def test_a_gateway_serving_a_file_alerts_once_without_acting(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from breakwater.core.config import parse_config
    from breakwater.server.app import create_app

    caplog.set_level(logging.WARNING, logger="breakwater.alerts")
    app = create_app(parse_config(_config(tmp_path)), environ=ENV, rng=SystemRandom(7))
    with serve(app) as url:
        _send(url, 80)
        watch = app.rollouts
        until(lambda: any(a.kind == "alert-only" for a in watch.actions), 20, "the guard trips")
        seen = watch.checks
        until(lambda: watch.checks >= seen + 2, 20, "two more checks ran")
    assert caplog.text.count("NOT rolled back: the gateway runs from a config file") == 1
    assert app.runtime.version is None and app.config.routes["chat"].variants.arms["canary"].weight == 50  # type: ignore[union-attr]
