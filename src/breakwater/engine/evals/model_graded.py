"""The assertions a model grades, and ``evaluate``, which grades a test's assertions of both kinds.

- ``similar``: the cosine similarity of the output's and ``value``'s embeddings (the best of
  several values) reaches ``threshold`` (default 0.75), by the configured embedder;
- ``llm-rubric``: a judge route reads the output against the rubric in ``value`` and answers JSON
  ``{"reason", "pass", "score"}``; with a ``threshold`` the score must reach it, else ``pass``;
- ``factuality``: a judge route places the output against the reference in ``value`` in one of
  five categories (subset, superset, same details, disagreement, differences that do not matter);
  every category but disagreement (D) passes.

A judge's answer that cannot be read fails the assertion with the reason; so does a suite that
names one of these types when no embedder or judge route is configured.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from breakwater.core.types import ChatRequest, Message, TextPart
from breakwater.engine.evals.asserts import (
    MODEL_TYPES,
    Assertion,
    Grade,
    Graded,
    Output,
    Verdict,
    combine,
    grade,
    graded,
    json_values,
)
from breakwater.engine.router.checks import JudgeCall
from breakwater.engine.similarity import Similarity

#: promptfoo's default for ``similar``
SIMILAR_DEFAULT = 0.75

RUBRIC_SYSTEM = (
    "You grade an output against a rubric. Reply with one JSON object and nothing else: "
    '{"reason": "<why, in one sentence>", "pass": true or false, "score": <a number from 0 to 1>}.'
)
FACTUALITY_SYSTEM = (
    "You compare a submitted answer with an expert answer to a question, for factual content only "
    "(ignore style, grammar and punctuation). Reply with one letter and nothing else:\n"
    "(A) the submission is a subset of the expert answer and fully consistent with it;\n"
    "(B) the submission is a superset of the expert answer and fully consistent with it;\n"
    "(C) the submission contains all the same details as the expert answer;\n"
    "(D) the submission and the expert answer disagree;\n"
    "(E) they differ, but the differences do not matter for factuality."
)
_CATEGORY = re.compile(r"\(?\b([A-E])\b\)?")
FACTUAL_PASS = frozenset("ABCE")


@dataclass(frozen=True, slots=True)
class Graders:
    """What the model-graded assertions need: the embedder's similarity and a judge route's call
    (either ``None`` when not configured)."""

    similarity: Similarity | None = None
    judge: JudgeCall | None = None


def needs(assertions: Sequence[Assertion]) -> set[str]:
    """Which of ``"embedder"`` and ``"judge"`` grading these assertions needs."""
    wanted = set()
    for a in assertions:
        if a.type == "similar":
            wanted.add("embedder")
        elif a.type in MODEL_TYPES:
            wanted.add("judge")
    return wanted


async def evaluate(
    assertions: Sequence[Assertion], output: Output, threshold: float | None = None, graders: Graders | None = None
) -> Verdict:
    """A test's verdict over assertions of both kinds (see ``asserts.verdict``)."""
    graders = graders or Graders()
    grades: list[Grade] = []
    for a in assertions:
        if a.type not in MODEL_TYPES:
            grades.append(grade(a, output))
        else:
            grades.append(graded(a, await _model_grade(a, output, graders)))
    return combine(grades, threshold)


async def _model_grade(a: Assertion, o: Output, graders: Graders) -> Graded:
    if a.type == "similar":
        return await _similar(a, o, graders)
    if graders.judge is None:
        return False, 0.0, f"{a.type} needs a judge route (none configured)"
    try:
        if a.type == "llm-rubric":
            return await _rubric(a, o, graders.judge)
        return await _factuality(a, o, graders.judge)
    except Exception as exc:  # noqa: BLE001 - a judge that fails fails the assertion, with why
        return False, 0.0, f"the judge route failed: {type(exc).__name__}"


async def _similar(a: Assertion, o: Output, graders: Graders) -> Graded:
    if graders.similarity is None:
        return False, 0.0, "similar needs an embedder (cache.embedder; none configured)"
    limit = SIMILAR_DEFAULT if a.threshold is None else a.threshold
    values = [a.value] if isinstance(a.value, str) else list(a.value)
    scores = [s for v in values if (s := await graders.similarity(o.text, v)) is not None]
    if not scores:
        return False, 0.0, "similarity could not be computed (empty output or the embedder failed)"
    best = max(scores)
    return best >= limit, max(0.0, best), f"similarity {best:.4f} (at least {limit:g})"


async def _ask(judge: JudgeCall, system: str, prompt: str) -> str:
    request = ChatRequest(
        model="",
        messages=[Message("system", [TextPart(system)]), Message("user", [TextPart(prompt)])],
        temperature=0,
        max_tokens=300,
    )
    answer = await judge(request)
    return answer.choices[0].message.text() if answer.choices else ""


async def _rubric(a: Assertion, o: Output, judge: JudgeCall) -> Graded:
    text = await _ask(judge, RUBRIC_SYSTEM, f"Rubric:\n{a.value}\n\nOutput:\n{o.text}")
    found = next((v for v in json_values(text) if isinstance(v, dict)), None)
    if found is None:
        return False, 0.0, "the judge's answer is not a JSON verdict"
    reason = str(found.get("reason") or "")
    score = found.get("score")
    passed = found.get("pass")
    if isinstance(score, bool) or not isinstance(score, int | float):
        score = 1.0 if passed is True else 0.0
    score = min(1.0, max(0.0, float(score)))
    if a.threshold is not None:
        return score >= a.threshold, score, f"rubric score {score:g} (at least {a.threshold:g}): {reason}"
    if not isinstance(passed, bool):
        passed = score >= 0.5
    return passed, score, f"rubric {'passed' if passed else 'failed'}: {reason}"


async def _factuality(a: Assertion, o: Output, judge: JudgeCall) -> Graded:
    prompt = f"Question:\n{o.prompt}\n\nExpert answer:\n{a.value}\n\nSubmission:\n{o.text}\n\nCategory:"
    text = await _ask(judge, FACTUALITY_SYSTEM, prompt)
    found = _CATEGORY.search(text.strip())
    if found is None:
        return False, 0.0, "the judge's answer names no category (A-E)"
    category = found.group(1)
    passed = category in FACTUAL_PASS
    return passed, 1.0 if passed else 0.0, f"factuality category {category}"
