"""The SQLite ledger store against a real file."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from breakwater.observability.ledger import SqliteLedger
from breakwater.observability.ledger.row import ADDED_COLUMNS

from .rows import T0, make_row


async def test_round_trip_in_wal_mode(tmp_path: Path) -> None:
    """Rows come back equal, in write order, from a WAL-mode file with the ts indexes."""
    store = SqliteLedger(tmp_path / "ledger.db")
    await store.open()
    try:
        rows = [make_row(i) for i in range(50)]
        await store.write(rows[:20])
        await store.write(rows[20:])
        assert await store.fetch() == rows
        assert await store.count() == 50
    finally:
        await store.close()
    with sqlite3.connect(tmp_path / "ledger.db") as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        indexes = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert {"breakwater_ledger_ts", "breakwater_ledger_ts_user", "breakwater_ledger_ts_route"} <= indexes


async def test_writing_the_same_rows_twice_stores_them_once(tmp_path: Path) -> None:
    """A replayed batch (same ids) is skipped, so a replay after a lost reply stores each row once."""
    store = SqliteLedger(tmp_path / "ledger.db")
    await store.open()
    try:
        rows = [make_row(i) for i in range(10)]
        await store.write(rows[:6])
        await store.write(rows)  # overlaps the first batch
        assert await store.count() == 10
        assert await store.fetch() == rows
    finally:
        await store.close()


async def test_all_work_runs_on_one_thread(tmp_path: Path) -> None:
    """Every call runs on the store's single dedicated thread, never on the event loop's."""
    store = SqliteLedger(tmp_path / "ledger.db")
    await store.open()
    try:
        seen: set[str] = set()
        for _ in range(5):
            seen.add(await store._run(lambda: threading.current_thread().name))
        assert len(seen) == 1
        assert seen.pop().startswith("breakwater-ledger-sqlite")
    finally:
        await store.close()


async def test_delete_before_purges_old_rows_in_chunks(tmp_path: Path) -> None:
    """Retention deletes exactly the rows older than the cut-off, across several chunks."""
    store = SqliteLedger(tmp_path / "ledger.db", delete_chunk=7)
    await store.open()
    try:
        await store.write([make_row(i) for i in range(40)])
        assert await store.delete_before(T0 + 25 * 0.001 - 1e-9) == 25
        assert [r.id for r in await store.fetch()] == [make_row(i).id for i in range(25, 40)]
        assert await store.delete_before(T0) == 0
    finally:
        await store.close()


async def test_reopen_keeps_rows(tmp_path: Path) -> None:
    """Opening an existing file keeps its rows (the schema is created only if missing)."""
    for _ in range(2):
        store = SqliteLedger(tmp_path / "ledger.db")
        await store.open()
        await store.write([make_row(i) for i in range(3)])
        await store.close()
    store = SqliteLedger(tmp_path / "ledger.db")
    await store.open()
    assert await store.count() == 3
    await store.close()


async def test_a_failed_open_recovers_on_the_next_write(tmp_path: Path) -> None:
    """If the file cannot be opened at start-up, a later write opens it once it can (the writer retries)."""
    store = SqliteLedger(tmp_path / "later" / "ledger.db")
    try:
        with pytest.raises(sqlite3.OperationalError):
            await store.open()
        (tmp_path / "later").mkdir()
        await store.write([make_row(0)])
        assert await store.count() == 1
    finally:
        await store.close()


async def test_a_ledger_file_from_before_the_added_columns_gains_them(tmp_path: Path) -> None:
    """Opening a table made by an earlier version adds the new columns; its rows stay, new rows fill them."""
    path = tmp_path / "ledger.db"
    store = SqliteLedger(path)
    await store.open()
    await store.write([make_row(0)])
    await store.close()
    with sqlite3.connect(path) as db:  # back to the first schema
        for name in ADDED_COLUMNS:
            db.execute(f"ALTER TABLE breakwater_ledger DROP COLUMN {name}")
    store = SqliteLedger(path)
    await store.open()
    try:
        await store.write([make_row(2)])
        old, new = await store.fetch()
    finally:
        await store.close()
    assert old.id == make_row(0).id and old.upstream_ms is None
    assert new == make_row(2) and new.upstream_ms is not None
