"""``breakwater eval`` end to end, in-process against the mock: the exit code for CI, a regressed
route flipping it, baselines and the cases that flipped, compare mode, ``eval gate``, JSON and
JUnit outputs, the cache, every assertion type; a suite in promptfoo's format runs unchanged,
in-process and through ``openai:chat`` against a gateway on loopback."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
import yaml

from breakwater.cli.main import main
from breakwater.core.config.parse import parse_config
from breakwater.server.app import create_app
from tests.server.running import serve

DATA = Path(__file__).parent.parent / "data" / "evals"

CONFIG = """
access: {enabled: false}
ledger: {url: "sqlite:///ledger.db", spool_path: ledger.spool}
providers:
  m:
    type: mock
    answers:
      - {text: 'Paris is the capital of France.', model: good, matches: France}
      - {text: 'Madrid is the capital of Spain.', model: good, matches: Spain}
      - {text: 'Paris is the capital of France.', model: bad, matches: France}
      - {text: 'I do not know.', model: bad}
deployments:
  g: {provider: m, model: good, price: {input_per_mtok: 1.0, output_per_mtok: 2.0}}
  b: {provider: m, model: bad, price: {input_per_mtok: 1.0, output_per_mtok: 2.0}}
routes:
  current: {deployments: [g]}
  candidate: {deployments: [b]}
"""
SUITE: dict[str, Any] = {
    "description": "capitals",
    "prompts": ["What is the capital of {{country}}?"],
    "providers": ["breakwater:current"],
    "defaultTest": {"assert": [{"type": "cost", "threshold": 0.01}]},
    "tests": [
        {
            "description": "france",
            "vars": {"country": "France", "city": "Paris"},
            "assert": [{"type": "icontains", "value": "{{city}}"}],
        },
        {
            "description": "spain",
            "vars": {"country": "Spain", "city": "Madrid"},
            "assert": [{"type": "icontains", "value": "{{city}}"}],
        },
    ],
}


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    (tmp_path / "config.yaml").write_text(CONFIG)
    (tmp_path / "suite.yaml").write_text(yaml.safe_dump(SUITE))
    return tmp_path / "suite.yaml", tmp_path / "config.yaml"


def run(capsys: pytest.CaptureFixture[str], *argv: Any) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_a_passing_suite_exits_0_and_a_regressed_route_exits_1(
    files: tuple[Path, Path], tmp_path: Path, capsys: Any
) -> None:
    """The CI exit code: 0 on the current route; the candidate's mock answers worse, so 1."""
    suite, config = files
    cache = ["--cache-dir", tmp_path / "cache"]
    code, out, _ = run(capsys, "eval", suite, "--config", config, *cache)
    assert code == 0 and "PASSED" in out and "france" in out
    code, out, _ = run(capsys, "eval", suite, "--config", config, "--route", "candidate", *cache)
    assert code == 1 and "FAILED" in out and "icontains failed" in out
    code, _, _ = run(
        capsys, "eval", suite, "--config", config, "--route", "candidate", "--min-pass-rate", "0.5", *cache
    )
    assert code == 0


def test_json_and_junit_outputs(files: tuple[Path, Path], tmp_path: Path, capsys: Any) -> None:
    """--json prints one breakwater-eval/1 document; --junit writes XML a CI reads (checked with xml.etree)."""
    suite, config = files
    junit = tmp_path / "report.xml"
    code, out, _ = run(
        capsys, "eval", suite, "--config", config, "--route", "candidate", "--json", "--junit", junit, "--no-cache"
    )
    assert code == 1
    doc = json.loads(out)
    assert doc["format"] == "breakwater-eval/1" and doc["passed"] is False and doc["suite"] == str(suite)
    assert doc["summary"]["cases"] == 2 and doc["summary"]["passed"] == 1 and doc["summary"]["pass_rate"] == 0.5
    spain = next(c for c in doc["cases"] if c["description"] == "spain")
    assert (
        spain["status"] == "fail" and spain["output"] == "I do not know." and spain["target"] == "breakwater:candidate"
    )
    assert [a["type"] for a in spain["assertions"]] == ["cost", "icontains"] and spain["cost_usd"] > 0
    assert doc["gate"]["reasons"] == ["pass rate 50.0% is under the minimum 100.0%"]
    root = ET.parse(junit).getroot()
    (testsuite,) = root.findall("testsuite")
    assert testsuite.get("tests") == "2" and testsuite.get("failures") == "1" and testsuite.get("errors") == "0"
    failed = [c for c in testsuite.findall("testcase") if c.find("failure") is not None]
    assert len(failed) == 1 and failed[0].get("name", "").startswith("spain")
    failure = failed[0].find("failure")
    assert failure is not None and "icontains failed" in failure.get("message", "") and failure.text == "I do not know."


def test_baseline_save_then_compare_reports_the_flipped_cases(
    files: tuple[Path, Path], tmp_path: Path, capsys: Any
) -> None:
    """A baseline saved on the current route gates the candidate: regressed by more than the margin, exit 1."""
    suite, config = files
    baseline = tmp_path / "baseline.json"
    code, _, _ = run(capsys, "eval", suite, "--config", config, "--save-baseline", baseline, "--no-cache")
    saved = json.loads(baseline.read_text())
    assert code == 0 and saved["format"] == "breakwater-eval-baseline/1" and saved["pass_rate"] == 1.0
    assert sorted(c["description"] for c in saved["cases"].values()) == ["france", "spain"]
    argv = [
        "eval",
        suite,
        "--config",
        config,
        "--route",
        "candidate",
        "--baseline",
        baseline,
        "--min-pass-rate",
        "0",
        "--no-cache",
    ]
    code, out, _ = run(capsys, *argv, "--json")
    doc = json.loads(out)
    assert code == 1 and doc["gate"]["baseline_pass_rate"] == 1.0
    assert [(f["description"], f["was"], f["now"]) for f in doc["gate"]["flipped"]] == [("spain", "pass", "fail")]
    code, out, _ = run(capsys, *argv)
    assert code == 1 and "flipped: spain" in out and "pass -> FAIL" in out
    code, _, _ = run(capsys, *argv, "--margin", "0.5")
    assert code == 0


def test_compare_mode_puts_two_routes_side_by_side(files: tuple[Path, Path], capsys: Any) -> None:
    """--compare CURRENT CANDIDATE: both routes' figures and the cases that flipped; exit 1 as the candidate regressed."""
    suite, config = files
    code, out, _ = run(
        capsys, "eval", suite, "--config", config, "--compare", "current", "candidate", "--no-cache", "--json"
    )
    doc = json.loads(out)
    assert code == 1 and doc["compare"] == {"current": "breakwater:current", "candidate": "breakwater:candidate"}
    figures = {t["target"]: t for t in doc["targets"]}
    assert figures["breakwater:current"]["pass_rate"] == 1.0 and figures["breakwater:candidate"]["pass_rate"] == 0.5
    assert (
        figures["breakwater:current"]["cost_usd"] > 0 and figures["breakwater:candidate"]["latency_p50_ms"] is not None
    )
    assert [f["description"] for f in doc["gate"]["flipped"]] == ["spain"]
    code, out, _ = run(capsys, "eval", suite, "--config", config, "--compare", "current", "candidate", "--no-cache")
    assert code == 1 and "breakwater:candidate" in out and "flipped: spain" in out
    code, _, err = run(capsys, "eval", suite, "--config", config, "--compare", "current", "breakwater:current")
    assert code == 2 and "two different routes" in err


def test_eval_gate_runs_the_candidate_and_never_uses_the_cache(
    files: tuple[Path, Path], tmp_path: Path, capsys: Any
) -> None:
    """eval gate SUITE --route R: exit 0 only when R passes; it asks every case (nothing kept)."""
    suite, config = files
    cache = tmp_path / "cache"
    assert run(capsys, "eval", "gate", suite, "--config", config, "--route", "current", "--cache-dir", cache)[0] == 0
    assert not cache.exists()
    assert run(capsys, "eval", "gate", suite, "--config", config, "--route", "candidate")[0] == 1
    code, _, err = run(capsys, "eval", "gate", suite, "--config", config)
    assert code == 2 and "needs --route" in err


def test_the_cache_keeps_answers_between_runs(files: tuple[Path, Path], tmp_path: Path, capsys: Any) -> None:
    """The second run answers from the cache; a changed configuration misses it; --no-cache asks again."""
    suite, config = files
    cache = ["--cache-dir", tmp_path / "cache"]
    cached = lambda out: json.loads(out)["summary"]["cached"]  # noqa: E731
    assert cached(run(capsys, "eval", suite, "--config", config, "--json", *cache)[1]) == 0
    assert cached(run(capsys, "eval", suite, "--config", config, "--json", *cache)[1]) == 2
    assert cached(run(capsys, "eval", suite, "--config", config, "--json", "--no-cache", *cache)[1]) == 0
    config.write_text(CONFIG.replace("output_per_mtok: 2.0}", "output_per_mtok: 3.0}"))
    assert cached(run(capsys, "eval", suite, "--config", config, "--json", *cache)[1]) == 0


def test_mistakes_exit_2_naming_the_file_and_path(files: tuple[Path, Path], capsys: Any) -> None:
    """A suite mistake, an unknown route, a bad baseline: exit 2 with a message on stderr."""
    suite, config = files
    broken = {**SUITE, "tests": [{"assert": [{"type": "contains", "value": 3}]}]}
    suite.write_text(yaml.safe_dump(broken))
    code, _, err = run(capsys, "eval", suite, "--config", config)
    assert code == 2 and f"{suite}: tests[0].assert[0].value: must be a string" in err
    suite.write_text(yaml.safe_dump(SUITE))
    code, _, err = run(capsys, "eval", suite, "--config", config, "--route", "nowhere", "--no-cache")
    assert code == 2 and "no route 'nowhere'" in err
    code, _, err = run(capsys, "eval", suite, "--config", config, "--baseline", config)
    assert code == 2 and "--baseline" in err
    code, _, err = run(capsys, "eval", suite, "extra")
    assert code == 2 and "one suite" in err


def test_the_promptfoo_format_suite_runs_unchanged_in_process(tmp_path: Path, capsys: Any) -> None:
    """tests/data/evals/translation.yaml (promptfoo's format) on the route its provider names, in-process."""
    code, out, err = run(
        capsys, "eval", DATA / "translation.yaml", "--config", DATA / "translation_gateway.yaml",
        "--route", "gpt-4o-mini", "--json", "--cache-dir", tmp_path / "cache",
    )  # fmt: skip
    doc = json.loads(out)
    failing = [(c["description"], c["prompt"], c["reason"]) for c in doc["cases"] if not c["passed"]]
    assert code == 0 and not failing, (failing, err)
    assert doc["summary"]["cases"] == 10  # (1 + 1 + 2 + 1 tests) x 2 prompts
    assert {c["prompt"] for c in doc["cases"]} == {"Translate into {{language}}: {{input}}", "chat"}


def test_the_promptfoo_format_suite_runs_unchanged_against_a_gateway_on_loopback(
    tmp_path: Path, capsys: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same suite through its openai:chat provider, as promptfoo would run it: $OPENAI_BASE_URL
    names a running Breakwater; the results are the same as in-process."""
    config = parse_config((DATA / "translation_gateway.yaml").read_text())
    with serve(create_app(config, environ={})) as url:
        monkeypatch.setenv("OPENAI_BASE_URL", url + "/v1")
        monkeypatch.setenv("OPENAI_API_KEY", "not-needed")
        code, out, _ = run(capsys, "eval", DATA / "translation.yaml", "--json", "--no-cache")
    doc = json.loads(out)
    assert code == 0 and doc["targets"][0]["target"] == "openai:chat:gpt-4o-mini"
    assert doc["summary"]["passed"] == 10
    french = next(c for c in doc["cases"] if c["description"] == "French greeting")
    assert french["output"] == "Bonjour le monde" and french["cost_usd"] is None


def test_unsupported_promptfoo_features_are_refused_clearly(capsys: Any) -> None:
    """A javascript assertion is refused by name, with the file and its place, before anything runs."""
    code, _, err = run(capsys, "eval", DATA / "unsupported.yaml", "--no-cache")
    assert code == 2
    assert f"{DATA / 'unsupported.yaml'}: tests[0].assert[0].type: a javascript assertion runs code" in err


def test_with_access_on_the_in_process_gateway_takes_the_key_from_the_environment(
    tmp_path: Path, capsys: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Access on: without a key every case is refused (401, exit 1); $BREAKWATER_API_KEY (or
    --api-key) lets them through, and the key is never printed."""
    monkeypatch.setenv("EVAL_HASH_SECRET", "eval-test-hash-secret-0123456789abcdef")
    access = f'access: {{store: "sqlite:///{tmp_path}/keys.db", hash_secret: "env:EVAL_HASH_SECRET"}}'
    config = tmp_path / "config.yaml"
    config.write_text(CONFIG.replace("access: {enabled: false}", access))
    suite = tmp_path / "suite.yaml"
    suite.write_text(yaml.safe_dump(SUITE))
    assert main(["keys", "create", "--name", "ci", "--config", str(config), "--format", "json"]) == 0
    key = json.loads(capsys.readouterr().out)["key"]
    code, out, _ = run(capsys, "eval", suite, "--config", config, "--json", "--no-cache")
    assert code == 1 and all(c["error"] and c["error"].startswith("HTTP 401") for c in json.loads(out)["cases"])
    monkeypatch.setenv("BREAKWATER_API_KEY", key)
    code, out, err = run(capsys, "eval", suite, "--config", config, "--no-cache")
    assert code == 0 and key not in out + err
    monkeypatch.delenv("BREAKWATER_API_KEY")
    assert run(capsys, "eval", suite, "--config", config, "--api-key", key, "--no-cache")[0] == 0


def test_no_progress_bar_in_ci_or_off_a_terminal() -> None:
    """The bar is drawn only on a terminal without CI set (pytest's stderr is not one)."""
    from breakwater.cli.eval_output import progress

    with progress(3, {"CI": "true"}) as advance:
        assert advance is None
    with progress(3, {}) as advance:
        assert advance is None
