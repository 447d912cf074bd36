"""Drift watch scores kept next to the ledger: one row per graded sample, keyed by request id.

The drift stage (``engine/drift/stage.py``) grades a sampled answer after its ledger row was
written, so the score is a row of its own table, joined to the ledger on ``request_id`` like
feedback (SQLite ``breakwater_eval_scores``, PostgreSQL ``<table>_eval_scores``). It holds the
score, the pass and which assertion types failed: never the prompt, the answer or a judge's
reason, which may hold what the route's capture rules forbid storing. Retention deletes it with
the ledger's rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import orjson

from breakwater.engine.drift.stage import Score

EVAL_SCORE_COLUMNS = ("request_id", "ts", "route", "score", "passed", "failed")
"""The eval score table's columns, in every store's INSERT and SELECT order."""


def score_values(score: Score) -> list[Any]:
    """The column values in ``EVAL_SCORE_COLUMNS`` order; the failed types as a JSON list."""
    return [
        score.request_id, score.ts, score.route, score.score, score.passed, orjson.dumps(list(score.failed)).decode()
    ]  # fmt: skip


def score_from_values(values: Sequence[Any]) -> Score:
    """The score ``values`` gave (read back from a store)."""
    request_id, ts, route, score, passed, failed = values
    return Score(request_id, float(ts), route, float(score), bool(passed), tuple(orjson.loads(failed)))


class EvalScoreStore(Protocol):
    """The ledger store's eval score side (``SqliteLedger``, ``PostgresLedger``)."""

    async def write_eval_score(self, score: Score) -> None: ...

    async def fetch_eval_scores(self, *, route: str | None = None, since: float = 0.0) -> list[Score]: ...
