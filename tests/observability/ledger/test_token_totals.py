"""The ledger's token sums for cost reports (observability/ledger/token_totals.py): the same
answers from SQLite and PostgreSQL, cost exact, cache hits and unrouted requests left out."""

from __future__ import annotations

import dataclasses
from decimal import Decimal

import pytest

from breakwater.observability.ledger import LedgerRow, SqliteLedger
from breakwater.observability.ledger.postgres import PostgresLedger
from breakwater.observability.ledger.token_totals import Throughput, throughput, token_totals
from tests.observability.ledger.conftest import Holding
from tests.observability.ledger.rows import START, make_row

Store = SqliteLedger | PostgresLedger


def _row(n: int, ts: float, route: str = "chat", **fields: object) -> LedgerRow:
    base = dataclasses.replace(
        make_row(0),
        id=f"t{n}",
        ts=ts,
        route=route,
        cache=None,
        tags={},
        input_tokens=1000,
        cached_input_tokens=100,
        cache_write_tokens=10,
        output_tokens=200,
        reasoning_tokens=20,
        cost_usd=Decimal("0.0000000001"),
    )
    return dataclasses.replace(base, **fields)  # type: ignore[arg-type]


ROWS = [
    _row(1, START + 1, tags={"tier": "batch"}),
    _row(2, START + 2, cost_usd=Decimal("1.2345678901")),
    _row(3, START + 61, route="other", cost_usd=None),
    _row(4, START + 62, cache="hit", input_tokens=0, output_tokens=0),  # served from the cache
    _row(5, START + 63, deployment="", input_tokens=5, output_tokens=0),  # never routed
    _row(6, START - 1),  # before the window
]


@pytest.fixture
async def store(ledger_holding: Holding) -> Store:
    """Each store in turn, holding ``ROWS``."""
    return await ledger_holding(ROWS)


async def test_sums_per_route_deployment_and_model(store: Store) -> None:
    """Two chat requests summed with their exact cost; other's unpriced request counted as such."""
    chat, other = await token_totals(store, since=START, until=START + 3600)
    assert (chat.route, chat.requests, chat.input_tokens, chat.cached_input_tokens, chat.cache_write_tokens) == (
        "chat",
        2,
        2000,
        200,
        20,
    )
    assert (chat.output_tokens, chat.reasoning_tokens, chat.cost_usd, chat.unpriced) == (
        400,
        40,
        Decimal("1.2345678902"),
        0,
    )
    assert (other.route, other.requests, other.cost_usd, other.unpriced) == ("other", 1, Decimal(0), 1)
    assert chat.tag is None and chat.model == "gpt-4o-mini"


async def test_split_by_a_tag(store: Store) -> None:
    """With a tag key, each value (and its absence) is a slice of its own."""
    slices = await token_totals(store, since=START, until=START + 3600, tag_key="tier")
    assert {(s.route, s.tag, s.requests) for s in slices} == {
        ("chat", "batch", 1),
        ("chat", None, 1),
        ("other", None, 1),
    }


async def test_throughput_finds_the_busiest_bucket(store: Store) -> None:
    """Minute 0 holds two requests (2,400 tokens), minute 1 one: the peak is minute 0's."""
    rate = await throughput(store, since=START, until=START + 3600, bucket_s=60)
    assert rate == Throughput(3000, 600, 2400, START, 60)
    other = await throughput(store, since=START, until=START + 3600, bucket_s=60, routes=("other",))
    assert (other.peak_tokens, other.peak_at) == (1200, START + 60)


async def test_an_empty_window(store: Store) -> None:
    """Nothing in the window: no slices, no tokens, no peak."""
    assert await token_totals(store, since=START + 7200, until=START + 9000) == []
    assert await throughput(store, since=START + 7200, until=START + 9000, bucket_s=60) == Throughput(0, 0, 0, None, 60)
