"""``breakwater compare ROUTE``: the route's arms side by side from the ledger (table or JSON),
in config order with its control; exit 2 on bad arguments, 1 when the ledger cannot be read."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from breakwater.cli.main import main
from tests.observability.ledger.rows import sqlite_ledger_with
from tests.observability.ledger.test_compare import ROWS

WINDOW = ["--since", "2023-11-15", "--until", "2023-11-16"]


def _config(tmp_path: Path, ledger: Path) -> str:
    config: dict[str, Any] = {
        "providers": {"m": {"type": "mock"}},
        "deployments": {"d": {"provider": "m", "model": "mock-gpt"}},
        "routes": {
            "gpt": {"deployments": ["d"]},
            "chat": {
                "variants": {
                    "arms": {
                        "canary": {"deployments": ["d"], "weight": 1},
                        "control": {"route": "gpt", "weight": 99, "control": True},
                    }
                }
            },
        },
        "ledger": {"url": f"sqlite:///{ledger}"},
    }
    path = tmp_path / "gateway.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return str(path)


@pytest.fixture
def config(tmp_path: Path) -> str:
    """A config whose route ``chat`` has arms canary and control (marked), and a ledger holding
    the seeded comparison (``test_compare.ROWS``)."""
    path = tmp_path / "ledger.db"
    sqlite_ledger_with(path, ROWS)
    return _config(tmp_path, path)


def test_json(config: str, capsys: pytest.CaptureFixture[str]) -> None:
    """--json: arms in config order, the marked control, the canary's tested differences."""
    assert main(["compare", "chat", "--config", config, *WINDOW, "--json"]) == 0
    body = json.loads(capsys.readouterr().out)
    assert body["control"] == "control"
    assert [(v["variant"], v["requests"], v["control"]) for v in body["variants"]] == [
        ("canary", 100, False),
        ("control", 100, True),
        ("retired", 1, False),
    ]
    assert body["variants"][0]["vs_control"]["error_rate"]["significant"] is True
    assert "_moments" not in body["variants"][0]


def test_table(config: str, capsys: pytest.CaptureFixture[str]) -> None:
    """The table: one column per arm and one for each arm's difference from the control."""
    assert main(["compare", "chat", "--config", config, *WINDOW]) == 0
    out = capsys.readouterr().out
    assert "control (control)" in out and "canary vs control" in out
    assert "+18.00% (p=4.74e-05, significant)" in out
    assert "refusal rate" in out and "finish=length share" in out


def test_another_control(config: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["compare", "chat", "--config", config, *WINDOW, "--json", "--control", "canary"]) == 0
    body = json.loads(capsys.readouterr().out)
    assert body["control"] == "canary" and body["variants"][1]["vs_control"]["error_rate"]["difference"] < 0


@pytest.mark.parametrize(
    ("args", "message", "code"),
    [
        (["--since", "yesterday-ish"], "expected unix seconds", 2),
        (["--since", "2023-11-16", "--until", "2023-11-15"], "--since must be before --until", 2),
        ([*WINDOW, "--control", "nope"], "--control 'nope' is not an arm of 'chat'", 2),
    ],
)
def test_bad_arguments(
    config: str, capsys: pytest.CaptureFixture[str], args: list[str], message: str, code: int
) -> None:
    assert main(["compare", "chat", "--config", config, *args]) == code
    assert message in capsys.readouterr().err


def test_no_ledger(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A SQLite ledger that does not exist is an error naming the path, not an empty report."""
    assert main(["compare", "chat", "--config", _config(tmp_path, tmp_path / "missing.db")]) == 1
    assert "no ledger at" in capsys.readouterr().err
