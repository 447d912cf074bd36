"""``breakwater loadtest``: a gateway on loopback (in front of a mock server) driven open loop;
the counts in the report add up (timings are not asserted)."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from breakwater.cli.main import main
from breakwater.core.config import build_config
from breakwater.infra.mock.app import create_mock_app
from breakwater.server.app import create_app
from tests.observability.ledger.rows import START, make_row, sqlite_ledger_with
from tests.server.running import serve


def _gateway(mock_url: str, route: dict[str, Any] | None = None) -> Any:
    return create_app(
        build_config(
            {
                "access": {"enabled": False},
                "ledger": {"enabled": False},
                "providers": {"mock": {"type": "openai", "host": "mock", "base_url": f"{mock_url}/v1"}},
                "deployments": {"m": {"provider": "mock", "model": "mock-gpt"}},
                "routes": {"chat": {"deployments": ["m"], **(route or {})}},
            }
        ),
        environ={},
    )


@pytest.fixture(scope="module")
def gateway() -> Iterator[str]:
    with serve(create_mock_app()) as mock_url, serve(_gateway(mock_url)) as url:
        yield url


def _loadtest(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, Any]:
    assert main(["loadtest", *args, "--json"]) == 0
    report: dict[str, Any] = json.loads(capsys.readouterr().out)
    assert report["scheduled"] == report["sent"] + report["skipped"]
    assert report["sent"] == report["ok"] + report["errors"] + report["unfinished"]
    assert report["errors"] == sum(report["errors_by_class"].values())
    return report


def test_every_scheduled_request_is_counted_once(gateway: str, capsys: pytest.CaptureFixture[str]) -> None:
    """20/s for 1 s: 20 requests scheduled and answered, with latency percentiles; no stream, no TTFT."""
    report = _loadtest(capsys, gateway, "--route", "chat", "--rate", "20", "--duration", "1")
    assert (report["scheduled"], report["ok"], report["errors"], report["skipped"]) == (20, 20, 0, 0)
    assert report["latency_ms"]["p50"] <= report["latency_ms"]["p99"] <= report["latency_ms"]["max"]
    assert report["ttft_ms"] is None and report["route"] == "chat"


def test_streams_report_time_to_first_token_and_errors_are_classed(
    gateway: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """--stream gives TTFT figures; a body for an unknown route is an 'http 4xx' class, not a crash."""
    report = _loadtest(capsys, gateway, "--route", "chat", "--rate", "10", "--duration", "1", "--stream")
    assert report["ok"] == 10 and report["ttft_ms"] is not None
    body = tmp_path / "body.json"
    body.write_text(json.dumps({"messages": [{"role": "user", "content": "hi"}], "max_tokens": 5}))
    report = _loadtest(capsys, gateway, "--route", "nope", "--rate", "5", "--duration", "1", "--body", str(body))
    assert report["ok"] == 0 and list(report["errors_by_class"]) == ["http 404"] and report["errors"] == 5


def test_429s_and_requests_skipped_at_the_in_flight_bound(capsys: pytest.CaptureFixture[str]) -> None:
    """A route limited to 3 rpm answers the rest with 429 (counted apart); a slow upstream with at
    most 2 in flight makes the due requests beyond them skipped, not queued."""
    slow = [{"fault": "latency=400"}]
    with serve(create_mock_app(slow)) as mock_url, serve(_gateway(mock_url, {"limits": {"rpm": 3}})) as url:
        report = _loadtest(capsys, url, "--route", "chat", "--rate", "10", "--duration", "1", "--max-in-flight", "2")
    assert report["skipped"] > 0
    assert report["rate_limited"] == report["errors_by_class"].get("http 429", 0) > 0
    assert report["ok"] <= 3


def test_the_rate_from_the_ledger_is_a_multiple_of_its_peak(
    gateway: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """--from-ledger: 120 requests in the busiest minute is 2/s; x2.5 is 5/s, so 5 requests in 1 s."""
    ledger = tmp_path / "ledger.db"
    sqlite_ledger_with(ledger, [dataclasses.replace(make_row(i), ts=START + i * 0.4) for i in range(120)])
    args = ["--route", "chat", "--duration", "1", "--from-ledger", f"sqlite:///{ledger}", "--since", "2023-11-14"]
    report = _loadtest(capsys, gateway, *args, "--multiplier", "2.5")
    assert report["target_rate"] == 5.0 and report["scheduled"] == 5


def test_bad_arguments_exit_2(gateway: str, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """A zero rate, an empty ledger window or a missing body file: exit 2 with one line."""
    assert main(["loadtest", gateway, "--route", "chat", "--rate", "0"]) == 2
    assert "--rate must be positive" in capsys.readouterr().err
    assert main(["loadtest", gateway, "--route", "chat", "--from-ledger", f"sqlite:///{tmp_path}/none.db"]) == 2
    assert "no ledger at" in capsys.readouterr().err
    assert main(["loadtest", gateway, "--route", "chat", "--rate", "1", "--body", str(tmp_path / "x.json")]) == 2
    assert "cannot read" in capsys.readouterr().err
