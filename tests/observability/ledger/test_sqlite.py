"""What only the SQLite ledger store does: one file in WAL mode, one thread, recovery from a failed open.

The behaviour both stores share (round trips, idempotent writes, retention, schema evolution, the
usage aggregate) is in ``test_conformance.py``.
"""

from __future__ import annotations

import sqlite3
import threading
from contextlib import closing
from pathlib import Path

import pytest

from breakwater.observability.ledger import SqliteLedger
from breakwater.observability.ledger.aggregate import aggregate

from .rows import make_row


async def test_the_file_is_in_wal_mode(tmp_path: Path) -> None:
    """The ledger file is in WAL mode, so readers (the dashboard, ``sqlite3``) never block the writer."""
    store = SqliteLedger(tmp_path / "ledger.db")
    await store.open()
    try:
        await store.write([make_row(i) for i in range(5)])
    finally:
        await store.close()
    with closing(sqlite3.connect(tmp_path / "ledger.db")) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


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


async def test_missing_sqlite_file_reads_as_empty(tmp_path: Path) -> None:
    """A ledger file never written yet reads as no usage (and is not created by reading)."""
    store = SqliteLedger(tmp_path / "none.db")
    page = await aggregate(store, by="user", since=0, until=1e10, limit=10, offset=0)
    assert page.groups == []
    assert not (tmp_path / "none.db").exists()


@pytest.mark.parametrize("tag_key", ['a"b', "a\\b"])
async def test_a_tag_key_sqlite_cannot_quote_is_refused(tmp_path: Path, tag_key: str) -> None:
    """SQLite reads a tag through a quoted JSON path: a key with a double quote or backslash is a ValueError."""
    with pytest.raises(ValueError, match="double quote or a backslash"):
        await aggregate(SqliteLedger(tmp_path / "x.db"), by="tag", tag_key=tag_key, since=0, until=1, limit=10)
    assert not (tmp_path / "x.db").exists()
