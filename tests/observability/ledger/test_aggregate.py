"""The usage aggregate on a hand-made ledger, against SQLite and a real PostgreSQL alike.

PostgreSQL needs 127.0.0.1:5432 (user ``postgres``, database ``test``): skipped when absent, a
failure under ``BREAKWATER_REQUIRE_SERVICES=1``. Each PostgreSQL test uses its own table.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import pytest

from breakwater.observability.ledger import LedgerRow, SqliteLedger
from breakwater.observability.ledger.aggregate import aggregate, parse_by, parse_instant
from breakwater.observability.ledger.postgres import PostgresLedger

from ...conftest import require_service
from .rows import T0, make_row

HOST, PORT = "127.0.0.1", 5432
DSN = f"postgresql://postgres@{HOST}:{PORT}/test"
DAY = 86400.0
START = 1_700_006_400.0  # 2023-11-15T00:00:00Z: a UTC midnight


def _row(
    i: int, *, user: str, latency: float, cost: str | None, status: int = 200, tags: dict[str, str] | None = None
) -> LedgerRow:
    base = make_row(i)
    return dataclasses.replace(
        base,
        ts=START + i * 60.0,
        user=user,
        latency_ms=latency,
        cost_usd=None if cost is None else Decimal(cost),
        status=status,
        input_tokens=10,
        cached_input_tokens=1,
        output_tokens=5,
        tags=tags or {},
    )


ROWS = [
    # alice: 4 requests, one error, costs 0.1 + 0.2 + 0.0000000001 + none
    _row(0, user="alice", latency=10.0, cost="0.1", tags={"team": "search"}),
    _row(1, user="alice", latency=40.0, cost="0.2", status=500, tags={"team": "search"}),
    _row(2, user="alice", latency=20.0, cost="0.0000000001", tags={"team": "ads"}),
    _row(3, user="alice", latency=30.0, cost=None),
    # bob: 2 requests, cheaper in total than alice
    _row(4, user="bob", latency=5.0, cost="0.25", tags={"team": "ads"}),
    _row(5, user="bob", latency=7.0, cost="0.0000000009", status=429),
    # carol: costs nothing, one request
    _row(6, user="carol", latency=1.0, cost=None),
    # outside the window: the next day
    _row(24 * 60, user="dave", latency=1.0, cost="99"),
]


@pytest.fixture(params=["sqlite", "postgres"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[SqliteLedger | PostgresLedger]:
    """The hand-made rows in a fresh store of each kind."""
    if request.param == "sqlite":
        lite = SqliteLedger(tmp_path / "ledger.db")
        await lite.open()
        await lite.write(ROWS)
        yield lite
        await lite.close()
        return
    require_service("PostgreSQL", HOST, PORT)
    table = f"bw_usage_test_{uuid.uuid4().hex[:12]}"
    pg = PostgresLedger(DSN, table=table)
    await pg.open()
    try:
        await pg.write(ROWS)
        yield pg
    finally:
        await pg._call("execute", f"DROP TABLE IF EXISTS {table}")
        await pg.close()


async def test_by_user_sums_counts_percentiles_and_order(store: SqliteLedger | PostgresLedger) -> None:
    """Per user: requests, errors, tokens, exact cost and nearest-rank percentiles, costliest first."""
    page = await aggregate(store, by="user", since=START, until=START + DAY, limit=10, offset=0)
    assert page.total == 3
    assert not page.has_more
    assert [g["group"] for g in page.groups] == ["alice", "bob", "carol"]
    alice = page.groups[0]
    assert alice == {
        "group": "alice",
        "requests": 4,
        "errors": 1,
        "error_rate": 0.25,
        "input_tokens": 40,
        "cached_input_tokens": 4,
        "output_tokens": 20,
        "cost_usd": "0.3000000001",
        "latency_p50_ms": 20.0,  # ceil(0.5 * 4) = 2nd of 10, 20, 30, 40
        "latency_p95_ms": 40.0,
        "latency_p99_ms": 40.0,
    }
    assert page.groups[1]["cost_usd"] == "0.2500000009"
    assert page.groups[1]["errors"] == 1
    assert page.groups[2]["cost_usd"] == "0.0000000000"


async def test_pages_and_ties(store: SqliteLedger | PostgresLedger) -> None:
    """limit/offset walk the groups in order; ``has_more`` says whether another page follows."""
    first = await aggregate(store, by="user", since=START, until=START + DAY, limit=2, offset=0)
    second = await aggregate(store, by="user", since=START, until=START + DAY, limit=2, offset=2)
    assert [g["group"] for g in first.groups] == ["alice", "bob"]
    assert first.has_more
    assert [g["group"] for g in second.groups] == ["carol"]
    assert not second.has_more
    past = await aggregate(store, by="user", since=START, until=START + DAY, limit=2, offset=5)
    assert past.groups == [] and not past.has_more


async def test_by_tag_day_and_columns(store: SqliteLedger | PostgresLedger) -> None:
    """Tag values group rows (rows without the tag form a ``None`` group); day is the UTC date."""
    page = await aggregate(store, by="tag", tag_key="team", since=START, until=START + DAY, limit=10, offset=0)
    by_tag = {g["group"]: (g["requests"], g["cost_usd"]) for g in page.groups}
    assert by_tag == {
        "search": (2, "0.3000000000"),
        "ads": (2, "0.2500000001"),
        None: (3, "0.0000000009"),
    }
    days = await aggregate(store, by="day", since=0, until=START + 2 * DAY, limit=10, offset=0)
    assert {g["group"]: g["requests"] for g in days.groups} == {"2023-11-15": 7, "2023-11-16": 1}
    for by in ("route", "model", "deployment", "key"):
        page = await aggregate(store, by=by, since=START, until=START + DAY, limit=10, offset=0)
        assert page.total == 1 and page.groups[0]["requests"] == 7


async def test_tag_key_is_data_not_sql(store: SqliteLedger | PostgresLedger) -> None:
    """A tag key full of SQL and JSON-path punctuation matches nothing and breaks nothing."""
    page = await aggregate(
        store, by="tag", tag_key="x') OR 1=1; --.$[0]", since=START, until=START + DAY, limit=10, offset=0
    )
    assert [(g["group"], g["requests"]) for g in page.groups] == [(None, 7)]


async def test_empty_window(store: SqliteLedger | PostgresLedger) -> None:
    """A window with no rows is an empty page, not an error."""
    page = await aggregate(store, by="route", since=T0 - 10, until=T0 - 5, limit=10, offset=0)
    assert page.groups == [] and page.total == 0


async def test_missing_sqlite_file_reads_as_empty(tmp_path: Path) -> None:
    """A ledger file never written yet reads as no usage (and is not created by reading)."""
    store = SqliteLedger(tmp_path / "none.db")
    page = await aggregate(store, by="user", since=0, until=1e10, limit=10, offset=0)
    assert page.groups == []
    assert not (tmp_path / "none.db").exists()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"by": "colour"}, "cannot group"),
        ({"by": "tag"}, "tag key"),
        ({"by": "user", "tag_key": "team"}, "tag key"),
        ({"by": "user", "limit": 0}, "limit"),
        ({"by": "user", "offset": -1}, "offset"),
    ],
)
async def test_bad_arguments(tmp_path: Path, kwargs: dict[str, object], message: str) -> None:
    """Bad grouping, tag key, limit or offset raise ValueError before touching the store."""
    args: dict[str, object] = {"since": 0.0, "until": 1.0, "limit": 10, "offset": 0, **kwargs}
    with pytest.raises(ValueError, match=message):
        await aggregate(SqliteLedger(tmp_path / "x.db"), **args)  # type: ignore[arg-type]


def test_parse_by_and_instant() -> None:
    """``tag:<key>`` splits; instants accept unix seconds, durations ago and ISO dates (UTC)."""
    assert parse_by("user") == ("user", None)
    assert parse_by("tag:team") == ("tag", "team")
    for bad in ("tag", "tag:", "user:x", "colour"):
        with pytest.raises(ValueError):
            parse_by(bad)
    now = 1_800_000_000.0
    assert parse_instant("24h", now) == now - 86400
    assert parse_instant("7d", now) == now - 7 * 86400
    assert parse_instant("1700000000", now) == 1_700_000_000.0
    assert parse_instant("2023-11-15", now) == START
    assert parse_instant("2023-11-15T01:00:00+01:00", now) == START
    with pytest.raises(ValueError, match="ISO"):
        parse_instant("yesterday", now)
