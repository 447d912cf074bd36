"""The ledger in one SQLite file: the single-process default.

All database work runs off the event loop, on two dedicated threads that share one connection
under a lock (one call at a time):

- the *background* thread runs at the lowest CPU priority (Linux ``nice`` 19, which Linux keeps
  per thread). It writes the batches of a writer that keeps up, and retention's deletes. A batch
  costs about 8 us of CPU a row; on a busy core that work would otherwise delay requests (the
  scheduler shares the core evenly), so the event loop goes first and the batch fills the gaps;
- the *foreground* thread runs at normal priority. It writes the batches of a writer that is
  falling behind (``write(..., behind=True)``: a full batch still waits after this one, or a spool
  replay), so a saturated core cannot starve the ledger; and it answers reads.

The file is in WAL mode with ``synchronous=NORMAL``: readers (the dashboard, ``sqlite3`` on the
command line) never block the writer, and a commit costs no fsync (a power loss may lose the last
commits, never corrupt the file).
"""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
import sys
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import orjson

from breakwater.engine.drift.stage import Score
from breakwater.observability.ledger import rollup
from breakwater.observability.ledger.eval_scores import EVAL_SCORE_COLUMNS, score_from_values, score_values
from breakwater.observability.ledger.feedback import FEEDBACK_COLUMNS, Feedback
from breakwater.observability.ledger.row import COLUMNS, DECIMALS, LedgerRow, column_values
from breakwater.observability.ledger.sqlite_schema import EVAL_SCORE_TABLE, FEEDBACK_TABLE, create_tables
from breakwater.observability.ledger.sqlite_schema import TABLE as _TABLE

T = TypeVar("T")

log = logging.getLogger("breakwater.ledger")

BACKGROUND_NICE = 19
"""The background thread's ``nice`` value: the lowest priority, so any request's work goes first."""

_BOOLS = frozenset({"fallback", "stream", "usage_estimated"})
_NULLABLE_BOOLS = ("shadow_exact", "refused", "has_tools", "trim_summary")
_FEEDBACK_COLS = ", ".join(FEEDBACK_COLUMNS)
_SCORE_COLS = ", ".join(EVAL_SCORE_COLUMNS)
_COLS = ", ".join(f'"{c}"' for c in COLUMNS)
#: a row that is not itself a replay's call (tagged ``replay``)
_NOT_REPLAY = "json_extract(tags, '$.replay') IS NULL"


_MONEY = tuple(COLUMNS.index(name) for name in DECIMALS)


def _to_params(row: LedgerRow) -> list[Any]:
    """A row's column values; money as exact decimal text (SQLite has no decimal type)."""
    values = column_values(row)
    for i in _MONEY:
        if values[i] is not None:
            values[i] = str(values[i])
    return values


def _lower_priority() -> None:
    """Run the calling thread at ``BACKGROUND_NICE`` (Linux keeps ``nice`` per thread; elsewhere,
    or where it is not allowed, the thread keeps the process's priority)."""
    if sys.platform != "linux":
        return
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), BACKGROUND_NICE)
    except OSError as exc:
        log.debug("ledger background thread keeps normal priority: %r", exc)


def row_from_values(record: tuple[Any, ...]) -> LedgerRow:
    """The row of a record in ``COLUMNS`` order, as SQLite (or PostgreSQL, read as a tuple) gives it."""
    data = dict(zip(COLUMNS, record, strict=True))
    data["tags"] = orjson.loads(data["tags"])
    for name in DECIMALS:
        data[name] = None if data[name] is None else Decimal(data[name])
    for name in _BOOLS:
        data[name] = bool(data[name])
    for name in _NULLABLE_BOOLS:
        data[name] = None if data[name] is None else bool(data[name])
    return LedgerRow(**data)


class SqliteLedger:
    """The ledger store over one SQLite file.

    Args:
        path: the database file (created with its table and indexes on ``open``).
        delete_chunk: rows per retention ``DELETE`` transaction, so a large purge never holds the
            write lock for long.
    """

    def __init__(self, path: str | Path, *, delete_chunk: int = 5000) -> None:
        self.path = Path(path)
        self._delete_chunk = delete_chunk
        self._foreground: ThreadPoolExecutor | None = None
        self._background: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        #: the first hour the rollup covers (rollup.py)
        self.rollup_start = 0.0

    async def _run(self, fn: Callable[..., T], *args: Any, background: bool = False) -> T:
        executor = self._background if background else self._foreground
        if executor is None:
            raise RuntimeError("SqliteLedger is not open")
        return await asyncio.get_running_loop().run_in_executor(executor, self._locked, fn, *args)

    def _locked(self, fn: Callable[..., T], *args: Any) -> T:
        with self._lock:
            return fn(*args)

    def _db(self) -> sqlite3.Connection:
        # (Re)open on first use: a store whose `open` failed (disk full, directory missing) then
        # recovers on the writer's next retry instead of failing for good.
        if self._conn is None:
            self._open()
        assert self._conn is not None
        return self._conn

    async def open(self) -> None:
        """Open the file on the store's thread; create the table and its indexes if missing."""
        if self._foreground is None:
            self._foreground = ThreadPoolExecutor(max_workers=1, thread_name_prefix="breakwater-ledger-sqlite")
            self._background = ThreadPoolExecutor(
                max_workers=1, thread_name_prefix="breakwater-ledger-sqlite-background", initializer=_lower_priority
            )
        await self._run(self._open)

    def _open(self) -> None:
        # isolation_level=None: no implicit transactions; `write` opens its own, one per batch.
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)  # used under _lock
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA busy_timeout=5000")
        self.rollup_start = create_tables(conn)
        self._conn = conn

    async def write(self, rows: list[LedgerRow], *, behind: bool = False) -> None:
        """Insert the rows in one transaction; rows whose ``id`` is already stored are skipped.

        ``behind``: the writer is falling behind, so the batch is written at normal priority
        rather than on the background thread (see the module docstring).
        """
        if rows:
            await self._run(self._write, rows, background=not behind)

    def _write(self, rows: list[LedgerRow]) -> None:
        # converted on the store's thread, not on the event loop
        params = [_to_params(r) for r in rows]
        conn = self._db()
        placeholders = ", ".join("?" for _ in COLUMNS)
        conn.execute("BEGIN IMMEDIATE")  # the rollup start read below stays current until COMMIT
        try:
            marks = ", ".join("?" for _ in rows)
            stored = [
                r[0] for r in conn.execute(f"SELECT id FROM {_TABLE} WHERE id IN ({marks})", [r.id for r in rows])
            ]
            conn.executemany(
                f"INSERT INTO {_TABLE} ({_COLS}) VALUES ({placeholders}) ON CONFLICT(id) DO NOTHING", params
            )
            # the start as stored (another process's fill may have moved it), in this transaction
            (start,) = conn.execute(f"SELECT start FROM {_TABLE}_hourly_from").fetchone()
            self.rollup_start = float(start)
            self._roll_up(conn, rollup.fresh(rows, stored, self.rollup_start))
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def _roll_up(self, conn: sqlite3.Connection, rows: list[LedgerRow]) -> None:
        """Add the rows to the hourly rollup (in the caller's transaction)."""
        if not rows:
            return
        added = rollup.Rollup.of(rollup.record_of(r) for r in rows)
        hours = sorted({k[0] for k in added.hists})
        sql = rollup.stored_sql(_TABLE, len(hours), postgres=False)
        stored = {rollup.stored_key(*r[:3]): (r[3], r[4]) for r in conn.execute(sql, hours)}
        conn.executemany(rollup.merge_sql(_TABLE, postgres=False), added.merged_params(stored))

    async def fill_rollup(self) -> None:
        """Roll the hours before ``rollup_start`` up from their rows, a day per transaction,
        newest first (a ledger from before the rollups; rollup.py)."""
        while await self._run(self._fill_day, background=True):
            pass

    def _fill_day(self) -> bool:
        conn = self._db()
        conn.execute("BEGIN IMMEDIATE")
        try:
            (start,) = conn.execute(f"SELECT start FROM {_TABLE}_hourly_from").fetchone()
            if start <= 0.0:  # filled already, by another process
                conn.execute("ROLLBACK")
                self.rollup_start = 0.0
                return False
            (oldest,) = conn.execute(f"SELECT MIN(ts) FROM {_TABLE} WHERE ts < ?", (start,)).fetchone()
            (newest,) = conn.execute(f"SELECT MAX(ts) FROM {_TABLE} WHERE ts < ?", (start,)).fetchone()
            lo = rollup.fill_from(oldest, newest)
            columns = ", ".join(rollup.COLUMNS)
            records = conn.execute(f"SELECT {columns} FROM {_TABLE} WHERE ts >= ? AND ts < ?", (lo, start))
            added = rollup.Rollup.of(records)
            conn.executemany(rollup.merge_sql(_TABLE, postgres=False), added.merged_params({}))
            conn.execute(f"UPDATE {_TABLE}_hourly_from SET start = ?", (lo,))
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        self.rollup_start = lo
        return lo > 0.0

    async def delete_before(self, ts: float) -> int:
        """Delete rows that started before ``ts``, one chunk per transaction; return how many."""
        total = 0
        while True:
            deleted = await self._run(self._delete_chunk_before, ts, background=True)
            total += deleted
            if deleted < self._delete_chunk:
                return total

    def _delete_chunk_before(self, ts: float) -> int:
        self._db().execute(f"DELETE FROM {FEEDBACK_TABLE} WHERE ts < ?", (ts,))  # a few rows, if any
        self._db().execute(f"DELETE FROM {EVAL_SCORE_TABLE} WHERE ts < ?", (ts,))  # a sampled share
        self._db().execute(f"DELETE FROM {_TABLE}_hourly WHERE hour <= ?", (ts - rollup.HOUR,))  # whole hours
        cur = self._db().execute(
            f"DELETE FROM {_TABLE} WHERE rowid IN (SELECT rowid FROM {_TABLE} WHERE ts < ? LIMIT ?)",
            (ts, self._delete_chunk),
        )
        return cur.rowcount

    async def count(self) -> int:
        """How many rows the ledger holds."""
        return await self._run(lambda: int(self._db().execute(f"SELECT count(*) FROM {_TABLE}").fetchone()[0]))

    async def fetch(self, *, since: float = 0.0, limit: int = 10_000) -> list[LedgerRow]:
        """Rows that started at or after ``since``, in the order they were written."""

        def query() -> list[LedgerRow]:
            cur = self._db().execute(
                f"SELECT {_COLS} FROM {_TABLE} WHERE ts >= ? ORDER BY rowid LIMIT ?", (since, limit)
            )
            return [row_from_values(r) for r in cur.fetchall()]

        return await self._run(query)

    async def captured(self, route: str, since: float, until: float, limit: int) -> tuple[list[LedgerRow], int]:
        """``route``'s rows a replay can use (docs/evals.md#replay): ``since <= ts < until``, prompt
        captured, answered (status < 400), neither a shadow nor a replay call; oldest first, at most
        ``limit``. And how many answered rows of the route in the window were not captured."""
        window = f"route = ? AND ts >= ? AND ts < ? AND status < 400 AND shadow_of IS NULL AND {_NOT_REPLAY}"
        params = (route, since, until)

        def query() -> tuple[list[LedgerRow], int]:
            db = self._db()
            cur = db.execute(
                f"SELECT {_COLS} FROM {_TABLE} WHERE {window} AND prompt IS NOT NULL ORDER BY ts, rowid LIMIT ?",
                (*params, limit),
            )
            rows = [row_from_values(r) for r in cur.fetchall()]
            missing = db.execute(f"SELECT count(*) FROM {_TABLE} WHERE {window} AND prompt IS NULL", params)
            return rows, int(missing.fetchone()[0])

        return await self._run(query)

    async def route_of(self, request_id: str, key_id: str | None) -> tuple[str, str] | None:
        """``(route, key_id)`` of the newest row of ``request_id`` (and ``key_id``, unless ``None``)."""
        sql = f"SELECT route, key_id FROM {_TABLE} WHERE request_id = ?"
        params: tuple[str, ...] = (request_id,) if key_id is None else (request_id, key_id)
        if key_id is not None:
            sql += " AND key_id = ?"

        def query() -> tuple[str, str] | None:
            found = self._db().execute(sql + " ORDER BY rowid DESC LIMIT 1", params).fetchone()
            return None if found is None else (found[0], found[1])

        return await self._run(query)

    async def write_feedback(self, feedback: Feedback) -> None:
        """Add one feedback (at normal priority: its author waits for the answer)."""
        sql = f"INSERT INTO {FEEDBACK_TABLE} ({_FEEDBACK_COLS}) VALUES (?, ?, ?, ?, ?, ?)"
        await self._run(lambda: self._db().execute(sql, feedback.values()))

    async def fetch_feedback(self, request_id: str) -> list[Feedback]:
        """The feedbacks on ``request_id``, oldest first."""

        def query() -> list[Feedback]:
            sql = f"SELECT {_FEEDBACK_COLS} FROM {FEEDBACK_TABLE} WHERE request_id = ? ORDER BY rowid"
            return [Feedback.from_values(r) for r in self._db().execute(sql, (request_id,))]

        return await self._run(query)

    async def write_eval_score(self, score: Score) -> None:
        """Add one drift score (on the background thread: nobody waits for it)."""
        sql = f"INSERT INTO {EVAL_SCORE_TABLE} ({_SCORE_COLS}) VALUES (?, ?, ?, ?, ?, ?)"
        await self._run(lambda: self._db().execute(sql, score_values(score)), background=True)

    async def fetch_eval_scores(self, *, route: str | None = None, since: float = 0.0) -> list[Score]:
        """Drift scores from ``since`` on (of ``route``, unless ``None``), in the order they were written."""
        sql = f"SELECT {_SCORE_COLS} FROM {EVAL_SCORE_TABLE} WHERE ts >= ?"
        params: tuple[Any, ...] = (since,) if route is None else (since, route)
        if route is not None:
            sql += " AND route = ?"

        def query() -> list[Score]:
            return [score_from_values(r) for r in self._db().execute(sql + " ORDER BY rowid", params)]

        return await self._run(query)

    async def close(self) -> None:
        """Close the file and stop the store's threads."""
        if self._foreground is None:
            return
        await self._run(self._close)
        for executor in (self._foreground, self._background):
            if executor is not None:
                executor.shutdown(wait=True)
        self._foreground = self._background = None

    def _close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
