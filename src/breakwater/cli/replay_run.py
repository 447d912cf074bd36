"""Running a replay: each captured row rebuilt, sent to the candidate, and both answers graded
(``breakwater replay``, docs/evals.md#replay).

The logged answer (``row.response``) is graded as it was logged: its cost and latency are the
row's. The candidate's answer is graded as its target returned it. Both are graded by the same
assertions (``--asserts``; the model-graded ones by the embedder and the judge route), and the
candidate's is compared with the logged one: exactly, by embedding similarity, and, with a judge,
by the judge's factuality verdict with the logged answer as the reference.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from breakwater.engine.evals.asserts import Assertion, Output, Verdict
from breakwater.engine.evals.model_graded import Graders, evaluate
from breakwater.engine.evals.target import Reply, Target, prompt_text
from breakwater.engine.router.checks import JudgeCall
from breakwater.engine.similarity import Similarity
from breakwater.observability.ledger.replay import Case, rebuild
from breakwater.observability.ledger.row import LedgerRow

#: a model-graded assertion's reason when its judge could not be asked (``model_graded.py``)
_JUDGE_FAILED = "the judge route failed"


@dataclass(frozen=True, slots=True)
class Grading:
    """How the two answers are graded and compared.

    Args:
        assertions: graded on both answers (``--asserts``).
        graders: what the assertions' model-graded types need.
        similarity: the two answers' embedding similarity (``None``: not measured).
        judge: asks whether the candidate's answer agrees with the logged one (``None``: no judge).
    """

    assertions: Sequence[Assertion] = ()
    graders: Graders = field(default_factory=Graders)
    similarity: Similarity | None = None
    judge: JudgeCall | None = None


async def replay(
    rows: Sequence[LedgerRow], candidate: Target, grading: Grading, *, concurrency: int
) -> tuple[list[Case], Counter[str]]:
    """The cases of the rows that could be rebuilt, in the rows' order, and the others counted by
    why they were skipped; at most ``concurrency`` candidate calls at once."""
    skipped: Counter[str] = Counter()
    work: list[tuple[LedgerRow, dict[str, Any]]] = []
    for row in rows:
        body = rebuild(row)
        if isinstance(body, str):
            skipped[body] += 1
        else:
            work.append((row, body))
    slots = asyncio.Semaphore(concurrency)

    async def one(row: LedgerRow, body: dict[str, Any]) -> Case:
        async with slots:
            reply = await candidate.ask(body)
        return await _graded(row, body, reply, grading)

    cases = await asyncio.gather(*(one(row, body) for row, body in work))
    return list(cases), skipped


async def _graded(row: LedgerRow, body: dict[str, Any], reply: Reply, grading: Grading) -> Case:
    logged = row.response or ""
    baseline = Output(
        text=logged,
        cost_usd=None if row.cost_usd is None else float(row.cost_usd),
        latency_ms=row.latency_ms,
        prompt=prompt_text(body.get("messages")),
    )
    base_verdict = await _verdict(grading, baseline)
    output = reply.output
    if output is None:
        return Case(
            row, None, reply.error or "no answer", None, None,
            baseline_pass=None if base_verdict is None else base_verdict.passed,
            candidate_pass=None if base_verdict is None else False,
            baseline_reasons=_failed(base_verdict),
            candidate_reasons=(reply.error or "no answer",),
        )  # fmt: skip
    verdict = await _verdict(grading, output)
    similarity = None if grading.similarity is None else await grading.similarity(logged, output.text)
    return Case(
        row,
        output.text,
        None,
        output.cost_usd,
        output.latency_ms,
        exact=output.text.strip() == logged.strip(),
        similarity=similarity,
        baseline_pass=None if base_verdict is None else base_verdict.passed,
        candidate_pass=None if verdict is None else verdict.passed,
        judged_agree=await _judged(grading.judge, logged, output),
        baseline_reasons=_failed(base_verdict),
        candidate_reasons=_failed(verdict),
    )


async def _verdict(grading: Grading, output: Output) -> Verdict | None:
    if not grading.assertions:
        return None
    return await evaluate(grading.assertions, output, None, grading.graders)


async def _judged(judge: JudgeCall | None, logged: str, output: Output) -> bool | None:
    """The judge's factuality verdict on the candidate's answer, the logged one as the reference
    (``None``: no judge, or it could not be asked)."""
    if judge is None:
        return None
    verdict = await evaluate([Assertion("factuality", value=logged)], output, None, Graders(judge=judge))
    grade = verdict.grades[0]
    return None if grade.reason.startswith(_JUDGE_FAILED) else grade.passed


def _failed(verdict: Verdict | None) -> tuple[str, ...]:
    if verdict is None:
        return ()
    return tuple(f"{g.assertion.type}: {g.reason}" for g in verdict.grades if not g.passed)
