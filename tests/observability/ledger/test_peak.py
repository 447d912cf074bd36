"""The ledger's busiest bucket as a rate (``breakwater loadtest --from-ledger``), on both stores."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from breakwater.observability.ledger import SqliteLedger
from breakwater.observability.ledger.peak import peak
from breakwater.observability.ledger.service import Store

from .conftest import Holding
from .rows import START, make_row

#: minute 0: 3 requests on route a and 2 on b; minute 2: 4 on a; minute 5: 1 on b
ROWS = [
    dataclasses.replace(make_row(i), ts=START + offset, route=route)
    for i, (offset, route) in enumerate(
        [
            (1, "a"),
            (20, "a"),
            (59.9, "a"),
            (30, "b"),
            (31, "b"),
            (121, "a"),
            (150, "a"),
            (170, "a"),
            (179, "a"),
            (300, "b"),
        ]
    )
]


@pytest.fixture
async def store(ledger_holding: Holding) -> Store:
    """Each store in turn, holding ``ROWS``."""
    return await ledger_holding(ROWS)


async def test_the_fullest_bucket_of_the_window_and_its_rate(store: Store) -> None:
    """Minute 0 holds 5 requests (3 a + 2 b): the peak, 5/60 per second; by route, a's is minute 2."""
    everything = await peak(store, since=START, until=START + 3600)
    assert everything is not None
    assert (everything.start, everything.requests, everything.rate) == (START, 5, 5 / 60)
    only_a = await peak(store, since=START, until=START + 3600, route="a")
    assert only_a is not None and (only_a.start, only_a.requests) == (START + 120, 4)
    seconds = await peak(store, since=START, until=START + 3600, bucket_s=10)
    assert seconds is not None and (seconds.start, seconds.requests) == (START + 30, 2)


async def test_an_empty_window_has_no_peak(store: Store, tmp_path: Path) -> None:
    """No rows in the window (or no ledger file yet): None, not a zero rate."""
    assert await peak(store, since=START + 3600, until=START + 7200) is None
    assert await peak(SqliteLedger(tmp_path / "absent.db"), since=0, until=START) is None
    with pytest.raises(ValueError):
        await peak(store, since=START, until=START + 60, bucket_s=0)
