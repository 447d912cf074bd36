"""The runner: cases on targets within the concurrency bound, graded; the cache avoids a call
(and regrades), opting out asks again; the gate's pass rate, baseline and flipped cases."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from breakwater.engine.evals.asserts import Output
from breakwater.engine.evals.gate import baseline_of, check_baseline, decide
from breakwater.engine.evals.runner import EvalTarget, RunOptions, run_suite
from breakwater.engine.evals.suite import Case, load_suite
from breakwater.engine.evals.target import Reply
from breakwater.infra.clock import ManualClock


class Scripted:
    """A target answering from a table (``answers``: prompt text -> answer), counting its calls;
    with ``hold``, each call waits until the test releases it."""

    def __init__(self, answers: Mapping[str, str], label: str = "fake:a", hold: bool = False) -> None:
        self.answers = answers
        self.label = label
        self.calls: list[Mapping[str, Any]] = []
        self.in_flight = 0
        self.most = 0
        self.release = asyncio.Event()
        #: set once ``wanted`` calls are in flight at the same time
        self.reached = asyncio.Event()
        self.wanted = 0
        if not hold:
            self.release.set()

    async def ask(self, body: Mapping[str, Any]) -> Reply:
        self.calls.append(body)
        self.in_flight += 1
        self.most = max(self.most, self.in_flight)
        if self.wanted and self.in_flight >= self.wanted:
            self.reached.set()
        try:
            await self.release.wait()
        finally:
            self.in_flight -= 1
        question = body["messages"][-1]["content"]
        if question not in self.answers:
            return Reply(None, "HTTP 500: no answer", 500)
        return Reply(Output(self.answers[question], cost_usd=0.001, latency_ms=5.0, prompt=question), model="m-1")

    async def aclose(self) -> None:
        return None


class DictCache:
    """``CaseCache`` in memory."""

    def __init__(self) -> None:
        self.entries: dict[str, Mapping[str, Any]] = {}

    def get(self, key: str) -> Mapping[str, Any] | None:
        return self.entries.get(key)

    def put(self, key: str, entry: Mapping[str, Any]) -> None:
        self.entries[key] = entry


def cases(tmp_path: Path, countries: list[str], assertion: dict[str, Any] | None = None) -> tuple[Case, ...]:
    suite = {
        "prompts": ["Capital of {{ c }}?"],
        "tests": [
            {"description": c, "vars": {"c": c}, "assert": [assertion or {"type": "icontains", "value": "paris"}]}
            for c in countries
        ],
    }
    path = tmp_path / "suite.yaml"
    path.write_text(yaml.safe_dump(suite))
    return load_suite(path).cases


ANSWERS = {"Capital of France?": "Paris.", "Capital of Spain?": "Madrid.", "Capital of Peru?": "Lima."}


async def test_cases_are_graded_in_order_and_errors_fail(tmp_path: Path) -> None:
    """Each case's verdict, its reason when failing; a target error fails the case with the error."""
    target = Scripted(ANSWERS)
    run = await run_suite(
        cases(tmp_path, ["France", "Spain", "Chile"]),
        [EvalTarget(target, {"temperature": 0})],
        RunOptions(ManualClock()),
    )
    assert [r.passed for r in run.results] == [True, False, False]
    assert run.results[1].reason == "icontains failed (output contains 'paris')"
    assert run.results[2].error == "HTTP 500: no answer" and run.results[2].reason == "HTTP 500: no answer"
    assert target.calls[0] == {"temperature": 0, "messages": [{"role": "user", "content": "Capital of France?"}]}
    summary = run.summary()
    assert (summary.cases, summary.passed, summary.errors) == (3, 1, 1) and summary.pass_rate == pytest.approx(1 / 3)
    assert summary.cost_usd == pytest.approx(0.002) and summary.latency_p50_ms == 5.0


async def test_the_concurrency_bound_is_honoured(tmp_path: Path) -> None:
    """With a bound of 2, two cases are in flight and the others wait until they finish."""
    target = Scripted(ANSWERS, hold=True)
    many = cases(tmp_path, ["France"] * 6)
    task = asyncio.create_task(run_suite(many, [EvalTarget(target)], RunOptions(ManualClock(), concurrency=2)))
    target.wanted = 2
    await target.reached.wait()
    for _ in range(20):  # give any case beyond the bound every chance to start
        await asyncio.sleep(0)
    assert len(target.calls) == 2
    target.release.set()
    run = await task
    assert target.most == 2 and len(target.calls) == 6 and all(r.passed for r in run.results)


async def test_a_cache_hit_avoids_the_call_and_regrades(tmp_path: Path) -> None:
    """A second run asks nothing; a changed assertion is graded on the kept answer; --no-cache asks again."""
    cache = DictCache()
    target = Scripted(ANSWERS)
    first = await run_suite(cases(tmp_path, ["France"]), [EvalTarget(target)], RunOptions(ManualClock(), cache=cache))
    assert len(target.calls) == 1 and not first.results[0].cached
    again = await run_suite(
        cases(tmp_path, ["France"], {"type": "not-contains", "value": "Paris"}),
        [EvalTarget(target)],
        RunOptions(ManualClock(), cache=cache),
    )
    assert len(target.calls) == 1 and again.results[0].cached and not again.results[0].passed
    assert again.results[0].output is not None and again.results[0].output.cost_usd == 0.001
    other = await run_suite(
        cases(tmp_path, ["France"]), [EvalTarget(target, identity="v2")], RunOptions(ManualClock(), cache=cache)
    )
    assert len(target.calls) == 2 and not other.results[0].cached  # another configuration: asked again
    await run_suite(cases(tmp_path, ["France"]), [EvalTarget(target)], RunOptions(ManualClock(), cache=None))
    assert len(target.calls) == 3


async def test_errors_are_not_cached(tmp_path: Path) -> None:
    """A case whose target failed is asked again next time."""
    cache = DictCache()
    target = Scripted({})
    for _ in range(2):
        await run_suite(cases(tmp_path, ["France"]), [EvalTarget(target)], RunOptions(ManualClock(), cache=cache))
    assert len(target.calls) == 2


async def test_the_gate_baseline_and_flipped_cases(tmp_path: Path) -> None:
    """A baseline from a good run; a worse run fails against it, naming the flipped cases; a margin forgives."""
    suite = cases(tmp_path, ["France", "Spain"], {"type": "icontains-any", "value": ["paris", "madrid"]})
    good = await run_suite(
        suite, [EvalTarget(Scripted(ANSWERS, label="breakwater:current"))], RunOptions(ManualClock())
    )
    worse_answers = {**ANSWERS, "Capital of Spain?": "Barcelona."}
    worse = await run_suite(
        suite, [EvalTarget(Scripted(worse_answers, label="breakwater:candidate"))], RunOptions(ManualClock())
    )
    baseline = check_baseline(baseline_of(good))
    assert decide(good).passed and decide(good, baseline=baseline).passed
    decision = decide(worse, min_pass_rate=0.5, baseline=baseline)
    assert not decision.passed and decision.baseline_pass_rate == 1.0
    assert "regressed from the baseline's 100.0%" in decision.reasons[0]
    assert [(f.description, f.was_passed, f.now_passed) for f in decision.flips] == [("Spain", True, False)]
    assert decide(worse, min_pass_rate=0.5, baseline=baseline, margin=0.5).passed
    assert not decide(worse).passed and "under the minimum 100.0%" in decide(worse).reasons[0]
    with pytest.raises(ValueError, match="not a baseline"):
        check_baseline({"cases": {}})
