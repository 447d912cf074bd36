"""``routes.X.drift``: bounds and defaults, a judge that must be a route of the config, and every
assertion read by the eval reader with its path (``check-config`` reports each mistake)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from breakwater.cli.main import main
from breakwater.core.config import ConfigError, build_config
from breakwater.runtime.wiring import check_environment


def _config(drift: dict[str, Any] | None = None, **routes: Any) -> dict[str, Any]:
    return {
        "providers": {"m": {"type": "mock"}},
        "deployments": {"d": {"provider": "m", "model": "mock-gpt"}},
        "routes": {
            "chat": {"deployments": ["d"], **({} if drift is None else {"drift": drift})},
            "grader": {"deployments": ["d"]},
            **routes,
        },
    }


def _problems(drift: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as info:
        build_config(_config(drift))
    return [str(p) for p in info.value.problems]


def _environment(drift: dict[str, Any]) -> list[str]:
    return [str(p) for p in check_environment(build_config(_config(drift)), {})]


def test_defaults() -> None:
    """Only the assertions are required; the rest has the documented defaults."""
    drift = build_config(_config({"asserts": [{"type": "contains", "value": "x"}]})).routes["chat"].drift
    assert drift is not None
    assert (drift.share, drift.window_s, drift.baseline_s, drift.margin, drift.min_samples) == (
        0.05, 3600.0, 86400.0, 0.05, 20
    )  # fmt: skip
    assert (drift.threshold, drift.judge, drift.queue, drift.concurrency) == (None, None, 100, 2)


@pytest.mark.parametrize(
    ("drift", "where"),
    [
        ({"share": 0, "asserts": [{"type": "is-json"}]}, "routes.chat.drift.share"),
        ({"share": 1.5, "asserts": [{"type": "is-json"}]}, "routes.chat.drift.share"),
        ({"asserts": []}, "routes.chat.drift.asserts"),
        ({}, "routes.chat.drift.asserts"),
        ({"asserts": [{"type": "is-json"}], "margin": 1}, "routes.chat.drift.margin"),
        ({"asserts": [{"type": "is-json"}], "threshold": 2}, "routes.chat.drift.threshold"),
        ({"asserts": [{"type": "is-json"}], "min_samples": 0}, "routes.chat.drift.min_samples"),
        ({"asserts": [{"type": "is-json"}], "window_s": 3600, "baseline_s": 60}, "routes.chat.drift"),
        ({"asserts": [{"type": "is-json"}], "judge": "nope"}, "routes.chat.drift.judge: unknown route 'nope'"),
        ({"asserts": [{"type": "is-json"}], "shares": 0.1}, "routes.chat.drift.shares"),
    ],
)
def test_a_wrong_setting_is_refused_with_its_path(drift: dict[str, Any], where: str) -> None:
    """Out-of-bounds values, a baseline shorter than the window, an unknown judge route, a typo."""
    assert any(p.startswith(where) for p in _problems(drift)), _problems(drift)


@pytest.mark.parametrize(
    ("asserts", "problem"),
    [
        ([{"type": "contans", "value": "x"}], "routes.chat.drift.asserts[0].type: unsupported assertion type"),
        ([{"type": "is-json"}, {"type": "regex", "value": "("}], "routes.chat.drift.asserts[1].value: not a regular"),
        ([{"type": "contains"}], "routes.chat.drift.asserts[0].value: must be a string"),
        ([{"type": "cost", "threshold": 0.1}], "routes.chat.drift.asserts[0].type: 'cost' cannot grade live traffic"),
        ([{"type": "llm-rubric", "value": "polite"}], "routes.chat.drift.judge: required"),
        ([{"type": "not-factuality", "value": "Paris"}], "routes.chat.drift.judge: required"),
    ],
)
def test_each_assertion_is_read_at_check_time(asserts: list[dict[str, Any]], problem: str) -> None:
    """The eval reader's mistakes carry the drift path; judged types need a judge route."""
    found = _environment({"asserts": asserts})
    assert any(p.startswith(problem) for p in found), found


def test_good_assertions_and_a_judge_pass() -> None:
    """Deterministic and judged assertions with a judge route: no problem."""
    asserts = [{"type": "icontains", "value": "paris"}, {"type": "llm-rubric", "value": "polite"}]
    assert _environment({"asserts": asserts, "judge": "grader", "threshold": 0.5}) == []


def test_check_config_reports_drift_mistakes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``breakwater check-config`` exits 1 naming each mistake's path."""
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(_config({"asserts": [{"type": "llm-rubric"}], "judge": "nope"})))
    assert main(["check-config", str(path)]) == 1
    err = capsys.readouterr().err
    assert "routes.chat.drift.judge: unknown route 'nope'" in err
    path.write_text(yaml.safe_dump(_config({"asserts": [{"type": "contains"}, {"type": "llm-rubric", "value": "x"}]})))
    assert main(["check-config", str(path)]) == 1
    err = capsys.readouterr().err
    assert "routes.chat.drift.asserts[0].value: must be a string" in err
    assert "routes.chat.drift.judge: required" in err


def test_the_documented_example_is_valid() -> None:
    """docs/evals.md's drift watch example passes the config checks as written."""
    text = (Path(__file__).resolve().parents[2] / "docs" / "evals.md").read_text()
    section = text[text.index("## Drift watch") :]
    example = yaml.safe_load(section.split("```yaml\n", 1)[1].split("```", 1)[0])
    config = build_config(
        {
            "providers": {"m": {"type": "mock"}},
            "deployments": {"gpt-4o": {"provider": "m", "model": "x"}, "gpt-4o-mini": {"provider": "m", "model": "y"}},
            **example,
        }
    )
    assert check_environment(config, {}) == []
    drift = config.routes["support"].drift
    assert drift is not None and (drift.share, drift.judge, len(drift.asserts)) == (0.02, "grader", 2)
