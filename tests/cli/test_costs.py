"""``breakwater costs whatif`` and ``selfhost`` on a fixture ledger, every figure checked by hand.

The what-if ledger is one day (so a month is 30 of them) of priced deployments whose prices the
config sets (USD per million tokens), so the figures do not move with the price list:

- ``chat`` on ``d-big`` (input 2, cached input 0.5, output 8): two requests of 1,000,000 input
  tokens (200,000 of them cache reads) and 100,000 output tokens: 1.6 + 0.1 + 0.8 = $2.50 each;
  one of them tagged ``batchable=yes``;
- ``summaries`` on ``d-small`` (input 0.5, output 2): 2,000,000 in, 500,000 out: 1.0 + 1.0 = $2.00;
- ``local`` on a self-hosted server with no price: unpriced;
- a cache hit and a request that never reached a deployment: left out.

So the day cost $7.00 and a month $210.00.
"""

from __future__ import annotations

import dataclasses
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml

from breakwater.cli.main import main
from breakwater.observability.ledger import LedgerRow
from tests.observability.ledger.rows import START, make_row, sqlite_ledger_with

DAY = ["--since", "2023-11-15", "--until", "2023-11-16"]
HOUR = ["--since", str(START), "--until", str(START + 3600)]


def _row(n: int, route: str, deployment: str, **fields: Any) -> LedgerRow:
    base = dataclasses.replace(
        make_row(0),
        id=f"c{n}",
        request_id=f"req-c{n}",
        ts=START + 60 * n,
        route=route,
        deployment=deployment,
        provider="oa",
        upstream_model=deployment.removeprefix("d-") + "-model",
        tags={},
        cache=None,
        cached_input_tokens=0,
        cache_write_tokens=0,
        reasoning_tokens=0,
    )
    return dataclasses.replace(base, **fields)


def _config(tmp_path: Path, rows: list[LedgerRow]) -> str:
    path = tmp_path / "ledger.db"
    sqlite_ledger_with(path, rows)
    config = {
        "providers": {
            "oa": {"type": "openai", "host": "openai", "api_key": "env:OPENAI_API_KEY"},
            "vllm": {"type": "openai", "base_url": "http://127.0.0.1:9/v1"},
        },
        "deployments": {
            "d-big": {"provider": "oa", "model": "big-model", "price": {"input_per_mtok": "2", "output_per_mtok": "8", "cached_input_per_mtok": "0.5"}},
            "d-small": {"provider": "oa", "model": "small-model", "price": {"input_per_mtok": "0.5", "output_per_mtok": "2"}},
            "d-local": {"provider": "vllm", "model": "local-model"},
        },
        "routes": {"chat": {"deployments": ["d-big"]}, "summaries": {"deployments": ["d-small"]}, "local": {"deployments": ["d-local"]}},
        "ledger": {"url": f"sqlite:///{path}"},
    }  # fmt: skip
    file = tmp_path / "gateway.yaml"
    file.write_text(yaml.safe_dump(config), encoding="utf-8")
    return str(file)


@pytest.fixture
def day(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """The what-if day (see the module docstring)."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    big = {"input_tokens": 1_000_000, "cached_input_tokens": 200_000, "output_tokens": 100_000}
    rows = [
        _row(1, "chat", "d-big", **big, cost_usd=Decimal("2.5"), tags={"batchable": "yes"}),
        _row(2, "chat", "d-big", **big, cost_usd=Decimal("2.5")),
        _row(3, "summaries", "d-small", input_tokens=2_000_000, output_tokens=500_000, cost_usd=Decimal("2")),
        _row(4, "local", "d-local", provider="vllm", input_tokens=1000, output_tokens=1000, cost_usd=None),
        _row(5, "chat", "d-big", input_tokens=0, output_tokens=0, cost_usd=Decimal(0), cache="hit"),
        _row(6, "chat", "", input_tokens=0, output_tokens=0, cost_usd=None, status=401),
    ]
    return _config(tmp_path, rows)


def _whatif(config: str, capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, Any]:
    assert main(["costs", "whatif", "--config", config, *DAY, "--json", *args]) == 0
    body: dict[str, Any] = json.loads(capsys.readouterr().out)
    return body


def _figures(scenario: dict[str, Any]) -> tuple[str, str, str]:
    return scenario["monthly_current_usd"], scenario["monthly_scenario_usd"], scenario["monthly_difference_usd"]


def test_another_models_prices(day: str, capsys: pytest.CaptureFixture[str]) -> None:
    """Priced as d-small: chat's two requests cost 1,000,000 x 0.5 + 100,000 x 2 = $0.70 each (no
    cached rate: cache reads at the input rate), summaries stays $2.00, the unpriced one is left
    and counted: $3.40 a day against $7.00, so $102 a month against $210."""
    body = _whatif(day, capsys, "--price-as", "d-small")
    assert body["current_monthly_usd"] == "210.000000"
    [s] = body["scenarios"]
    assert _figures(s) == ("210.000000", "102.000000", "-108.000000")
    assert (s["requests"], s["unpriced_requests"], s["scope"]) == (4, 1, "all traffic")
    assert s["sources"] == ["deployment d-small's configured price"]


def test_an_answer_cache_hit_rate_on_a_route(day: str, capsys: pytest.CaptureFixture[str]) -> None:
    """25% of chat's answers from the cache: $5.00 a day becomes $3.75; a month $150 -> $112.50."""
    [s] = _whatif(day, capsys, "--cache-hit-rate", "0.25", "--route", "chat")["scenarios"]
    assert _figures(s) == ("150.000000", "112.500000", "-37.500000") and s["scope"] == "route chat"


def test_a_prompt_cache_share(day: str, capsys: pytest.CaptureFixture[str]) -> None:
    """Half of chat's 1,600,000 uncached input tokens read from the cache save 800,000 x (2 - 0.5)
    = $1.20 a day: $3.80 instead of $5.00; a month $150 -> $114."""
    [s] = _whatif(day, capsys, "--prompt-cache-share", "0.5", "--route", "chat")["scenarios"]
    assert _figures(s) == ("150.000000", "114.000000", "-36.000000")


def test_batch_for_a_tag_says_where_the_discount_comes_from(day: str, capsys: pytest.CaptureFixture[str]) -> None:
    """The one request tagged batchable=yes, on OpenAI: half price, $2.50 -> $1.25; a month $75 -> $37.50."""
    [s] = _whatif(day, capsys, "--batch-tag", "batchable=yes")["scenarios"]
    assert _figures(s) == ("75.000000", "37.500000", "-37.500000")
    assert s["requests"] == 1 and s["scope"] == "tag batchable=yes"
    assert s["sources"] == ["OpenAI Batch API: 50% of standard rates"]


def test_a_routing_share_moved(day: str, capsys: pytest.CaptureFixture[str]) -> None:
    """Half of chat moved to d-small: half of $5.00 as recorded plus half of $1.40 = $3.20; a month $150 -> $96."""
    [s] = _whatif(day, capsys, "--move", "0.5:d-small", "--route", "chat")["scenarios"]
    assert _figures(s) == ("150.000000", "96.000000", "-54.000000")


def test_several_scenarios_in_one_table(day: str, capsys: pytest.CaptureFixture[str]) -> None:
    """The table lists each scenario with its monthly figures and where its prices come from."""
    assert (
        main(["costs", "whatif", "--config", day, *DAY, "--cache-hit-rate", "0.25", "--batch-tag", "batchable=yes"])
        == 0
    )
    out = capsys.readouterr().out
    assert "answer cache hit rate 25%" in out and "-37.50" in out and "OpenAI Batch API" in out and "210.00" in out


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["--cache-hit-rate", "1.5"],
        ["--move", "0.5"],
        ["--batch-tag", "batchable"],
        ["--price-as", "nowhere/nothing"],
        ["--cache-hit-rate", "0.1", "--since", "2023-11-16", "--until", "2023-11-15"],
    ],
)
def test_bad_scenarios_exit_2(day: str, args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    """No scenario, a share out of range, a malformed option, an unpriced target, an empty window: exit 2, said why."""
    window = [] if "--since" in args else DAY
    assert main(["costs", "whatif", "--config", day, *window, *args]) == 2
    assert "error" in capsys.readouterr().err


@pytest.fixture
def hour(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """An hour: three requests of 30,000 + 6,000 tokens in the first minute, one of 12,000 in the
    tenth, $0.25 each; and a request of another route, left out with --route chat."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    rows = [
        *(_row(n, "chat", "d-big", ts=START + n, input_tokens=30_000, output_tokens=6_000, cost_usd=Decimal("0.25")) for n in range(3)),
        _row(3, "chat", "d-big", ts=START + 600, input_tokens=12_000, output_tokens=0, cost_usd=Decimal("0.25")),
        _row(4, "summaries", "d-small", ts=START + 5, input_tokens=900_000, output_tokens=0, cost_usd=Decimal(9)),
    ]  # fmt: skip
    return _config(tmp_path, rows)


def test_selfhost_break_even(hour: str, capsys: pytest.CaptureFixture[str]) -> None:
    """120,000 tokens in the hour (33.3/s); the busiest minute 108,000 (1,800/s); at 500 tokens/s a
    GPU that is ceil(3.6) = 4 GPUs, x $2/h x 720 h = $5,760 a month, against $1/h of API = $720.
    The API costs $1 / 120,000 tokens = $8.33 a million, so the break-even is 5,760 / 8.33e-6 =
    691,200,000 tokens a month, eight times the 86,400,000 now; the fleet would be 1.7% busy."""
    args = ["costs", "selfhost", "--config", hour, *HOUR, "--route", "chat", "--json"]
    assert main([*args, "--gpu-hour-usd", "2", "--tokens-per-gpu-s", "500"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert (r["tokens"], r["peak_tps"], r["gpus"]) == (120_000, 1800.0, 4)
    assert r["average_tps"] == pytest.approx(33.333, abs=1e-3)
    assert (r["selfhost_monthly_usd"], r["api_monthly_usd"]) == ("5760.000000", "720.000000")
    assert r["api_per_mtok_usd"] == "8.333333"
    assert Decimal(r["breakeven_tokens_per_month"]) == Decimal(691_200_000)
    assert r["utilisation"] == pytest.approx(33.333 / 2000, rel=1e-4)
    assert r["selfhost_cheaper"] is False


def test_selfhost_table_and_bad_arguments(hour: str, capsys: pytest.CaptureFixture[str]) -> None:
    """The table names the verdict; a negative price or a bucket longer than the window exits 2."""
    base = ["costs", "selfhost", "--config", hour, *HOUR]
    assert main([*base, "--gpu-hour-usd", "0.01", "--tokens-per-gpu-s", "100000"]) == 0
    out = capsys.readouterr().out
    assert "GPUs needed" in out and "self-hosting" in out
    assert main([*base, "--gpu-hour-usd", "-1", "--tokens-per-gpu-s", "500"]) == 2
    assert main([*base, "--gpu-hour-usd", "2", "--tokens-per-gpu-s", "500", "--bucket", "2h"]) == 2
