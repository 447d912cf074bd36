"""A captured ledger row rebuilt into the request it recorded, or skipped with the reason; and the
replay's figures from hand-made cases."""

from __future__ import annotations

import dataclasses
from collections import Counter
from decimal import Decimal

import orjson
import pytest

from breakwater.observability.ledger import LedgerRow
from breakwater.observability.ledger.replay import Case, agreement_of, rebuild, report

from .rows import make_row

TURNS = [{"role": "system", "content": ["Be brief."]}, {"role": "user", "content": ["Hi ", "there"]}]


def captured(**fields: object) -> LedgerRow:
    """A captured row of a plain request (no parameters, no tools), with ``fields`` replaced."""
    plain = dict.fromkeys(("temperature", "max_tokens", "top_p", "seed", "response_format", "prompt_name"))
    row = dataclasses.replace(make_row(0), prompt=orjson.dumps(TURNS).decode(), response="Hello.", has_tools=False)
    return dataclasses.replace(row, **{**plain, **fields})  # type: ignore[arg-type]


def test_the_turns_and_parameters_are_rebuilt_as_an_openai_body() -> None:
    """Each captured turn is a message (its text parts joined, as the OpenAI conversion sends
    them); the logged parameters are sent again; no model, no stream."""
    body = rebuild(
        captured(temperature=0.5, top_p=0.9, max_tokens=64, seed=3, response_format="json_object", stream=True)
    )
    assert body == {
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hi there"},
        ],
        "temperature": 0.5,
        "top_p": 0.9,
        "seed": 3,
        "max_completion_tokens": 64,
        "response_format": {"type": "json_object"},
    }


def test_a_row_from_before_the_parameter_columns_is_sent_with_the_defaults() -> None:
    """An older row (parameters and tools unknown) is replayed with the messages alone."""
    assert rebuild(captured(has_tools=None)) == {
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hi there"},
        ]
    }


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"response": None}, "no_answer"),
        ({"has_tools": True}, "tools"),
        ({"response_format": "json_schema"}, "json_schema"),
        ({"prompt_name": "triage"}, "prompt_template"),
        ({"prompt": '[{"role": "user", "content": ["cut sho'}, "truncated"),
        ({"prompt": '[{"role": "tool", "content": ["42"]}]'}, "tools"),
        ({"prompt": '[{"role": "assistant", "content": []}]'}, "tools"),
        ({"prompt": '[{"role": "user", "content": ["look", "[image]"]}]'}, "image"),
        ({"prompt": '{"role": "user"}'}, "tools"),
    ],
)
def test_what_was_not_captured_is_skipped_with_the_reason(fields: dict[str, object], reason: str) -> None:
    """A row whose request cannot be rebuilt names why."""
    assert rebuild(captured(**fields)) == reason


def _case(i: int, text: str | None, **fields: object) -> Case:
    row = dataclasses.replace(captured(), id=f"r{i}", latency_ms=100.0, cost_usd=Decimal("0.002"))
    return Case(
        row, text, None if text else "HTTP 502: down", 0.001 if text else None, 50.0 if text else None, **fields
    )  # type: ignore[arg-type]


def test_the_report_counts_and_orders_the_worst_cases() -> None:
    """Agreement is among the answered cases; a candidate error is the worst case, then a
    regression, then the lowest similarity; cost and latency are each side's means."""
    cases = [
        _case(0, "Hello.", exact=True, similarity=1.0, baseline_pass=True, candidate_pass=True),
        _case(1, "Hi.", exact=False, similarity=0.5, baseline_pass=True, candidate_pass=True),
        _case(2, "Go away.", exact=False, similarity=0.7, baseline_pass=True, candidate_pass=False),
        _case(3, None, baseline_pass=True, candidate_pass=False),
    ]
    r = report(cases, Counter({"tools": 2}), uncaptured=7, threshold=0.9, worst=3)
    assert (r["selected"], r["replayed"], r["skipped"], r["uncaptured"], r["candidate_errors"]) == (6, 4, 2, 7, 1)
    assert r["agreement"]["exact"] == 0.3333 and r["agreement"]["similar"] == 0.3333
    assert r["agreement"]["similarity_mean"] == round((1.0 + 0.5 + 0.7) / 3, 4) and r["agreement"]["judged"] is None
    assert r["pass_rate"] == {"graded": 4, "baseline": 1.0, "candidate": 0.5, "regressions": 2, "fixes": 0}
    assert [w["id"] for w in r["worst"]] == ["r3", "r2", "r1"]
    assert r["worst"][0]["error"] == "HTTP 502: down" and r["worst"][0]["prompt"] == "Hi there"
    assert r["cost"] == {
        "priced": 3,
        "baseline_per_request_usd": "0.002",
        "candidate_per_request_usd": "0.001",
        "delta_usd": "-0.001",
        "ratio": 0.5,
    }
    assert (r["latency"]["baseline_mean_ms"], r["latency"]["candidate_mean_ms"], r["latency"]["delta_mean_ms"]) == (
        100.0,
        50.0,
        -50.0,
    )
    assert agreement_of(r) == 0.3333


def test_agreement_falls_back_to_exact_without_similarity() -> None:
    """With no similarity measured, ``--min-agreement`` holds the exact agreement."""
    r = report([_case(0, "Hello.", exact=True)], Counter(), uncaptured=0, threshold=0.9, worst=5)
    assert r["agreement"]["similarity_measured"] == 0 and agreement_of(r) == 1.0
