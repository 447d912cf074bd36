"""What only the SQLite ledger store does: one file in WAL mode, two threads (background writes at
low priority), recovery from a failed open.

The behaviour both stores share (round trips, idempotent writes, retention, schema evolution, the
usage aggregate) is in ``test_conformance.py``.
"""

from __future__ import annotations

import os
import sqlite3
import sys
import threading
from contextlib import closing
from pathlib import Path

import pytest

from breakwater.observability.ledger import LedgerRow, SqliteLedger
from breakwater.observability.ledger.aggregate import aggregate
from breakwater.observability.ledger.sqlite import BACKGROUND_NICE

from .rows import T0, make_row


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


def _thread() -> tuple[str, int]:
    return threading.current_thread().name, os.getpriority(os.PRIO_PROCESS, threading.get_native_id())


async def test_work_runs_off_the_loop_and_writes_that_can_wait_run_at_low_priority(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Reads and catching-up writes run on the foreground thread at the process's priority;
    a writer keeping up and retention run on the background thread at ``nice`` 19 (Linux)."""
    calls: list[tuple[str, int]] = []
    write = SqliteLedger._write
    delete = SqliteLedger._delete_chunk_before

    def spy_write(self: SqliteLedger, rows: list[LedgerRow]) -> None:
        calls.append(_thread())
        write(self, rows)

    def spy_delete(self: SqliteLedger, ts: float) -> int:
        calls.append(_thread())
        return delete(self, ts)

    monkeypatch.setattr(SqliteLedger, "_write", spy_write)
    monkeypatch.setattr(SqliteLedger, "_delete_chunk_before", spy_delete)
    store = SqliteLedger(tmp_path / "ledger.db")
    await store.open()
    try:
        await store.write([make_row(0)])
        await store.write([make_row(1)], behind=True)
        assert await store.delete_before(T0 + 0.0005) == 1
        reads = {await store._run(_thread) for _ in range(3)}
        assert await store.count() == 1
    finally:
        await store.close()
    normal = os.getpriority(os.PRIO_PROCESS, 0)
    low = BACKGROUND_NICE if sys.platform == "linux" else normal
    background = ("breakwater-ledger-sqlite-background", low)
    foreground = ("breakwater-ledger-sqlite", normal)
    assert [(name.rsplit("_", 1)[0], nice) for name, nice in calls] == [background, foreground, background]
    assert {(name.rsplit("_", 1)[0], nice) for name, nice in reads} == {foreground}


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
