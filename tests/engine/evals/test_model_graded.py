"""The model-graded assertions (similar, llm-rubric, factuality) with a scripted judge and
similarity, and ``evaluate`` over both kinds."""

from __future__ import annotations

from typing import Any

import pytest

from breakwater.core.types import ChatRequest, ChatResponse, Choice, Message, TextPart
from breakwater.engine.evals.asserts import Output, parse_assertion
from breakwater.engine.evals.model_graded import Graders, evaluate, needs


def judge_saying(text: str, seen: list[ChatRequest] | None = None) -> Any:
    async def judge(request: ChatRequest) -> ChatResponse:
        if seen is not None:
            seen.append(request)
        return ChatResponse(
            id="j", model="judge", created=0, choices=[Choice(0, Message("assistant", [TextPart(text)]), "stop")]
        )

    return judge


async def failing_judge(request: ChatRequest) -> ChatResponse:
    raise ConnectionError("down")


async def similarity(a: str, b: str) -> float | None:
    # a scripted embedder: alike when they share their first word
    if not a.strip() or not b.strip():
        return None
    return 0.9 if a.split()[0].strip(",.").lower() == b.split()[0].strip(",.").lower() else 0.2


def assertion(**raw: Any) -> Any:
    return parse_assertion(raw, "assert[0]")


OUT = Output("Paris is the capital of France.", prompt="What is the capital of France?")


async def test_similar_takes_the_best_value_and_the_threshold() -> None:
    graders = Graders(similarity=similarity)
    assert (await evaluate([assertion(type="similar", value="Paris, of course")], OUT, graders=graders)).passed
    near = await evaluate([assertion(type="similar", value=["Lyon", "paris"], threshold=0.95)], OUT, graders=graders)
    assert not near.passed and near.grades[0].reason.startswith("similarity 0.9000")
    assert (await evaluate([assertion(type="not-similar", value="Lyon")], OUT, graders=graders)).passed
    empty = await evaluate([assertion(type="similar", value="x")], Output(" "), graders=graders)
    assert not empty.passed and "could not be computed" in empty.grades[0].reason


@pytest.mark.parametrize(
    ("answer", "raw", "passes", "score"),
    [
        ('{"reason": "polite", "pass": true, "score": 0.9}', {}, True, 0.9),
        ('Verdict: {"reason": "rude", "pass": false, "score": 0.2}', {}, False, 0.2),
        ('{"reason": "ok", "pass": true, "score": 0.6}', {"threshold": 0.7}, False, 0.6),
        ('{"reason": "ok", "score": 0.8}', {"threshold": 0.7}, True, 0.8),
        ('{"reason": "no score", "pass": true}', {}, True, 1.0),
        ("It is polite.", {}, False, 0.0),
    ],
)
async def test_llm_rubric(answer: str, raw: dict[str, Any], passes: bool, score: float) -> None:
    seen: list[ChatRequest] = []
    result = await evaluate(
        [assertion(type="llm-rubric", value="is polite", **raw)], OUT, graders=Graders(judge=judge_saying(answer, seen))
    )
    assert result.passed is passes and result.score == pytest.approx(score)
    prompt = seen[0].messages[-1].text()
    assert "is polite" in prompt and OUT.text in prompt and seen[0].temperature == 0


@pytest.mark.parametrize(("answer", "passes"), [("(A)", True), ("B", True), ("C", True), ("(D)", False), ("E", True)])
async def test_factuality_categories(answer: str, passes: bool) -> None:
    seen: list[ChatRequest] = []
    check = assertion(type="factuality", value="Paris is the capital of France")
    result = await evaluate([check], OUT, graders=Graders(judge=judge_saying(answer, seen)))
    assert result.passed is passes and result.grades[0].reason.endswith(answer.strip("()"))
    assert "What is the capital of France?" in seen[0].messages[-1].text()


async def test_a_judge_that_cannot_grade_fails_the_assertion() -> None:
    check = assertion(type="factuality", value="x")
    unread = await evaluate([check], OUT, graders=Graders(judge=judge_saying("maybe?")))
    assert not unread.passed and "no category" in unread.grades[0].reason
    down = await evaluate([check], OUT, graders=Graders(judge=failing_judge))
    assert not down.passed and "ConnectionError" in down.grades[0].reason
    missing = await evaluate([check, assertion(type="similar", value="x")], OUT)
    assert [g.passed for g in missing.grades] == [False, False]
    assert "judge route" in missing.grades[0].reason and "embedder" in missing.grades[1].reason


async def test_both_kinds_weigh_into_one_verdict() -> None:
    checks = [
        assertion(type="contains", value="Paris", weight=3),
        assertion(type="llm-rubric", value="cites a source"),
    ]
    graders = Graders(judge=judge_saying('{"reason": "no source", "pass": false, "score": 0}'))
    assert not (await evaluate(checks, OUT, graders=graders)).passed
    assert (await evaluate(checks, OUT, threshold=0.75, graders=graders)).score == pytest.approx(0.75)
    assert needs(checks) == {"judge"} and needs([assertion(type="similar", value="x")]) == {"embedder"}
