"""``compare``: a route's variants side by side from a seeded ledger, the same figures from both
stores (SQLite and PostgreSQL), with each arm's difference from the control and its test."""

from __future__ import annotations

import dataclasses
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from breakwater.observability.ledger import LedgerRow, SqliteLedger
from breakwater.observability.ledger.compare import compare, public
from breakwater.observability.ledger.feedback import Feedback
from breakwater.observability.ledger.postgres import PostgresLedger

from .conftest import Holding
from .rows import START, make_row

Store = SqliteLedger | PostgresLedger


def _row(
    n: int, variant: str | None, i: int, *, slow: int, errors_every: int, refusals_every: int, cost: str
) -> LedgerRow:
    return dataclasses.replace(
        make_row(n),
        request_id=f"req-{variant}-{i}",
        ts=START + n,
        route="chat",
        variant=variant,
        status=500 if i % errors_every == 0 else 200,
        latency_ms=float(slow + i),
        ttft_ms=float(slow // 10 + i) if i % 2 == 0 else None,
        cost_usd=Decimal(cost),
        refused=i % refusals_every == 0,
        finish_reason="length" if i % refusals_every == 0 else "stop",
    )


#: 100 requests per arm: the canary errs, refuses and runs long ten times as often, and is slower
ROWS = [
    *(_row(i, "control", i, slow=100, errors_every=50, refusals_every=25, cost="0.001") for i in range(100)),
    *(_row(100 + i, "canary", i, slow=200, errors_every=5, refusals_every=10, cost="0.002") for i in range(100)),
    _row(200, "retired", 0, slow=100, errors_every=50, refusals_every=25, cost="0.001"),
    dataclasses.replace(make_row(201), ts=START + 201, route="chat", variant=None),  # before variants
    dataclasses.replace(make_row(202), ts=START + 202, route="other", variant="control"),
    dataclasses.replace(make_row(203), ts=START - 10, route="chat", variant="control"),  # outside the window
]


@pytest.fixture
async def store(ledger_holding: Holding) -> Store:
    """Each store in turn, holding ``ROWS``."""
    return await ledger_holding(ROWS)


async def _report(store: Store, **kw: Any) -> dict[str, Any]:
    return public(await compare(store, route="chat", since=START, until=START + 1000, **kw))


async def test_each_variants_figures(store: Store) -> None:
    """Requests, rates, nearest-rank percentiles, exact cost per request; configured arms first
    (one with no requests too), then variants only the ledger knows."""
    report = await _report(store, arms=["control", "canary", "off"])
    by = {v["variant"]: v for v in report["variants"]}
    assert [v["variant"] for v in report["variants"]] == ["control", "canary", "off", "retired"]
    control, canary = by["control"], by["canary"]
    assert (control["requests"], control["errors"], control["error_rate"]) == (100, 2, 0.02)
    assert (canary["requests"], canary["errors"], canary["error_rate"]) == (100, 20, 0.2)
    assert (control["latency_p50_ms"], control["latency_p95_ms"], control["ttft_p50_ms"]) == (149.0, 194.0, 58.0)
    assert (canary["latency_p50_ms"], canary["latency_p95_ms"], canary["ttft_p50_ms"]) == (249.0, 294.0, 68.0)
    assert control["latency_mean_ms"] == pytest.approx(149.5)
    assert (control["cost_per_request_usd"], canary["cost_per_request_usd"]) == ("0.0010000000", "0.0020000000")
    assert (control["refusal_rate"], canary["refusal_rate"]) == (0.04, 0.1)
    assert (control["length_share"], canary["length_share"]) == (0.04, 0.1)
    assert control["feedback_score"] is None and control["feedback_count"] == 0
    assert by["off"]["requests"] == 0 and by["off"]["error_rate"] is None
    assert by["retired"]["requests"] == 1


async def test_differences_from_the_control_and_their_significance(store: Store) -> None:
    """The canary's error rate and latency differ significantly; its refusal rate (4% vs 10% of
    100) does not; the control has no comparison of its own."""
    report = await _report(store, arms=["control", "canary"])
    control, canary = report["variants"][0], report["variants"][1]
    assert report["control"] == "control" and control["control"] and control["vs_control"] is None
    vs = canary["vs_control"]
    assert vs["error_rate"]["difference"] == pytest.approx(0.18) and vs["error_rate"]["significant"] is True
    # pooled 22/200: z = 0.18 / sqrt(0.11 * 0.89 * (2 / 100)) = 4.07
    assert vs["error_rate"]["p_value"] == pytest.approx(4.74e-5, rel=0.01)
    assert vs["latency_mean_ms"]["difference"] == pytest.approx(100.0) and vs["latency_mean_ms"]["significant"]
    assert vs["refusal_rate"]["significant"] is False
    assert vs["latency_p50_ms"] == {"difference": 100.0, "p_value": None, "significant": None}
    assert vs["cost_per_request_usd"]["significant"] is True
    assert vs["feedback_score"]["p_value"] is None


async def test_the_control_may_be_another_arm(store: Store) -> None:
    report = await _report(store, arms=["control", "canary"], control="canary")
    assert report["variants"][1]["control"] and report["variants"][0]["vs_control"]["error_rate"][
        "difference"
    ] == pytest.approx(-0.18)


async def test_the_feedback_score_from_the_feedback_table(store: Store) -> None:
    """Each variant's mean feedback score over its scored requests (each request's newest)."""
    scores = [(f"req-control-{i}", 1.0) for i in range(10)] + [(f"req-canary-{i}", float(i % 2)) for i in range(10)]
    key = make_row(0).key_id  # the seeded rows' key: feedback counts for the key that sent the request
    for request_id, score in scores:
        await store.write_feedback(Feedback(request_id, START + 500, key, 1.0 - score, None, {}))
        await store.write_feedback(Feedback(request_id, START + 501, key, score, None, {}))  # the newest counts
    await store.write_feedback(Feedback("req-canary-0", START + 502, "another-key", 1.0, None, {}))  # not its key
    report = await _report(store, arms=["control", "canary"])
    control, canary = report["variants"][0], report["variants"][1]
    assert (control["feedback_count"], control["feedback_score"]) == (10, 1.0)
    assert (canary["feedback_count"], canary["feedback_score"]) == (10, 0.5)
    assert canary["vs_control"]["feedback_score"]["difference"] == -0.5
    assert canary["vs_control"]["feedback_score"]["significant"] is True


async def test_an_empty_or_missing_ledger(tmp_path: Path) -> None:
    """No file yet: no variants (the configured arms with 0 requests)."""
    report = await compare(SqliteLedger(tmp_path / "none.db"), route="chat", since=0, until=1, arms=["a"])
    assert [v["requests"] for v in report["variants"]] == [0]
