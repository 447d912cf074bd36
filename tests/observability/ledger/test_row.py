"""The ledger row's JSON form, used by the disk spool."""

from __future__ import annotations

from decimal import Decimal

import orjson

from breakwater.observability.ledger import COLUMNS, LedgerRow
from breakwater.observability.ledger.row import ADDED_COLUMNS

from .rows import make_row


def test_json_round_trip_keeps_every_field() -> None:
    """A row read back from its JSON equals the original, with and without optional fields."""
    for i in (0, 1):
        row = make_row(i)
        assert LedgerRow.from_json(row.to_json()) == row


def test_cost_is_an_exact_decimal_string() -> None:
    """The cost and the saved cost go to JSON as strings, so no float rounding touches them."""
    row = make_row(0)
    row.cost_usd = Decimal("0.1234567891")
    row.saved_usd = Decimal("0.0000000003")
    assert b'"cost_usd":"0.1234567891"' in row.to_json()
    assert b'"saved_usd":"3E-10"' in row.to_json()
    back = LedgerRow.from_json(row.to_json())
    assert back.cost_usd == Decimal("0.1234567891") and back.saved_usd == Decimal("0.0000000003")


def test_columns_follow_the_fields() -> None:
    """COLUMNS names every field once, id first."""
    assert COLUMNS[0] == "id" and len(set(COLUMNS)) == len(COLUMNS) == 38
    assert COLUMNS[-len(ADDED_COLUMNS) :] == ADDED_COLUMNS


def test_a_spool_line_from_before_the_added_columns_still_loads() -> None:
    """A spool written by an earlier version (no upstream/overhead times) is replayed, not dropped."""
    row = make_row(1)
    old = orjson.loads(row.to_json())
    for name in ADDED_COLUMNS:
        del old[name]
    loaded = LedgerRow.from_json(orjson.dumps(old))
    assert (loaded.upstream_ms, loaded.overhead_ms) == (None, None)
    assert loaded.id == row.id and loaded.cost_usd == row.cost_usd
