"""Every assertion type through ``breakwater eval``, in-process against the mock: each passes and
fails, and so does its ``not-`` form; weights with a threshold; llm-rubric and factuality graded
by a judge route (``options.provider`` and ``--judge``), similar by the bundled local embedder."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from breakwater.cli.main import main
from breakwater.engine.evals.asserts import ALL_TYPES

ANSWER = 'Sure. The capital is Paris. {"city": "Paris"} Done.'
CONFIG = f"""
access: {{enabled: false}}
ledger: {{url: "sqlite:///ledger.db", spool_path: ledger.spool}}
providers:
  m:
    type: mock
    answers:
      - {{text: '{ANSWER}', model: answerer, logprob: -0.01}}
      - {{text: '{{"reason": "it does", "pass": true, "score": 0.9}}', model: judge, matches: "mentions Paris"}}
      - {{text: '{{"reason": "it does not", "pass": false, "score": 0.1}}', model: judge, matches: "mentions Lyon"}}
      - {{text: "(C)", model: judge, matches: "Expert answer:\\\\nParis"}}
      - {{text: "(D)", model: judge, matches: "Expert answer:\\\\nLyon"}}
deployments:
  a: {{provider: m, model: answerer, price: {{input_per_mtok: 1.0, output_per_mtok: 2.0}}}}
  j: {{provider: m, model: judge}}
routes:
  answers: {{deployments: [a]}}
  judge: {{deployments: [j]}}
"""
EDITED = ANSWER.replace("Paris", "Pars", 1)
# type -> (an assertion that passes on ANSWER, one that fails)
PAIRS: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "equals": ({"value": ANSWER}, {"value": "Paris"}),
    "contains": ({"value": "Paris"}, {"value": "Lyon"}),
    "icontains": ({"value": "PARIS"}, {"value": "LYON"}),
    "contains-any": ({"value": ["Lyon", "Paris"]}, {"value": ["Lyon", "Nice"]}),
    "icontains-any": ({"value": ["LYON", "PARIS"]}, {"value": ["LYON"]}),
    "contains-all": ({"value": ["Paris", "Done"]}, {"value": ["Paris", "Lyon"]}),
    "icontains-all": ({"value": ["paris", "done"]}, {"value": ["paris", "lyon"]}),
    "starts-with": ({"value": "Sure."}, {"value": "Paris"}),
    "regex": ({"value": "capital is [A-Z]\\w+"}, {"value": "^\\d+$"}),
    "is-json": ({"negate": True}, {}),
    "contains-json": ({"value": {"type": "object", "required": ["city"]}}, {"value": {"required": ["country"]}}),
    "levenshtein": ({"value": EDITED}, {"value": "Paris", "threshold": 3}),
    "cost": ({"threshold": 1}, {"threshold": 1e-9}),
    "latency": ({"threshold": 600000}, {"threshold": 0}),
    "perplexity": ({"threshold": 1.5}, {"threshold": 1.001}),
    "json-schema": ({"negate": True, "value": {"type": "object"}}, {"value": {"type": "object"}}),
    "is-valid-openai-tools-call": ({"negate": True}, {}),
    "similar": (
        {"value": "The capital is Paris.", "threshold": 0.5},
        {"value": "Bananas are yellow.", "threshold": 0.95},
    ),
    "llm-rubric": ({"value": "mentions Paris"}, {"value": "mentions Lyon"}),
    "factuality": ({"value": "Paris is the capital"}, {"value": "Lyon is the capital"}),
}


def _assertion(kind: str, spec: dict[str, Any], negate: bool) -> dict[str, Any]:
    """The assertion ``spec`` describes, its ``not-`` prefix toggled by ``negate``."""
    flipped = spec.get("negate", False) != negate
    return {"type": ("not-" if flipped else "") + kind, **{k: v for k, v in spec.items() if k != "negate"}}


def suite() -> dict[str, Any]:
    tests = []
    for kind, (good, bad) in PAIRS.items():
        tests += [
            {"description": f"{kind} passes", "assert": [_assertion(kind, good, False)]},
            {"description": f"{kind} fails", "assert": [_assertion(kind, bad, False)]},
            {"description": f"not-{kind} passes", "assert": [_assertion(kind, bad, True)]},
            {"description": f"not-{kind} fails", "assert": [_assertion(kind, good, True)]},
        ]
    weighted = [{"type": "contains", "value": "Paris", "weight": 3}, {"type": "contains", "value": "Lyon", "weight": 1}]
    tests += [
        {"description": "weights reach the threshold", "threshold": 0.75, "assert": weighted},
        {"description": "weights miss the threshold", "threshold": 0.8, "assert": weighted},
        {"description": "without a threshold every assertion must pass", "assert": weighted},
    ]
    return {
        "prompts": ["What is the capital of France?"],
        "providers": [{"id": "breakwater:answers", "config": {"logprobs": True}}],
        "defaultTest": {"options": {"provider": "breakwater:judge"}},
        "tests": tests,
    }


def test_the_pairs_cover_every_type() -> None:
    """Nothing a suite may name is left out of the end-to-end check."""
    assert sorted(PAIRS) == sorted(ALL_TYPES)


@pytest.mark.parametrize("judge_flag", [False, True])
def test_every_type_passes_and_fails_with_not_and_weights(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], judge_flag: bool
) -> None:
    """Each case's result is the one its description states (the judge from the suite, or --judge)."""
    (tmp_path / "config.yaml").write_text(CONFIG)
    document = suite()
    if judge_flag:
        document["defaultTest"] = {"options": {"provider": "breakwater:answers"}}  # overridden by --judge
    (tmp_path / "suite.yaml").write_text(yaml.safe_dump(document, allow_unicode=True))
    argv = ["eval", str(tmp_path / "suite.yaml"), "--config", str(tmp_path / "config.yaml"), "--json", "--no-cache"]
    code = main([*argv, *(["--judge", "judge"] if judge_flag else [])])
    doc = json.loads(capsys.readouterr().out)
    assert code == 1  # half the cases fail, by design
    wrong = [
        (c["description"], c["reason"])
        for c in doc["cases"]
        if c["passed"] != (c["description"].endswith("passes") or c["description"].endswith("reach the threshold"))
    ]
    assert not wrong
    summary = doc["summary"]
    assert summary["cases"] == 4 * len(PAIRS) + 3 and summary["passed"] == 2 * len(PAIRS) + 1 and summary["errors"] == 0
