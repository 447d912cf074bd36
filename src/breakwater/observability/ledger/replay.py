"""Replaying captured requests (``breakwater replay``, docs/evals.md#replay): a ledger row back
into the request it recorded, and the report over the replayed cases.

A captured row keeps the request's turns as text (``observability/capture.py``: each message's
role and text parts, redacted, cut to ``max_chars``) and its parameters (temperature, max_tokens,
top_p, seed, whether it had tools, its ``response_format`` type). What is not kept cannot be sent
again, so such a row is skipped, with the reason counted:

- ``tools``: the tools' schemas (and the assistant's tool calls, the tool results) are not
  captured; an answer to a request without its tools is not the same question;
- ``json_schema``: a ``response_format`` schema is not captured (``json_object`` and ``text``
  are rebuilt: they have none);
- ``image``: an image part is captured as the text ``[image]``;
- ``prompt_template``: a registry prompt's variables are not captured;
- ``truncated``: the captured prompt was cut by ``max_chars`` and is no longer JSON;
- ``no_answer``: the row has no logged answer text to compare with.

The replayed request is always a whole answer (``stream`` off): both latencies are end to end.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import orjson

from breakwater.core.types import ChatRequest, Message, ResponseFormat, Role, TextPart
from breakwater.observability.ledger.row import LedgerRow
from breakwater.providers.openai import chat_body

#: a captured image part (``capture.py`` keeps images as this text)
IMAGE = "[image]"
_ROLES: frozenset[str] = frozenset({"system", "developer", "user", "assistant"})


def rebuild(row: LedgerRow) -> dict[str, Any] | str:
    """The OpenAI chat-completions body ``row`` recorded (``model`` left to the target), or the
    reason it cannot be rebuilt (one of the module docstring's)."""
    if row.response is None:
        return "no_answer"
    if row.has_tools:
        return "tools"
    if row.response_format == "json_schema":
        return "json_schema"
    if row.prompt_name is not None:
        return "prompt_template"
    try:
        turns = orjson.loads(row.prompt or "")
    except orjson.JSONDecodeError:
        return "truncated"
    messages: list[Message] = []
    for turn in turns if isinstance(turns, list) else [None]:
        role = turn.get("role") if isinstance(turn, dict) else None
        parts = turn.get("content") if isinstance(turn, dict) else None
        if role not in _ROLES or not isinstance(parts, list) or not parts:
            return "tools"  # a tool result, or an assistant turn that was only tool calls
        if IMAGE in parts:
            return "image"
        role_of: Role = role
        messages.append(Message(role_of, [TextPart(str(p)) for p in parts]))
    request = ChatRequest(
        model="",
        messages=messages,
        temperature=row.temperature,
        top_p=row.top_p,
        max_tokens=row.max_tokens,
        seed=row.seed,
        response_format=None if row.response_format is None else ResponseFormat(row.response_format),  # type: ignore[arg-type]
    )
    body = chat_body(request, "")
    del body["model"]
    return body


@dataclass(slots=True)
class Case:
    """One replayed row: the logged answer beside the candidate's, and how each was graded."""

    row: LedgerRow
    #: the candidate's answer text, or why there is none
    text: str | None
    error: str | None
    cost_usd: float | None
    latency_ms: float | None
    exact: bool | None = None
    similarity: float | None = None
    #: the assertions' verdicts (``None``: no assertions)
    baseline_pass: bool | None = None
    candidate_pass: bool | None = None
    #: the judge's word that the candidate's answer agrees with the logged one (``None``: no judge)
    judged_agree: bool | None = None
    #: the failed assertions' reasons, each side
    baseline_reasons: tuple[str, ...] = ()
    candidate_reasons: tuple[str, ...] = ()


def report(
    cases: Sequence[Case],
    skipped: Counter[str],
    *,
    uncaptured: int,
    threshold: float,
    worst: int,
) -> dict[str, Any]:
    """The replay's figures: agreement, pass rates, cost and latency side by side, the worst cases.

    Args:
        skipped: rows selected but not sent, by reason.
        uncaptured: the route's rows in the window whose prompt was not captured (never selected).
        threshold: a similarity at or above it counts as agreeing.
        worst: how many of the worst cases to list.
    """
    answered = [c for c in cases if c.error is None]
    exact = [c.exact for c in answered if c.exact is not None]
    similar = [c.similarity for c in answered if c.similarity is not None]
    judged = [c.judged_agree for c in answered if c.judged_agree is not None]
    graded = [c for c in cases if c.baseline_pass is not None]
    return {
        "selected": len(cases) + sum(skipped.values()),
        "replayed": len(cases),
        "skipped": sum(skipped.values()),
        "skipped_by_reason": dict(sorted(skipped.items())),
        "uncaptured": uncaptured,
        "candidate_errors": len(cases) - len(answered),
        "agreement": {
            "exact": _share(sum(exact), len(exact)),
            "similarity_threshold": threshold,
            "similar": _share(sum(s >= threshold for s in similar), len(similar)),
            "similarity_measured": len(similar),
            "similarity_mean": None if not similar else round(sum(similar) / len(similar), 4),
            "judged": _share(sum(judged), len(judged)),
            "judged_measured": len(judged),
        },
        "pass_rate": {
            "graded": len(graded),
            "baseline": _share(sum(bool(c.baseline_pass) for c in graded), len(graded)),
            "candidate": _share(sum(bool(c.candidate_pass) for c in graded), len(graded)),
            "regressions": sum(bool(c.baseline_pass and not c.candidate_pass) for c in graded),
            "fixes": sum(bool(not c.baseline_pass and c.candidate_pass) for c in graded),
        },
        "cost": _cost(answered),
        "latency": _latency(answered),
        "worst": [_case(c) for c in sorted(cases, key=_badness)[:worst]],
    }


def agreement_of(summary: dict[str, Any]) -> float | None:
    """The agreement ``--min-agreement`` holds a replay to: by similarity when it was measured,
    else exact."""
    agreement = summary["agreement"]
    found: float | None = agreement["similar"] if agreement["similarity_measured"] else agreement["exact"]
    return found


def _badness(c: Case) -> tuple[int, float, int]:
    """Worst first: the candidate failed, then passed-to-failed, then the lowest similarity, then
    inexact answers."""
    regressed = bool(c.baseline_pass and not c.candidate_pass) or c.judged_agree is False
    rank = 0 if c.error is not None else 1 if regressed else 2
    return rank, math.inf if c.similarity is None else c.similarity, 0 if c.exact is False else 1


def _case(c: Case) -> dict[str, Any]:
    return {
        "id": c.row.id,
        "request_id": c.row.request_id,
        "ts": c.row.ts,
        "prompt": _last_user_turn(c.row.prompt or ""),
        "baseline": c.row.response,
        "candidate": c.text,
        "error": c.error,
        "exact": c.exact,
        "similarity": c.similarity,
        "baseline_pass": c.baseline_pass,
        "candidate_pass": c.candidate_pass,
        "judged_agree": c.judged_agree,
        "baseline_failed": list(c.baseline_reasons),
        "candidate_failed": list(c.candidate_reasons),
    }


def _last_user_turn(prompt: str) -> str:
    turns = orjson.loads(prompt)
    users = [t for t in turns if t.get("role") == "user"] or turns
    return "".join(str(p) for p in users[-1]["content"]) if users else ""


def _cost(cases: list[Case]) -> dict[str, Any]:
    """Mean cost per request of each side, over the cases both sides priced."""
    pairs = [
        (c.row.cost_usd, Decimal(str(c.cost_usd)))
        for c in cases
        if c.row.cost_usd is not None and c.cost_usd is not None
    ]
    if not pairs:
        return {
            "priced": 0, "baseline_per_request_usd": None, "candidate_per_request_usd": None, "delta_usd": None,
            "ratio": None,
        }  # fmt: skip
    base = sum((b for b, _ in pairs), Decimal(0)) / len(pairs)
    cand = sum((c for _, c in pairs), Decimal(0)) / len(pairs)
    return {
        "priced": len(pairs),
        "baseline_per_request_usd": str(base),
        "candidate_per_request_usd": str(cand),
        "delta_usd": str(cand - base),
        "ratio": None if base == 0 else round(float(cand / base), 4),
    }


def _latency(cases: list[Case]) -> dict[str, Any]:
    """Mean and median latency of each side (end to end), over the answered cases."""
    pairs = [(c.row.latency_ms, c.latency_ms) for c in cases if c.latency_ms is not None]
    base, cand = sorted(b for b, _ in pairs), sorted(c for _, c in pairs)

    def mean(values: list[float]) -> float | None:
        return None if not values else round(sum(values) / len(values), 3)

    base_mean, cand_mean = mean(base), mean(cand)
    return {
        "measured": len(pairs),
        "baseline_mean_ms": base_mean,
        "candidate_mean_ms": cand_mean,
        "delta_mean_ms": None if base_mean is None or cand_mean is None else round(cand_mean - base_mean, 3),
        "baseline_p50_ms": _median(base),
        "candidate_p50_ms": _median(cand),
    }


def _median(values: list[float]) -> float | None:
    """The nearest-rank median of sorted ``values``."""
    return None if not values else values[max(0, -(-len(values) // 2) - 1)]


def _share(part: int, whole: int) -> float | None:
    return None if whole == 0 else round(part / whole, 4)
