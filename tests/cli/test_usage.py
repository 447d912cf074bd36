"""``breakwater usage``: the ledger's usage per group as a table, JSON or CSV; exit 2 on bad arguments."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml

from breakwater.cli.main import main
from breakwater.observability.ledger.feedback import Feedback
from tests.observability.ledger.rows import make_row, sqlite_ledger_with

START = 1_700_006_400.0  # 2023-11-15T00:00:00Z


def _write_config(tmp_path: Path, ledger: dict[str, Any]) -> str:
    config = {
        "providers": {"m": {"type": "mock"}},
        "deployments": {"d": {"provider": "m", "model": "mock-gpt"}},
        "routes": {"mock": {"deployments": ["d"]}},
        "ledger": ledger,
    }
    path = tmp_path / "gateway.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return str(path)


@pytest.fixture
def config(tmp_path: Path) -> str:
    """A config whose SQLite ledger holds user-0 (1 request), user-1 (2) and user-2 (3), $0.01 each, tagged;
    user-2's last request has feedback (0.5)."""
    path = tmp_path / "ledger.db"
    rows = [
        dataclasses.replace(
            make_row(n),
            id=f"u{u}-{k}",
            ts=START + n,
            user=f"user-{u}",
            cost_usd=Decimal("0.01"),
            tags={"team": f"t{u % 2}"},
        )
        for n, (u, k) in enumerate((u, k) for u in range(3) for k in range(u + 1))
    ]
    sqlite_ledger_with(path, rows, [Feedback(rows[-1].request_id, START + 60, rows[-1].key_id, 0.5, None, {})])
    return _write_config(tmp_path, {"url": f"sqlite:///{path}"})


WINDOW = ["--since", "2023-11-15", "--until", "2023-11-16"]


def test_json(config: str, capsys: pytest.CaptureFixture[str]) -> None:
    """--format json prints the groups costliest first, with exact cost strings and the feedback."""
    assert main(["usage", "--config", config, *WINDOW, "--format", "json"]) == 0
    body = json.loads(capsys.readouterr().out)
    assert body["total"] == 3
    assert [(g["group"], g["requests"], g["cost_usd"], g["feedback"], g["feedback_score"]) for g in body["data"]] == [
        ("user-2", 3, "0.0300000000", 1, 0.5),
        ("user-1", 2, "0.0200000000", 0, None),
        ("user-0", 1, "0.0100000000", 0, None),
    ]


def test_csv_by_tag(config: str, capsys: pytest.CaptureFixture[str]) -> None:
    """--format csv --by tag:team prints a header and one line per tag value."""
    assert main(["usage", "--config", config, *WINDOW, "--by", "tag:team", "--format", "csv"]) == 0
    lines = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert {line["tag:team"]: line["requests"] for line in lines} == {"t0": "4", "t1": "2"}
    # what routers saved, per tag: rows n of users 0 and 2 are t0 (n = 0, 3, 4, 5), user 1's t1 (n = 1, 2)
    routed = {t: sum((make_row(n).routing_saved_usd or Decimal(0) for n in ns), Decimal(0)) for t, ns in
              (("t0", (0, 3, 4, 5)), ("t1", (1, 2)))}  # fmt: skip
    assert any(routed.values())
    assert {line["tag:team"]: Decimal(line["routing_saved_usd"]) for line in lines} == routed


def test_table(config: str, capsys: pytest.CaptureFixture[str]) -> None:
    """The default output is a table naming each group, with the limit applied."""
    assert main(["usage", "--config", config, *WINDOW, "--limit", "2"]) == 0
    out = capsys.readouterr().out
    assert "user-2" in out and "user-1" in out and "user-0" not in out
    assert "2 of 3" in out


@pytest.mark.parametrize(
    "args",
    [
        ["--by", "colour"],
        ["--by", "tag:"],
        ["--since", "yesterday"],
        ["--limit", "0"],
        ["--since", "1h", "--until", "2h"],
    ],
)
def test_bad_arguments_exit_2(config: str, capsys: pytest.CaptureFixture[str], args: list[str]) -> None:
    """A bad --by, --since, --until or --limit exits 2 with a message naming the problem."""
    assert main(["usage", "--config", config, *args]) == 2
    assert "error" in capsys.readouterr().err


def test_disabled_ledger_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A config with the ledger disabled has no usage to read: exit 1, saying so."""
    config = _write_config(tmp_path, {"enabled": False})
    assert main(["usage", "--config", config]) == 1
    assert "disabled" in capsys.readouterr().err


def test_unset_ledger_url_variable_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """ledger.url: env:NAME with NAME unset exits 1 naming the variable."""
    config = _write_config(tmp_path, {"url": "env:BW_TEST_LEDGER_URL_UNSET"})
    assert main(["usage", "--config", config]) == 1
    assert "BW_TEST_LEDGER_URL_UNSET" in capsys.readouterr().err
