"""The hourly rollup (``rollup.py``, ``hourly.py``): the dashboard's answers from the rollup equal
the row-based ones on both stores (sums and counts exactly; percentiles from the histograms
within one bin, 2.2%), a ledger from before the rollups is filled from its rows, a batch written
twice counts once, and retention drops whole hours.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import random
import sqlite3
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from breakwater.observability.ledger import LedgerRow, SqliteLedger, hourly, rollup
from breakwater.observability.ledger.aggregate import aggregate
from breakwater.observability.ledger.dashboard import cost_series, reliability, series, totals
from breakwater.observability.ledger.postgres import PostgresLedger
from tests.postgres import DSN, pg_execute

from .conftest import Holding, table_of_its_own
from .rows import make_row

Store = SqliteLedger | PostgresLedger
#: a window start on an hour, the rows spanning two days and a bit from there
BASE = 1_700_002_800.0
SPAN = 2 * 86400 + 5000
ERRORS = [(429, "RateLimited"), (500, None), (503, "Overloaded"), (400, "InvalidRequest")]


def _rows(count: int, seed: int = 7) -> list[LedgerRow]:
    rng = random.Random(seed)
    out = []
    for i in range(count):
        status, error_class = (200, None) if rng.random() < 0.8 else rng.choice(ERRORS)
        dep = rng.choice(["dep-a", "dep-b", "dep-c", ""])
        cost = None if rng.random() < 0.05 else Decimal(rng.randrange(0, 10**7)).scaleb(-10)
        tags = rng.choice([{}, {"team": "ads"}, {"team": "search", "feature": "f1"}, {"feature": "f2"}])
        out.append(
            dataclasses.replace(
                make_row(i),
                ts=BASE - 1800 + rng.random() * SPAN,
                route=rng.choice(["chat", "search", "agent"]),
                user=rng.choice(["alice", "bob", "carol", "dave"]),
                key_id=rng.choice(["k1", "k2", "k3"]),
                deployment=dep,
                provider={"dep-a": "openai", "dep-b": "anthropic", "dep-c": "openai", "": ""}[dep],
                upstream_model=rng.choice(["m1", "m2"]),
                status=status,
                error_class=error_class,
                attempts=rng.choice([1, 1, 1, 2, 3]),
                fallback=rng.random() < 0.1,
                latency_ms=math.exp(rng.gauss(6, 1)),
                ttft_ms=rng.uniform(10, 400) if rng.random() < 0.6 else None,
                cost_usd=cost,
                saved_usd=Decimal("0.0001") if rng.random() < 0.1 else None,
                routing_saved_usd=rng.choice([None, None, Decimal("0.0000312"), Decimal("-0.0000047")]),
                cache=rng.choice(["hit", "semantic-hit", "miss", None]),
                tags=tags,
            )
        )
    return out


ROWS = _rows(1500)


@pytest.fixture
async def store(ledger_holding: Holding) -> Store:
    """Each store in turn, holding ``ROWS`` (written in batches of 100, the last one twice)."""
    return await ledger_holding(*(ROWS[i : i + 100] for i in range(0, len(ROWS), 100)), ROWS[-100:])


@pytest.fixture(autouse=True)
def _rows_when_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hourly, "MIN_HOURS", 6)


def _from_rows(store: Store) -> None:
    """Every later answer read from the rows (no window holds enough whole hours)."""
    hourly.MIN_HOURS = 10**9


def _same(rolled: Any, rows: Any, path: str = "") -> None:
    """Equal, but for percentiles (``*_p<n>_ms``): the rollup's within one bin of the rows'."""
    if isinstance(rows, dict):
        assert rolled.keys() == rows.keys(), path
        for k in rows:
            if "_p" in k and k.endswith("_ms"):
                if rows[k] is None:
                    assert rolled[k] is None, f"{path}.{k}"
                else:
                    assert rolled[k] == pytest.approx(rows[k], rel=0.022), f"{path}.{k}"
            else:
                _same(rolled[k], rows[k], f"{path}.{k}")
    elif isinstance(rows, list):
        assert len(rolled) == len(rows), path
        for i, (a, b) in enumerate(zip(rolled, rows, strict=True)):
            _same(a, b, f"{path}[{i}]")
    elif isinstance(rows, float):
        assert rolled == pytest.approx(rows), path
    else:
        assert rolled == rows, path


async def _answers(store: Store) -> list[Any]:
    until = BASE + 2 * 86400 + 1234.5  # a partial last hour, read from its rows
    return [
        await series(store, since=BASE, until=until, step_s=4 * 3600),
        await series(store, since=BASE, until=until, step_s=3600, route="search"),
        await totals(store, since=BASE + 977.25, until=until),  # partial hours at both ends
        await cost_series(store, by="user", since=BASE, until=until, step_s=6 * 3600, top=2),
        await cost_series(store, by="tag", tag_key="team", since=BASE, until=until, step_s=6 * 3600),
        await cost_series(store, by="deployment", since=BASE, until=until, step_s=86400),
        await reliability(store, since=BASE + 10.5, until=until),
    ]


async def test_the_rollup_answers_as_the_rows_do(store: Store) -> None:
    assert hourly.whole_hours(await hourly.covered_from(store), BASE, BASE + 86400) is not None
    rolled = await _answers(store)
    _from_rows(store)
    _same(rolled, await _answers(store))
    assert rolled[2]["requests"] > 1000


async def test_a_short_window_or_unaligned_step_is_read_from_rows(store: Store) -> None:
    assert hourly.whole_hours(0.0, BASE, BASE + 5 * 3600) is None
    assert await hourly.gathered(store, BASE, BASE + 5 * 3600, ("all",)) is None
    unaligned = await series(store, since=BASE + 60, until=BASE + 86400, step_s=3600)
    _from_rows(store)
    assert unaligned == await series(store, since=BASE + 60, until=BASE + 86400, step_s=3600)


async def test_a_file_never_opened_by_this_version_is_read_from_rows(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    store = SqliteLedger(path)
    await store.open()
    await store.write(ROWS[:50])
    await store.close()
    with sqlite3.connect(path) as conn:
        conn.execute("DROP TABLE breakwater_ledger_hourly_from")
    assert await hourly.covered_from(SqliteLedger(path)) is None
    assert (await totals(SqliteLedger(path), since=BASE - 3600, until=BASE + 3 * 86400))["requests"] == 50


async def test_a_ledger_from_before_the_rollups_is_filled_from_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    old = SqliteLedger(path)
    await old.open()
    await old.write(ROWS)
    _from_rows(old)
    rows_answers = await _answers(old)
    await old.close()
    with sqlite3.connect(path) as conn:  # as a file written before the rollups were
        conn.execute("DROP TABLE breakwater_ledger_hourly")
        conn.execute("DROP TABLE breakwater_ledger_hourly_from")
    reopened = SqliteLedger(path)
    await reopened.open()
    try:
        assert reopened.rollup_start > BASE + SPAN  # covered from the next hour on only
        assert hourly.whole_hours(await hourly.covered_from(reopened), BASE, BASE + 86400) is None
        await reopened.fill_rollup()
        assert reopened.rollup_start == 0.0
        hourly.MIN_HOURS = 6
        _same(await _answers(reopened), rows_answers)
    finally:
        await reopened.close()


async def test_postgres_from_before_the_rollups_is_filled_from_its_rows() -> None:
    async with table_of_its_own() as table:
        old = PostgresLedger(DSN, table=table)
        await old.open()
        await old.write(ROWS)
        _from_rows(old)
        rows_answers = await _answers(old)
        await old.close()
        await pg_execute(f"DROP TABLE {table}_hourly, {table}_hourly_from")
        reopened = PostgresLedger(DSN, table=table)
        await reopened.open()
        try:
            assert reopened.rollup_start > BASE + SPAN
            await reopened.fill_rollup()
            assert reopened.rollup_start == 0.0
            hourly.MIN_HOURS = 6
            _same(await _answers(reopened), rows_answers)
        finally:
            await reopened.close()


async def test_retention_drops_whole_hours_of_the_rollup(store: Store) -> None:
    cut = BASE + 86400 + 1800.0
    await store.delete_before(cut)
    figures = await totals(store, since=BASE + 86400 + 3600, until=BASE + 2 * 86400)
    _from_rows(store)
    _same(figures, await totals(store, since=BASE + 86400 + 3600, until=BASE + 2 * 86400))
    hourly.MIN_HOURS = 6
    found = await hourly.gathered(store, BASE, BASE + 2 * 86400, ("all",), step=3600)
    assert found is not None
    assert min(hour for hour, _, _ in found.sums) == BASE + 86400  # the hour holding the cut is kept


TABLE = ("group", "requests", "errors", "error_rate", "input_tokens", "cached_input_tokens", "output_tokens")
TABLE_MONEY = ("cost_usd", "saved_usd", "routing_saved_usd", "cache_hits")


@pytest.mark.parametrize(("by", "tag_key"), [("user", None), ("route", None), ("tag", "team"), ("key", None)])
async def test_the_cost_table_holds_the_usage_reports_figures(store: Store, by: str, tag_key: str | None) -> None:
    since, until = BASE + 100.5, BASE + 2 * 86400 + 77.0
    table = await hourly.cost_table(store, by=by, since=since, until=until, limit=3, tag_key=tag_key)
    report = await aggregate(store, by=by, since=since, until=until, limit=3, tag_key=tag_key)
    assert table is not None
    assert [{k: r[k] for k in TABLE + TABLE_MONEY} for r in report.groups] == table
    _from_rows(store)
    assert await hourly.cost_table(store, by=by, since=since, until=until, limit=3, tag_key=tag_key) is None


def test_a_histogram_percentile_is_within_one_bin() -> None:
    values = sorted(math.exp(random.Random(3).gauss(5, 2)) for _ in range(999))
    counts: dict[int, int] = {}
    for v in values:
        counts[rollup.bin_of(v)] = counts.get(rollup.bin_of(v), 0) + 1
    for p in (1, 50, 95, 99, 100):
        exact = values[-(-p * len(values) // 100) - 1]
        assert rollup.hist_nearest(counts, p) == pytest.approx(exact, rel=0.022)
    assert rollup.hist_nearest({}, 50) is None


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
async def test_a_rollup_from_before_the_routing_figure_gains_it(kind: str, tmp_path: Path) -> None:
    """A rollup table made before ``routed`` was a figure gains it at open (0 for its hours, whose
    rows had no routing savings); later rows add theirs, and the rollup still answers as the rows do."""
    earlier = [dataclasses.replace(r, routing_saved_usd=None) for r in ROWS[:700]]
    later = ROWS[700:]
    assert any(r.routing_saved_usd for r in later)
    async with contextlib.AsyncExitStack() as stack:
        if kind == "sqlite":
            path = tmp_path / "ledger.db"

            def make() -> Store:
                return SqliteLedger(path)

            async def drop() -> None:
                with contextlib.closing(sqlite3.connect(path)) as conn:
                    conn.execute("ALTER TABLE breakwater_ledger_hourly DROP COLUMN routed")
                    conn.commit()
        else:
            table = await stack.enter_async_context(table_of_its_own())

            def make() -> Store:
                return PostgresLedger(DSN, table=table)

            async def drop() -> None:
                await pg_execute(f"ALTER TABLE {table}_hourly DROP COLUMN routed")

        old = make()
        await old.open()
        await old.write(earlier)
        await old.close()
        await drop()  # back to the rollup of the version before
        reopened = make()
        await reopened.open()
        try:
            await reopened.write(later)
            rolled = await _answers(reopened)
            assert rolled[2]["routing_saved_usd"] != "0.0000000000"
            _from_rows(reopened)
            _same(rolled, await _answers(reopened))
        finally:
            await reopened.close()
