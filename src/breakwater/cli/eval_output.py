"""How ``breakwater eval`` shows a run: a table, JSON (``breakwater-eval/1``, docs/evals.md), JUnit
XML, and a progress bar on a terminal (never in CI)."""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from breakwater.engine.evals.gate import Decision, Flip
from breakwater.engine.evals.runner import CaseResult, SuiteResult, Summary
from breakwater.engine.evals.suite import Suite

RESULT_FORMAT = "breakwater-eval/1"
#: an output longer than this is cut in the JSON and the JUnit report
_OUTPUT_SHOWN = 4000


def _status(r: CaseResult) -> str:
    return "ERROR" if r.error is not None else "PASS" if r.passed else "FAIL"


def _summary(s: Summary) -> dict[str, Any]:
    return {
        "target": s.target,
        "cases": s.cases,
        "passed": s.passed,
        "failed": s.cases - s.passed,
        "errors": s.errors,
        "cached": s.cached,
        "pass_rate": s.pass_rate,
        "cost_usd": s.cost_usd,
        "mean_cost_usd": s.mean_cost_usd,
        "latency_p50_ms": s.latency_p50_ms,
    }


def _flip(f: Flip) -> dict[str, Any]:
    return {
        "key": f.key,
        "description": f.description,
        "target": f.target,
        "was": "pass" if f.was_passed else "fail",
        "now": "pass" if f.now_passed else "fail",
        "reason": f.reason,
    }


def _case(r: CaseResult) -> dict[str, Any]:
    out = r.output
    return {
        "key": r.case.key,
        "description": r.case.description,
        "prompt": r.case.prompt,
        "target": r.target,
        "vars": dict(r.case.vars),
        "status": _status(r).lower(),
        "passed": r.passed,
        "score": r.score,
        "reason": r.reason,
        "error": r.error,
        "cached": r.cached,
        "model": r.model,
        "output": None if out is None else out.text[:_OUTPUT_SHOWN],
        "cost_usd": None if out is None else out.cost_usd,
        "latency_ms": None if out is None else out.latency_ms,
        "assertions": []
        if r.verdict is None
        else [
            {
                "type": ("not-" if g.assertion.negate else "") + g.assertion.type,
                "weight": g.assertion.weight,
                "passed": g.passed,
                "score": g.score,
                "reason": g.reason,
            }
            for g in r.verdict.grades
        ],
    }


def as_json(suite: Suite, run: SuiteResult, decision: Decision, compare: tuple[str, str] | None) -> dict[str, Any]:
    """The run as the ``breakwater-eval/1`` document (docs/evals.md)."""
    return {
        "format": RESULT_FORMAT,
        "suite": suite.source,
        "description": suite.description,
        "passed": decision.passed,
        "duration_s": run.duration_s,
        "compare": None if compare is None else {"current": compare[0], "candidate": compare[1]},
        "summary": _summary(run.summary()),
        "targets": [_summary(run.summary(t)) for t in run.targets],
        "gate": {
            "passed": decision.passed,
            "pass_rate": decision.pass_rate,
            "min_pass_rate": decision.min_pass_rate,
            "baseline_pass_rate": decision.baseline_pass_rate,
            "reasons": decision.reasons,
            "flipped": [_flip(f) for f in decision.flips],
            "missing": decision.missing,
            "added": decision.added,
        },
        "cases": [_case(r) for r in run.results],
    }


def junit(suite: Suite, run: SuiteResult) -> bytes:
    """The run as JUnit XML: a testsuite per target, a testcase per case (failure: the reasons)."""
    root = ET.Element("testsuites", name=suite.description or suite.source)
    for target in run.targets:
        results = run.of(target)
        summary = run.summary(target)
        node = ET.SubElement(
            root,
            "testsuite",
            name=target,
            tests=str(summary.cases),
            failures=str(summary.cases - summary.passed - summary.errors),
            errors=str(summary.errors),
            skipped="0",
            time=f"{sum((r.output.latency_ms or 0) for r in results if r.output) / 1000:.3f}",
        )
        for r in results:
            latency = r.output.latency_ms if r.output is not None else None
            case = ET.SubElement(
                node,
                "testcase",
                classname=f"{target}.{r.case.prompt}",
                name=f"{r.case.description} [{r.case.key}]",
                time=f"{(latency or 0) / 1000:.3f}",
            )
            if r.error is not None:
                ET.SubElement(case, "error", message=r.error, type="TargetError").text = r.error
            elif not r.passed:
                failure = ET.SubElement(case, "failure", message=r.reason, type="AssertionFailed")
                failure.text = r.output.text[:_OUTPUT_SHOWN] if r.output is not None else ""
    return bytes(ET.tostring(root, encoding="utf-8", xml_declaration=True))


def _money(value: float | None) -> str:
    return "-" if value is None else f"{value:.6f}"


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def table(run: SuiteResult, decision: Decision, *, many_prompts: bool) -> None:
    """Every case, then each target's figures and the verdict (to stdout)."""
    from rich.console import Console
    from rich.table import Table

    console = Console(width=None if sys.stdout.isatty() else 200)
    cases = Table(title="Eval cases")
    for name in ("case", *(("prompt",) if many_prompts else ()), "target", "result", "score", "cost USD", "ms", "why"):
        cases.add_column(name, overflow="fold")
    for r in run.results:
        status = _status(r)
        color = "green" if status == "PASS" else "red"
        cells = [r.case.description, *([r.case.prompt] if many_prompts else []), r.target]
        cells += [f"[{color}]{status}[/]" + (" (cached)" if r.cached else ""), f"{r.score:.2f}"]
        out = r.output
        cells += [_money(out.cost_usd if out else None), _ms(out.latency_ms if out else None), r.reason]
        cases.add_row(*cells)
    console.print(cases)
    summaries(console, [run.summary(t) for t in run.targets])
    verdict(console, decision)


def summaries(console: Any, rows: list[Summary]) -> None:
    from rich.table import Table

    figures = Table(title="By target")
    for name in ("target", "cases", "passed", "pass rate", "errors", "cached", "cost USD", "mean cost USD", "p50 ms"):
        figures.add_column(name, justify="right" if name != "target" else "left")
    for s in rows:
        figures.add_row(
            s.target,
            str(s.cases),
            str(s.passed),
            f"{s.pass_rate:.1%}",
            str(s.errors),
            str(s.cached),
            _money(s.cost_usd),
            _money(s.mean_cost_usd),
            _ms(s.latency_p50_ms),
        )
    console.print(figures)


def verdict(console: Any, decision: Decision) -> None:
    for f in decision.flips:
        arrow = "pass -> FAIL" if not f.now_passed else "fail -> pass"
        console.print(
            f"flipped: {f.description} [{f.key}] on {f.target}: {arrow}" + (f" ({f.reason})" if f.reason else ""),
            markup=False,
        )
    if decision.missing:
        console.print(f"{len(decision.missing)} baseline case(s) not in this run", markup=False)
    if decision.passed:
        console.print(f"[green]PASSED[/]: pass rate {decision.pass_rate:.1%}")
    else:
        console.print("[red]FAILED[/]: " + "; ".join(decision.reasons))


def compare_table(run: SuiteResult, decision: Decision) -> None:
    """Two targets side by side (figures and the cases that flipped from the first to the second)."""
    from rich.console import Console

    console = Console(width=None if sys.stdout.isatty() else 200)
    summaries(console, [run.summary(t) for t in run.targets])
    verdict(console, decision)


@contextmanager
def progress(total: int, environ: Mapping[str, str]) -> Iterator[Callable[[CaseResult], None] | None]:
    """A progress bar on stderr while cases run, when stderr is a terminal and ``CI`` is not set."""
    if environ.get("CI") or not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console
    from rich.progress import Progress

    with Progress(console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task("cases", total=total)
        yield lambda _result: bar.advance(task)
