"""``breakwater replay``: requests captured by a gateway (the official OpenAI SDK against it, on
loopback) are sent again to a candidate route that answers some prompts differently, and the
report's agreement, pass rates, cost and latency deltas and worst cases are what those answers
make them. Run on a SQLite ledger and on a PostgreSQL one (a schema of the test's own; skipped
when PostgreSQL is absent, a failure under ``BREAKWATER_REQUIRE_SERVICES=1``)."""

from __future__ import annotations

import asyncio
import dataclasses
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest

from breakwater.cli.main import main
from breakwater.cli.replay import _print
from breakwater.core.config.parse import parse_config
from breakwater.observability.ledger import LedgerRow
from breakwater.observability.ledger.replay import Case, report
from breakwater.observability.ledger.service import store_for
from breakwater.server.app import create_app
from tests.observability.ledger.rows import make_row
from tests.server.running import openai_sdk, serve

from .conftest import PG_DSN

CONFIG = """
access: {{enabled: false}}
ledger: {{url: '{url}', spool_path: '{spool}', flush_interval_s: 0.05}}
providers:
  m:
    type: mock
    answers:
      - {{model: judge-1, matches: 'Submission:\\s*Sorry', text: '(D)'}}
      - {{model: judge-1, text: '(C)'}}
      - {{model: cand-1, matches: weather, text: 'Sorry, I cannot say.'}}
      - {{model: cand-1, matches: poem, text: 'Roses are red.'}}
      - {{matches: capital, text: 'Paris is the capital of France.'}}
      - {{matches: weather, text: 'It is sunny in Oslo today.'}}
      - {{matches: poem, text: 'Roses are red, violets are blue.'}}
  down: {{type: mock, faults: [{{fault: 'status=500'}}]}}
deployments:
  d-base: {{provider: m, model: base-1, price: {{input_per_mtok: 1.0, output_per_mtok: 2.0}}}}
  d-cand: {{provider: m, model: cand-1, price: {{input_per_mtok: 0.5, output_per_mtok: 1.0}}}}
  d-judge: {{provider: m, model: judge-1}}
  d-down: {{provider: down, model: down-1}}
routes:
  prod: {{deployments: [d-base], capture: {{enabled: true}}}}
  cand: {{deployments: [d-cand]}}
  judge: {{deployments: [d-judge]}}
  down: {{deployments: [d-down], retry: {{max_attempts: 1}}}}
"""

TOOL = {"type": "function", "function": {"name": "weather", "parameters": {"type": "object"}}}
SCHEMA = {"type": "json_schema", "json_schema": {"name": "city", "schema": {"type": "object"}}}
IMAGE = {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}


def _traffic(url: str) -> None:
    """The requests the gateway captures: five that can be replayed, three that cannot."""
    client = openai_sdk(url)
    ask = client.chat.completions.create

    def user(text: str) -> list[Any]:
        return [{"role": "user", "content": text}]

    ask(model="prod", messages=user("What is the capital of France?"))
    ask(model="prod", messages=user("What is the weather in Oslo?"))
    poem = [{"role": "system", "content": "You write short poems."}, *user("A poem about roses, please.")]
    ask(model="prod", messages=poem, temperature=0.2, seed=7, max_tokens=50)  # type: ignore[arg-type]
    for _ in ask(model="prod", messages=user("Name the capital, briefly."), stream=True):
        pass
    ask(model="prod", messages=user("The capital as JSON?"), response_format={"type": "json_object"})
    ask(model="prod", messages=user("What is the weather in Rome?"), tools=[TOOL])  # type: ignore[list-item]
    ask(model="prod", messages=user("Which capital?"), response_format=SCHEMA)  # type: ignore[arg-type]
    pictured = [{"role": "user", "content": [{"type": "text", "text": "What is this?"}, IMAGE]}]
    ask(model="prod", messages=pictured)  # type: ignore[arg-type]


async def _rows(url: str) -> list[LedgerRow]:
    store = store_for(url)
    await store.open()
    try:
        return await store.fetch()
    finally:
        await store.close()


def _uncaptured(url: str, rows: list[LedgerRow]) -> None:
    """Two rows of the route whose prompts were not captured (as a sample rate below 1 leaves them)."""

    async def write() -> None:
        store = store_for(url)
        await store.open()
        try:
            extra = [dataclasses.replace(rows[0], id=f"plain-{i}", prompt=None, response=None) for i in range(2)]
            await store.write(extra)
        finally:
            await store.close()

    asyncio.run(write())


@pytest.fixture(params=["sqlite", "postgres"])
def ledger_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'ledger.db'}"
    schema = request.getfixturevalue("pg_schema")
    return f"{PG_DSN}?search_path={schema}"


@pytest.fixture
def captured(ledger_url: str, tmp_path: Path) -> tuple[Path, str]:
    """A config file whose gateway has captured ``_traffic`` in its ledger (written and flushed)."""
    config = tmp_path / "gateway.yaml"
    config.write_text(CONFIG.format(url=ledger_url, spool=tmp_path / "ledger.spool"))
    with serve(create_app(parse_config(config.read_text()), environ={})) as url:
        _traffic(url)
    rows = asyncio.run(_rows(ledger_url))
    assert len(rows) == 8 and all(r.prompt is not None for r in rows)
    _uncaptured(ledger_url, rows)
    return config, ledger_url


def _replay(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, Any]]:
    code = main(["replay", "--route", "prod", "--since", "1h", "--json", *args])
    out = capsys.readouterr().out
    return code, orjson.loads(out) if out else {}


def test_replay_reports_agreement_pass_rates_cost_latency_and_worst_cases(
    captured: tuple[Path, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Against a candidate that answers the weather differently and the poem shorter: 5 of 8
    captured rows are replayed (tools, a schema and an image are skipped), agreement is 3/5 exact
    and similar, 4/5 by the judge; the candidate fails the assertion once where the logged answer
    passed; cost and latency are each side's; the weather case is the worst."""
    config, url = captured
    asserts = tmp_path / "asserts.yaml"
    asserts.write_text("- {type: not-icontains, value: sorry}\n")
    code, r = _replay(
        capsys, "--candidate", "cand", "--config", str(config), "--asserts", str(asserts), "--judge", "judge"
    )
    assert code == 0
    assert (r["selected"], r["replayed"], r["skipped"], r["uncaptured"]) == (8, 5, 3, 2)
    assert r["skipped_by_reason"] == {"image": 1, "json_schema": 1, "tools": 1}
    assert r["candidate_errors"] == 0 and r["target"] == "breakwater:cand"
    a = r["agreement"]
    assert (a["exact"], a["similar"], a["similarity_measured"], a["judged"]) == (0.6, 0.6, 5, 0.8)
    assert r["pass_rate"] == {"graded": 5, "baseline": 1.0, "candidate": 0.8, "regressions": 1, "fixes": 0}

    worst = r["worst"]
    assert worst[0]["prompt"] == "What is the weather in Oslo?" and worst[0]["candidate"] == "Sorry, I cannot say."
    assert (worst[0]["baseline_pass"], worst[0]["candidate_pass"], worst[0]["judged_agree"]) == (True, False, False)
    assert worst[0]["candidate_failed"] and worst[0]["similarity"] < 0.2
    assert worst[1]["prompt"] == "A poem about roses, please." and 0.5 < worst[1]["similarity"] < 0.9
    assert worst[1]["exact"] is False and worst[1]["judged_agree"] is True
    assert all(w["exact"] for w in worst[2:]) and len(worst) == 5

    rows = asyncio.run(_rows(url))
    replayed = {w["id"] for w in worst}
    logged = [row for row in rows if row.id in replayed]
    calls = [row for row in rows if row.tags.get("replay") == "candidate"]
    judged = [row for row in rows if row.tags.get("replay") == "judge"]
    assert len(calls) == 5 and len(judged) == 5
    assert all(row.route == "cand" and row.user == "breakwater:replay" and not row.stream for row in calls)
    poem = next(row for row in calls if row.temperature is not None)
    assert (poem.temperature, poem.seed, poem.max_tokens) == (0.2, 7, 50)  # the logged parameters, sent again
    assert sum(row.response_format == "json_object" for row in calls) == 1
    c = r["cost"]
    base = sum((row.cost_usd for row in logged if row.cost_usd is not None), Decimal(0)) / 5
    cand = sum((row.cost_usd for row in calls if row.cost_usd is not None), Decimal(0)) / 5
    assert c["priced"] == 5 and Decimal(c["baseline_per_request_usd"]) == base
    assert abs(Decimal(c["candidate_per_request_usd"]) - cand) < Decimal("1e-12")  # (through a float)
    assert Decimal(c["delta_usd"]) < 0 and c["ratio"] < 1
    lat = r["latency"]
    assert lat["measured"] == 5 and lat["baseline_mean_ms"] == round(sum(row.latency_ms for row in logged) / 5, 3)
    assert lat["delta_mean_ms"] == round(lat["candidate_mean_ms"] - lat["baseline_mean_ms"], 3)


def test_the_replays_own_calls_are_never_replayed(
    captured: tuple[Path, str], capsys: pytest.CaptureFixture[str]
) -> None:
    """Replayed against the captured route itself, the candidate's calls are captured rows of that
    route too; tagged ``replay``, the next replay does not select them."""
    config, _ = captured
    code, first = _replay(capsys, "--candidate", "prod", "--config", str(config), "--no-similarity")
    assert code == 0 and first["replayed"] == 5 and first["agreement"]["exact"] == 1.0
    assert first["similarity"] == "off (--no-similarity)" and first["agreement"]["similarity_measured"] == 0
    code, again = _replay(capsys, "--candidate", "prod", "--config", str(config), "--no-similarity")
    assert (again["selected"], again["replayed"], again["uncaptured"]) == (8, 5, 2)


@pytest.mark.parametrize("ledger_url", ["sqlite"], indirect=True)
def test_limit_and_a_window_before_any_row(captured: tuple[Path, str], capsys: pytest.CaptureFixture[str]) -> None:
    """``--limit`` takes the oldest rows; a window with no rows replays nothing and says so."""
    config, _ = captured
    code, r = _replay(capsys, "--candidate", "cand", "--config", str(config), "--limit", "2", "--no-similarity")
    assert code == 0 and (r["selected"], r["replayed"]) == (2, 2)
    assert {w["prompt"] for w in r["worst"]} == {"What is the capital of France?", "What is the weather in Oslo?"}
    code, r = _replay(
        capsys, "--candidate", "cand", "--config", str(config), "--until", "2h", "--since", "3h", "--no-similarity"
    )
    assert code == 0 and (r["selected"], r["replayed"], r["uncaptured"]) == (0, 0, 0)
    assert r["agreement"]["exact"] is None and r["worst"] == []


@pytest.mark.parametrize("ledger_url", ["sqlite"], indirect=True)
def test_a_failing_candidate_and_a_failing_judge(
    captured: tuple[Path, str], capsys: pytest.CaptureFixture[str]
) -> None:
    """A candidate that fails every call: each case is a candidate error, listed first among the
    worst. A judge that fails leaves the judged agreement unmeasured
    rather than counting disagreements."""
    config, _ = captured
    code, r = _replay(capsys, "--candidate", "down", "--config", str(config), "--no-similarity")
    assert code == 0 and (r["replayed"], r["candidate_errors"]) == (5, 5)
    assert r["agreement"]["exact"] is None and all(w["error"].startswith("HTTP 5") for w in r["worst"])
    code, r = _replay(capsys, "--candidate", "cand", "--config", str(config), "--judge", "down", "--no-similarity")
    assert code == 0 and r["agreement"]["judged"] is None and r["agreement"]["judged_measured"] == 0


@pytest.mark.parametrize("ledger_url", ["sqlite"], indirect=True)
def test_replay_against_a_running_gateway(
    captured: tuple[Path, str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """With ``--gateway`` the candidate is asked over HTTP (the same answers; the cost is unknown
    there), the rows read from ``--ledger``; ``--min-agreement`` above the agreement exits 1."""
    config, url = captured
    monkeypatch.chdir(config.parent)
    with serve(create_app(parse_config(config.read_text()), environ={})) as gateway:
        code, r = _replay(
            capsys, "--candidate", "cand", "--gateway", gateway, "--ledger", url, "--min-agreement", "0.7"
        )
    assert code == 1 and r["replayed"] == 5 and r["target"] == "openai:chat:cand"
    assert (r["agreement"]["exact"], r["agreement"]["similar"]) == (0.6, 0.6)
    assert r["cost"]["priced"] == 0 and r["latency"]["measured"] == 5
    rows = asyncio.run(_rows(url))
    assert sum(row.tags.get("replay") == "candidate" and row.user == "breakwater:replay" for row in rows) == 5


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("- {type: contains, value: 3}\n", "asserts.yaml: [0].value: must be a string"),
        ("- {type: equals, value: a}\n- {type: telepathy}\n", "asserts.yaml: [1].type: unsupported assertion type"),
        ("type: equals\n", "asserts.yaml: expected a non-empty YAML list of assertions"),
        ("- {type: llm-rubric, value: polite}\n", "llm-rubric and factuality assertions need --judge ROUTE"),
    ],
)
def test_a_bad_asserts_file_names_the_file_and_the_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str, message: str
) -> None:
    """A wrong assertions file is a usage error (exit 2) naming the file and where in it."""
    asserts = tmp_path / "asserts.yaml"
    asserts.write_text(content)
    ledger = f"sqlite:///{tmp_path / 'ledger.db'}"
    asyncio.run(_rows(ledger))  # an empty ledger
    code = main(["replay", "--route", "prod", "--candidate", "cand", "--ledger", ledger, "--asserts", str(asserts)])
    err = capsys.readouterr().err
    assert code == 2 and message in err and str(asserts) in err


@pytest.mark.parametrize("ledger_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--since", "soon"], "--since"),
        (["--limit", "0"], "--limit must be between 1 and 10000"),
        (["--concurrency", "0"], "--concurrency must be between 1 and 64"),
        (["--min-agreement", "1.5"], "--min-agreement must be between 0 and 1"),
        (["--candidate", "nowhere"], "no route 'nowhere'"),
    ],
)
def test_bad_arguments_exit_2(
    captured: tuple[Path, str], capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    """Each bad argument is refused with exit 2 and a message saying which."""
    config, _ = captured
    argv = ["replay", "--route", "prod", "--candidate", "cand", "--config", str(config), "--no-similarity", *args]
    code = main(argv)
    assert code == 2 and message in capsys.readouterr().err


@pytest.mark.parametrize("ledger_url", ["sqlite"], indirect=True)
def test_the_table_for_people(captured: tuple[Path, str], capsys: pytest.CaptureFixture[str]) -> None:
    """Without ``--json``: the counts, the agreement, the side-by-side figures and the worst cases."""
    config, _ = captured
    code = main(["replay", "--route", "prod", "--candidate", "cand", "--config", str(config), "--since", "1h"])
    out = capsys.readouterr().out
    assert code == 0
    assert "5 replayed, 3 skipped (image 1, json_schema 1, tools 1), 2 not captured" in out
    assert "exact 60.0%" in out and "worst cases" in out and "Sorry, I cannot say." in out


def test_the_table_shows_captured_text_literally(capsys: pytest.CaptureFixture[str]) -> None:
    """Redacted text (``[EMAIL]``) and brackets in answers are printed as they are, not read as
    the table's markup."""
    row = dataclasses.replace(make_row(0), prompt='[{"role": "user", "content": ["Mail [EMAIL] [/b]"]}]')
    summary = report(
        [Case(row, "[/x] done", None, None, 5.0, exact=False)], Counter(), uncaptured=0, threshold=0.9, worst=1
    )
    _print({**summary, "route": "r", "candidate": "c", "target": "t", "since": 0.0, "until": 1.0, "similarity": "off"})
    out = capsys.readouterr().out
    assert "Mail [EMAIL] [/b]" in out and "[/x] done" in out
