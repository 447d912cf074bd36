"""Running a suite: every case on every target, a bounded number at once, each graded (docs/evals.md).

``run_suite(suite, targets, options)`` is the library entry point (``breakwater eval`` and
``eval gate`` use it; so can a canary step): it prints nothing and returns a ``SuiteResult``.
A case's answer may come from a ``CaseCache`` instead of the target: keyed by the target's label
and identity and the request body, so an unchanged case on the same model is not asked again;
its grading is always redone, so changing an assertion needs no call.
"""

from __future__ import annotations

import asyncio
import hashlib
import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson

from breakwater.engine.evals.asserts import Assertion, Output, Verdict
from breakwater.engine.evals.model_graded import Graders, evaluate
from breakwater.engine.evals.suite import Case, Suite
from breakwater.engine.evals.target import Target
from breakwater.engine.ports import Clock

DEFAULT_CONCURRENCY = 4


@dataclass(frozen=True, slots=True)
class EvalTarget:
    """A target as a run uses it: the parameters every case sends, and what identifies its
    answers besides its label (a configuration's hash, a server's URL) for the cache."""

    target: Target
    params: Mapping[str, Any] = field(default_factory=dict)
    identity: str = ""

    @property
    def label(self) -> str:
        return self.target.label


class CaseCache(Protocol):
    """Answers kept between runs, by key (``cli/eval_cache.py`` keeps them in files)."""

    def get(self, key: str) -> Mapping[str, Any] | None: ...

    def put(self, key: str, entry: Mapping[str, Any]) -> None: ...


@dataclass(frozen=True, slots=True)
class CaseResult:
    case: Case
    target: str
    verdict: Verdict | None
    output: Output | None
    #: why there is no output (the target's error)
    error: str | None = None
    cached: bool = False
    model: str | None = None

    @property
    def passed(self) -> bool:
        return self.verdict is not None and self.verdict.passed

    @property
    def score(self) -> float:
        return 0.0 if self.verdict is None else self.verdict.score

    @property
    def reason(self) -> str:
        """Why it failed: the error, or the failed assertions' reasons (empty when it passed)."""
        if self.error is not None:
            return self.error
        if self.verdict is None or self.verdict.passed:
            return ""
        failed = [f"{_name(g.assertion)} failed ({g.reason})" for g in self.verdict.grades if not g.passed]
        return "; ".join(failed) or f"score {self.verdict.score:.3f} under the threshold"


@dataclass(frozen=True, slots=True)
class Summary:
    """One target's results in figures."""

    target: str
    cases: int
    passed: int
    errors: int
    cached: int
    cost_usd: float | None
    mean_cost_usd: float | None
    latency_p50_ms: float | None

    @property
    def pass_rate(self) -> float:
        return 1.0 if self.cases == 0 else self.passed / self.cases


@dataclass(frozen=True, slots=True)
class SuiteResult:
    results: tuple[CaseResult, ...]
    targets: tuple[str, ...]
    duration_s: float

    def of(self, target: str) -> list[CaseResult]:
        return [r for r in self.results if r.target == target]

    def summary(self, target: str | None = None) -> Summary:
        """The figures of one target's results (``None``: all of them)."""
        chosen = list(self.results) if target is None else self.of(target)
        costs = [r.output.cost_usd for r in chosen if r.output is not None and r.output.cost_usd is not None]
        latencies = [r.output.latency_ms for r in chosen if r.output is not None and r.output.latency_ms is not None]
        return Summary(
            target=target or "all",
            cases=len(chosen),
            passed=sum(r.passed for r in chosen),
            errors=sum(r.error is not None for r in chosen),
            cached=sum(r.cached for r in chosen),
            cost_usd=sum(costs) if costs else None,
            mean_cost_usd=sum(costs) / len(costs) if costs else None,
            latency_p50_ms=statistics.median(latencies) if latencies else None,
        )

    @property
    def pass_rate(self) -> float:
        return self.summary().pass_rate


@dataclass(slots=True)
class RunOptions:
    """How to run: the bound on cases at once, the cache, the graders, a progress callback."""

    clock: Clock
    concurrency: int = DEFAULT_CONCURRENCY
    cache: CaseCache | None = None
    #: the graders of a case, by its judge's provider id (``None``: the case names none)
    graders: Callable[[Case], Graders] = lambda case: Graders()
    #: called after each case, e.g. to advance a progress bar
    progress: Callable[[CaseResult], None] | None = None


def _name(a: Assertion) -> str:
    return ("not-" if a.negate else "") + a.type


def cache_key(target: EvalTarget, body: Mapping[str, Any]) -> str:
    """What identifies a case's answer: the target's label and identity, and the request body."""
    raw = orjson.dumps([target.label, target.identity, body], option=orjson.OPT_SORT_KEYS, default=str)
    return hashlib.sha256(raw).hexdigest()


async def run_suite(suite: Suite | Sequence[Case], targets: Sequence[EvalTarget], options: RunOptions) -> SuiteResult:
    """Every case of ``suite`` (or the cases given) on every target, at most ``options.concurrency``
    at once, graded; the results in target order, then case order."""
    cases = suite.cases if isinstance(suite, Suite) else suite
    if options.concurrency < 1:
        raise ValueError("concurrency must be at least 1")
    bound = asyncio.Semaphore(options.concurrency)
    started = options.clock.monotonic()

    async def one(case: Case, target: EvalTarget) -> CaseResult:
        async with bound:
            result = await _run_case(case, target, options)
        if options.progress is not None:
            options.progress(result)
        return result

    jobs = [one(case, target) for target in targets for case in cases]
    results = await asyncio.gather(*jobs)
    return SuiteResult(tuple(results), tuple(t.label for t in targets), options.clock.monotonic() - started)


async def _run_case(case: Case, target: EvalTarget, options: RunOptions) -> CaseResult:
    body = {**target.params, **case.body}
    key = cache_key(target, body)
    entry = options.cache.get(key) if options.cache is not None else None
    cached = entry is not None
    output: Output | None = None
    model: str | None = None
    if entry is not None:
        output, model = _output_of(entry), entry.get("model")
    if output is None:
        cached = False
        reply = await target.target.ask(body)
        if reply.output is None:
            return CaseResult(case, target.label, None, None, reply.error or "no answer", model=reply.model)
        output, model = reply.output, reply.model
        if options.cache is not None:
            options.cache.put(key, _entry_of(output, model))
    verdict = await evaluate(case.assertions, output, case.threshold, options.graders(case))
    return CaseResult(case, target.label, verdict, output, None, cached, model)


def _entry_of(output: Output, model: str | None) -> dict[str, Any]:
    return {
        "text": output.text,
        "cost_usd": output.cost_usd,
        "latency_ms": output.latency_ms,
        "logprobs": None if output.logprobs is None else list(output.logprobs),
        "tool_calls": None if output.tool_calls is None else list(output.tool_calls),
        "tools": None if output.tools is None else list(output.tools),
        "prompt": output.prompt,
        "model": model,
    }


def _output_of(entry: Mapping[str, Any]) -> Output | None:
    """A kept answer, or ``None`` when the entry is unreadable (the case is asked again)."""
    try:
        return Output(
            text=str(entry["text"]),
            cost_usd=entry.get("cost_usd"),
            latency_ms=entry.get("latency_ms"),
            logprobs=entry.get("logprobs"),
            tool_calls=entry.get("tool_calls"),
            tools=entry.get("tools"),
            prompt=str(entry.get("prompt") or ""),
        )
    except (KeyError, TypeError):
        return None
