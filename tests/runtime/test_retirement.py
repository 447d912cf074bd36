"""Deployments whose model is being retired: warned at start-up and by check-config, counted down in /metrics."""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from breakwater.cli.main import main
from breakwater.core.config import build_config
from breakwater.core.retirement import Retirement
from breakwater.infra.clock import ManualClock
from breakwater.runtime.process import Process
from breakwater.runtime.runtime import Runtime

#: 2026-01-30 00:00 UTC
JAN_30 = datetime(2026, 1, 30, tzinfo=UTC).timestamp()
DAY = 86_400.0


def _config() -> dict[str, Any]:
    return {
        "access": {"enabled": False},
        "ledger": {"enabled": False},
        "providers": {"m": {"type": "mock"}, "google": {"type": "gemini", "api_key": "env:GEMINI_API_KEY"}},
        "deployments": {
            "soon": {"provider": "m", "model": "mock-gpt", "retires": "2026-03-01"},
            "later": {"provider": "m", "model": "mock-gpt", "retires": date(2027, 1, 1)},
            "plain": {"provider": "m", "model": "mock-gpt"},
            "flash": {"provider": "google", "model": "gemini-2.0-flash"},
        },
        "routes": {"r": {"deployments": ["soon", "later", "plain", "flash"]}},
    }


def _gauges(text: str, name: str) -> dict[str, float]:
    return {
        s.labels["deployment"]: s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == name
    }


def test_a_retirement_is_warned_about_from_90_days_ahead_and_after_the_date() -> None:
    """Far off: nothing; within 90 days: the date and the days left; past: retired, days ago."""
    retiring = Retirement("d", "gpt-4-0613", date(2026, 6, 6), "config")
    assert retiring.warning(datetime(2026, 1, 1, tzinfo=UTC).timestamp()) is None
    assert retiring.warning(datetime(2026, 3, 8, tzinfo=UTC).timestamp()) == (
        "deployment 'd' (model 'gpt-4-0613'): its model retires on 2026-06-06, in 90 days; move its routes to a "
        "replacement (docs/safe-change.md, 'a provider deprecates a model')"
    )
    assert retiring.warning(datetime(2026, 6, 9, 23, tzinfo=UTC).timestamp()) == (
        "deployment 'd' (model 'gpt-4-0613'): its model was retired on 2026-06-06 (3 days ago); its requests may fail"
    )
    undated = Retirement("d", "m", None, "price-list")
    assert undated.days_left(0) is None
    assert "marks this model deprecated" in (undated.warning(0) or "")


async def test_start_up_warns_and_metrics_count_down_by_the_injected_clock(caplog: pytest.LogCaptureFixture) -> None:
    """The runtime logs a WARNING per retiring deployment (config date within 90 days, or the price
    list's deprecated mark), and /metrics shows the days left, read from the clock at each scrape."""
    clock = ManualClock(wall=JAN_30)
    runtime = Runtime(build_config(_config()), Process({"GEMINI_API_KEY": "k"}, clock=clock))
    with caplog.at_level(logging.WARNING, logger="breakwater"):
        await runtime.start()
    try:
        runtime.commit()
        warnings = [
            r.getMessage() for r in caplog.records if "retire" in r.getMessage() or "deprecated" in r.getMessage()
        ]
        assert warnings == [
            "deployment 'soon' (model 'mock-gpt'): its model retires on 2026-03-01, in 30 days; move its routes to a "
            "replacement (docs/safe-change.md, 'a provider deprecates a model')",
            "deployment 'flash' (model 'gemini-2.0-flash'): the price list marks this model deprecated; plan its "
            "replacement (docs/safe-change.md, 'a provider deprecates a model')",
        ]
        assert runtime.metrics is not None
        text = runtime.metrics.render().decode()
        assert _gauges(text, "breakwater_deployment_retirement_days") == {"soon": 30, "later": 336}
        assert _gauges(text, "breakwater_deployment_deprecated") == {"soon": 1, "later": 1, "flash": 1}
        clock.wall += 40 * DAY
        text = runtime.metrics.render().decode()
        assert _gauges(text, "breakwater_deployment_retirement_days") == {"soon": -10, "later": 296}
    finally:
        await runtime.stop()


def test_check_config_names_a_retiring_deployment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """check-config accepts the file and prints the retirement warning under its OK line."""
    config = _config()
    today = datetime.now(tz=UTC).date()
    config["deployments"]["soon"]["retires"] = today.isoformat()
    config["deployments"]["later"]["retires"] = (today + timedelta(days=800)).isoformat()
    path = tmp_path / "gateway.yaml"
    path.write_text(yaml.safe_dump(config))
    monkeypatch.setenv("GEMINI_API_KEY", "k")
    assert main(["check-config", str(path)]) == 0
    out = capsys.readouterr().out
    assert "OK (2 providers, 4 deployments, 1 routes)" in out
    assert "  WARNING: deployment 'soon' (model 'mock-gpt'): its model retires on" in out
    assert "in 0 days" in out
    assert "  WARNING: deployment 'flash' (model 'gemini-2.0-flash'): the price list marks" in out
    assert "'later'" not in out
