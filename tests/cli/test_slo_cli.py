"""``breakwater slo``: the routes' objectives read from the ledger the config names (docs/slo.md)."""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import pytest
import yaml

from breakwater.cli.main import main
from breakwater.cli.slo import duration
from tests.observability.ledger.rows import make_row, sqlite_ledger_with


@pytest.fixture
def config(tmp_path: Path) -> str:
    """Route ``chat`` (90% available over a day) holds 20 requests two minutes ago, one
    failed upstream; route ``plain`` has no slo."""
    path = tmp_path / "ledger.db"
    recent = time.time() - 120  # the command reads the ledger at the wall clock's now
    rows = [
        dataclasses.replace(
            make_row(n),
            id=f"r{n}",
            ts=recent + n * 0.001,
            route="chat",
            status=503 if n == 0 else 200,
            error_class="Unavailable" if n == 0 else None,
            stream=False,
            shadow_of=None,
        )
        for n in range(20)
    ]
    sqlite_ledger_with(path, rows)
    raw = {
        "providers": {"m": {"type": "mock"}},
        "deployments": {"d": {"provider": "m", "model": "mock-gpt"}},
        "routes": {
            "chat": {"deployments": ["d"], "slo": {"availability": 0.9, "window_s": 86400}},
            "plain": {"deployments": ["d"]},
        },
        "ledger": {"url": f"sqlite:///{path}"},
    }
    file = tmp_path / "gateway.yaml"
    file.write_text(yaml.safe_dump(raw), encoding="utf-8")
    return str(file)


def test_json(config: str, capsys: pytest.CaptureFixture[str]) -> None:
    """One failure in 20 against a 10% allowance: half the budget left, burning at 0.5x, so it
    lasts two more half-days: a day."""
    assert main(["slo", "--config", config, "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)["data"]
    assert (row["route"], row["objective"], row["requests"], row["bad"]) == ("chat", "availability", 20, 1)
    assert row["current"] == pytest.approx(0.95)
    assert row["budget_remaining"] == pytest.approx(0.5)
    assert row["burn_rate"]["1h"] == pytest.approx(0.5)
    assert row["exhaustion_s"] == pytest.approx(86400)


def test_table(config: str, capsys: pytest.CaptureFixture[str]) -> None:
    """The table shows the objective, the current share, the budget left and the time to exhaustion."""
    assert main(["slo", "--config", config]) == 0
    out = capsys.readouterr().out
    for text in ("chat", "availability 90% / 1d", "95.000%", "50.000%", "0.50x", "1d"):
        assert text in out


def test_a_route_without_slo_is_an_error(config: str, capsys: pytest.CaptureFixture[str]) -> None:
    """Asking about a route with no slo exits 1 saying so, not an empty table."""
    assert main(["slo", "--config", config, "--route", "plain"]) == 1
    assert "no slo on route 'plain'" in capsys.readouterr().err


def test_durations() -> None:
    """Time to exhaustion reads in its two largest units."""
    assert [duration(s) for s in (None, 0, 59, 3600 * 26 + 61, 86400 * 28)] == [
        "never",
        "exhausted",
        "59s",
        "1d 2h",
        "28d",
    ]
