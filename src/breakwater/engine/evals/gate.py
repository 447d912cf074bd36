"""Whether a run passes, as a CI or deploy gate: its pass rate against a minimum, and against a
stored baseline (the pass rate may not drop by more than a margin); which cases flipped.

A baseline (``breakwater-eval-baseline/1``) holds the overall pass rate and each case's pass and
score, by the case's key (``Case.key``, stable across runs while the prompt, description and
variables are unchanged). A run on one target matches a baseline by case alone, so a baseline
saved on the current route gates a candidate route; a run on several targets prefixes each key
with the target's label.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from breakwater.engine.evals.runner import CaseResult, SuiteResult

BASELINE_FORMAT = "breakwater-eval-baseline/1"


@dataclass(frozen=True, slots=True)
class Flip:
    """A case whose pass changed against the other run (``now_passed``: it passes now)."""

    key: str
    description: str
    target: str
    was_passed: bool
    now_passed: bool
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Decision:
    passed: bool
    pass_rate: float
    min_pass_rate: float
    #: why it fails (empty when it passes)
    reasons: list[str] = field(default_factory=list)
    baseline_pass_rate: float | None = None
    flips: list[Flip] = field(default_factory=list)
    #: cases the baseline has and this run does not, and the reverse
    missing: list[str] = field(default_factory=list)
    added: list[str] = field(default_factory=list)


def result_key(result: CaseResult, run: SuiteResult) -> str:
    """The case's key in a baseline (prefixed with the target when the run has several)."""
    return result.case.key if len(run.targets) == 1 else f"{result.target}|{result.case.key}"


def baseline_of(run: SuiteResult) -> dict[str, Any]:
    """The run as a baseline (JSON-ready)."""
    return {
        "format": BASELINE_FORMAT,
        "targets": list(run.targets),
        "pass_rate": run.pass_rate,
        "cases": {
            result_key(r, run): {
                "description": r.case.description,
                "prompt": r.case.prompt,
                "passed": r.passed,
                "score": r.score,
            }
            for r in run.results
        },
    }


def check_baseline(data: Any) -> Mapping[str, Any]:
    """A baseline read from JSON, checked (Raises: ValueError, saying what is wrong)."""
    if not isinstance(data, Mapping) or data.get("format") != BASELINE_FORMAT:
        raise ValueError(f"not a baseline (expected format {BASELINE_FORMAT!r}; write one with --save-baseline)")
    cases = data.get("cases")
    rate = data.get("pass_rate")
    if not isinstance(cases, Mapping) or isinstance(rate, bool) or not isinstance(rate, int | float):
        raise ValueError("a baseline needs 'pass_rate' and 'cases'")
    for key, entry in cases.items():
        if not isinstance(entry, Mapping) or not isinstance(entry.get("passed"), bool):
            raise ValueError(f"cases.{key}: needs 'passed' (true or false)")
    return data


def flips(before: Mapping[str, tuple[bool, str]], after: list[tuple[str, CaseResult]]) -> list[Flip]:
    """The cases whose pass differs: ``before`` by key (pass, description), ``after`` (key, result)."""
    out = []
    for key, result in after:
        if key in before and before[key][0] != result.passed:
            was = before[key][0]
            out.append(Flip(key, result.case.description, result.target, was, result.passed, result.reason))
    return out


def decide(
    run: SuiteResult, *, min_pass_rate: float = 1.0, baseline: Mapping[str, Any] | None = None, margin: float = 0.0
) -> Decision:
    """Pass when the pass rate reaches ``min_pass_rate`` and, with a baseline, is not lower than
    the baseline's by more than ``margin``."""
    rate = run.pass_rate
    reasons = []
    if rate < min_pass_rate:
        reasons.append(f"pass rate {rate:.1%} is under the minimum {min_pass_rate:.1%}")
    if baseline is None:
        return Decision(not reasons, rate, min_pass_rate, reasons)
    cases: Mapping[str, Any] = baseline["cases"]
    before = {k: (bool(v["passed"]), str(v.get("description", ""))) for k, v in cases.items()}
    keyed = [(result_key(r, run), r) for r in run.results]
    changed = flips(before, keyed)
    seen = {k for k, _ in keyed}
    base_rate = float(baseline["pass_rate"])
    if base_rate - rate > margin + 1e-12:
        regressed = sum(1 for f in changed if not f.now_passed)
        reasons.append(
            f"pass rate {rate:.1%} regressed from the baseline's {base_rate:.1%} by more than {margin:.1%} "
            f"({regressed} case(s) flipped to fail)"
        )
    return Decision(
        not reasons,
        rate,
        min_pass_rate,
        reasons,
        base_rate,
        changed,
        missing=sorted(k for k in before if k not in seen),
        added=sorted(k for k in seen if k not in before),
    )
