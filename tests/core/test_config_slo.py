"""``routes.X.slo`` (core/config/slo.py): what is accepted, and what the ledger must allow."""

from __future__ import annotations

from typing import Any

import pytest

from breakwater.core.config import ConfigError, build_config


def _config(slo: dict[str, Any], ledger: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "providers": {"m": {"type": "mock"}},
        "deployments": {"d": {"provider": "m", "model": "mock-gpt"}},
        "routes": {"chat": {"deployments": ["d"], "slo": slo}},
        **({} if ledger is None else {"ledger": ledger}),
    }


def _problems(raw: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        build_config(raw)
    return [f"{p.path}: {p.message}" for p in caught.value.problems]


def test_every_objective_is_accepted_with_a_28_day_default_window() -> None:
    """Availability, latency, ttft and refusal rate together; the window defaults to 28 days."""
    config = build_config(
        _config(
            {
                "availability": 0.999,
                "latency": {"threshold_ms": 2000, "target": 0.95},
                "ttft": {"threshold_ms": 500, "target": 0.99},
                "refusal_rate": 0.02,
            }
        )
    )
    slo = config.routes["chat"].slo
    assert slo is not None and slo.window_s == 28 * 86400 and slo.latency is not None
    assert slo.latency.threshold_ms == 2000


def test_an_slo_without_objectives_or_with_a_target_of_one_is_refused() -> None:
    """An slo must name an objective, and a target of 1 leaves no budget at all."""
    assert any("at least one objective" in p for p in _problems(_config({"window_s": 86400})))
    assert any(p.startswith("routes.chat.slo.availability") for p in _problems(_config({"availability": 1})))


def test_the_ledger_must_be_on_and_keep_the_whole_window() -> None:
    """The budget is counted from the ledger: off, or keeping rows for less than the window, is a problem."""
    off = _problems(_config({"availability": 0.99}, {"enabled": False}))
    assert off == ["routes.chat.slo: an slo is measured from the ledger: ledger.enabled is false"]
    short = _problems(_config({"availability": 0.99}, {"retention_days": 7}))
    assert short and short[0].startswith("routes.chat.slo.window_s: the window (28 days) is longer than")
    build_config(_config({"availability": 0.99, "window_s": 7 * 86400}, {"retention_days": 7}))
    build_config(_config({"availability": 0.99}, {"retention_days": None}))


def test_the_docs_example_validates() -> None:
    """docs/slo.md's example is a valid slo with the figures the page states."""
    import re
    from pathlib import Path

    import yaml

    from breakwater.core.config.slo import RouteSlo

    doc = (Path(__file__).resolve().parents[2] / "docs" / "slo.md").read_text()
    (block,) = re.findall(r"```yaml\n(.*?)```", doc, flags=re.DOTALL)
    slo = RouteSlo.model_validate(yaml.safe_load(block)["routes"]["chat"]["slo"])
    assert slo.window_s == 28 * 86400 and slo.availability == 0.999 and slo.refusal_rate == 0.02
