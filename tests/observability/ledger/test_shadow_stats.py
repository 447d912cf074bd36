"""``shadow_stats``: the shadow report's headline figures summed by the database, the same as
``shadow_report`` gives from the rows, on both stores."""

from __future__ import annotations

import dataclasses
import random

import pytest

from breakwater.observability.ledger import LedgerRow, SqliteLedger
from breakwater.observability.ledger.postgres import PostgresLedger
from breakwater.observability.ledger.shadow_report import shadow_report
from breakwater.observability.ledger.shadow_stats import shadow_stats

from .conftest import Holding
from .rows import T0, make_row

Store = SqliteLedger | PostgresLedger


def _rows() -> list[LedgerRow]:
    rng = random.Random(5)
    out = []
    for i in range(300):
        route = rng.choice(["chat", "chat", "search"])
        primary = dataclasses.replace(
            make_row(i), request_id=f"req-{i}", route=route, ts=T0 + i, shadow_of=None, status=200
        )
        out.append(primary)
        if rng.random() < 0.6:
            failed = rng.random() < 0.1
            out.append(
                dataclasses.replace(
                    make_row(1000 + i),
                    request_id=f"shadow-{i}",
                    route=f"{route}-candidate",
                    ts=T0 + i + 0.5,
                    shadow_of=f"req-{i}",
                    status=502 if failed else 200,
                    shadow_exact=None if failed or rng.random() < 0.2 else rng.random() < 0.7,
                    shadow_similarity=None if failed or rng.random() < 0.3 else round(rng.random(), 3),
                )
            )
    return out


ROWS = _rows()


@pytest.fixture
async def store(ledger_holding: Holding) -> Store:
    """Each store in turn, holding ``ROWS``."""
    return await ledger_holding(ROWS)


@pytest.mark.parametrize(("route", "since", "until"), [("chat", T0, T0 + 300), ("search", T0 + 50.2, T0 + 200)])
async def test_the_stats_are_the_reports_figures(store: Store, route: str, since: float, until: float) -> None:
    stats = await shadow_stats(store, route=route, since=since, until=until)
    report = shadow_report([r for r in ROWS if since <= r.ts < until], route)
    assert stats["pairs"] > 10
    for name in ("pairs", "candidate_errors", "candidate_error_rate", "exact_agreement", "similarity_measured"):
        assert stats[name] == report[name], name
    assert stats["similarity_mean"] == pytest.approx(report["similarity_mean"], abs=1e-4)


async def test_a_route_without_shadow_calls_has_no_pairs(store: Store) -> None:
    stats = await shadow_stats(store, route="nothing", since=T0, until=T0 + 300)
    assert stats["pairs"] == 0 and stats["exact_agreement"] is None and stats["similarity_mean"] is None
    with pytest.raises(ValueError, match="route"):
        await shadow_stats(store, route="", since=T0, until=T0 + 1)
    with pytest.raises(ValueError, match="after"):
        await shadow_stats(store, route="chat", since=T0, until=T0)
