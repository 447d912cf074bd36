"""The ledger in PostgreSQL: shared by every replica.

One connection, used under a lock (the writer's batches and retention's deletes take turns), and
thrown away after any failure: the next call connects afresh, so a restarted or unreachable server
needs no special recovery path. The table and indexes are (re)ensured on every new connection, so
a store opened while the server was down still works once it is back. Each call is bounded by
``command_timeout_s``, so a hung server turns into an exception the writer can spool on.
"""

from __future__ import annotations

import asyncio
import re
import time
from decimal import Decimal
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import orjson

from breakwater.engine.drift.stage import Score
from breakwater.observability.ledger import rollup
from breakwater.observability.ledger.eval_scores import EVAL_SCORE_COLUMNS, score_from_values, score_values
from breakwater.observability.ledger.feedback import FEEDBACK_COLUMNS, Feedback
from breakwater.observability.ledger.row import ADDED_COLUMNS, COLUMNS, DECIMALS, LedgerRow, column_values

_TYPES = {
    "id": "TEXT PRIMARY KEY",
    "request_id": "TEXT NOT NULL",
    "trace_id": "TEXT",
    "ts": "DOUBLE PRECISION NOT NULL",
    "key_id": "TEXT NOT NULL",
    "user": "TEXT NOT NULL",
    "tags": "JSONB NOT NULL",
    "route": "TEXT NOT NULL",
    "deployment": "TEXT NOT NULL",
    "provider": "TEXT NOT NULL",
    "upstream_model": "TEXT NOT NULL",
    "attempts": "INTEGER NOT NULL",
    "fallback": "BOOLEAN NOT NULL",
    "status": "INTEGER NOT NULL",
    "error_class": "TEXT",
    "finish_reason": "TEXT",
    "input_tokens": "BIGINT NOT NULL",
    "cached_input_tokens": "BIGINT NOT NULL",
    "cache_write_tokens": "BIGINT NOT NULL",
    "output_tokens": "BIGINT NOT NULL",
    "reasoning_tokens": "BIGINT NOT NULL",
    "cost_usd": "NUMERIC(20,10)",
    "latency_ms": "DOUBLE PRECISION NOT NULL",
    "ttft_ms": "DOUBLE PRECISION",
    "output_tps": "DOUBLE PRECISION",
    "stream": "BOOLEAN NOT NULL",
    "cache": "TEXT",
    "usage_estimated": "BOOLEAN NOT NULL",
    "prompt": "TEXT",
    "response": "TEXT",
    "upstream_ms": "DOUBLE PRECISION",
    "overhead_ms": "DOUBLE PRECISION",
    "dropped_params": "TEXT",
    "saved_usd": "NUMERIC(20,10)",
    "branch": "TEXT",
    "decision": "TEXT",
    "shadow_of": "TEXT",
    "shadow_exact": "BOOLEAN",
    "shadow_similarity": "DOUBLE PRECISION",
    "prompt_name": "TEXT",
    "prompt_version": "INTEGER",
    "variant": "TEXT",
    "refused": "BOOLEAN",
    "temperature": "DOUBLE PRECISION",
    "max_tokens": "BIGINT",
    "top_p": "DOUBLE PRECISION",
    "seed": "BIGINT",
    "has_tools": "BOOLEAN",
    "response_format": "TEXT",
    "output_flags": "TEXT",
    "injection_score": "DOUBLE PRECISION",
    "injection_action": "TEXT",
    "dlp_findings": "TEXT",
    "trimmed_messages": "INTEGER",
    "trimmed_tokens": "BIGINT",
    "trim_summary": "BOOLEAN",
    "region": "TEXT",
    "routing_saved_usd": "NUMERIC(20,10)",
}
_IDENT = re.compile(r"[a-z_][a-z0-9_]{0,50}")
_COLS = ", ".join(f'"{c}"' for c in COLUMNS)
_FEEDBACK_COLS = ", ".join(FEEDBACK_COLUMNS)
_SCORE_COLS = ", ".join(EVAL_SCORE_COLUMNS)


def _to_params(row: LedgerRow) -> list[Any]:
    # asyncpg's default jsonb codec takes JSON text, and a Decimal for numeric
    return column_values(row)


def _from_record(record: Any) -> LedgerRow:
    data = {name: record[name] for name in COLUMNS}
    data["tags"] = orjson.loads(data["tags"])
    for name in DECIMALS:
        data[name] = None if data[name] is None else Decimal(data[name])
    return LedgerRow(**data)


class PostgresLedger:
    """The ledger store over one PostgreSQL connection, re-opened after any failure.

    Args:
        dsn: ``postgresql://user@host:port/db``.
        table: table name (lower-case identifier); the indexes are named after it.
        command_timeout_s: bound on every statement, and on connecting.
        delete_chunk: rows per retention ``DELETE`` statement.
    """

    def __init__(
        self,
        dsn: str,
        *,
        table: str = "breakwater_ledger",
        command_timeout_s: float = 5.0,
        delete_chunk: int = 5000,
    ) -> None:
        if not _IDENT.fullmatch(table):
            raise ValueError(f"ledger table name must be a lower-case identifier, got {table!r}")
        self._dsn = dsn
        self.table = table
        self._timeout = command_timeout_s
        self._delete_chunk = delete_chunk
        self._conn: Any = None
        self._lock = asyncio.Lock()
        #: the first hour the rollup covers (rollup.py)
        self.rollup_start = 0.0
        placeholders = ", ".join(f"${i}" for i in range(1, len(COLUMNS) + 1))
        self._insert = f"INSERT INTO {table} ({_COLS}) VALUES ({placeholders}) ON CONFLICT (id) DO NOTHING"
        #: the feedback table, next to the ledger's
        self.feedback_table = f"{table}_feedback"
        #: the drift watch's eval scores, next to the ledger's
        self.eval_score_table = f"{table}_eval_scores"

    async def _connection(self) -> Any:
        if self._conn is not None and not self._conn.is_closed():
            return self._conn
        self._conn = None
        conn = await asyncpg.connect(self._dsn, timeout=self._timeout, command_timeout=self._timeout)
        try:
            columns = ", ".join(f'"{c}" {_TYPES[c]}' for c in COLUMNS)
            t, f, e = self.table, self.feedback_table, self.eval_score_table
            # seq: write order, so readers (and the tests) can see batches landed in order.
            await conn.execute(
                f"CREATE TABLE IF NOT EXISTS {t} (seq BIGINT GENERATED ALWAYS AS IDENTITY, {columns});"
                f"CREATE INDEX IF NOT EXISTS {t}_ts ON {t} (ts);"
                f'CREATE INDEX IF NOT EXISTS {t}_ts_user ON {t} (ts, "user");'
                f"CREATE INDEX IF NOT EXISTS {t}_ts_route ON {t} (ts, route);"
                + "".join(f'ALTER TABLE {t} ADD COLUMN IF NOT EXISTS "{c}" {_TYPES[c]};' for c in ADDED_COLUMNS)
                + f"CREATE INDEX IF NOT EXISTS {t}_request ON {t} (request_id);"
                f"CREATE INDEX IF NOT EXISTS {t}_shadow ON {t} (shadow_of) WHERE shadow_of IS NOT NULL;"
                f"CREATE TABLE IF NOT EXISTS {f} (seq BIGINT GENERATED ALWAYS AS IDENTITY, request_id TEXT NOT NULL,"
                " ts DOUBLE PRECISION NOT NULL, key_id TEXT NOT NULL, score DOUBLE PRECISION NOT NULL,"
                " comment TEXT, tags JSONB NOT NULL);"
                f"CREATE INDEX IF NOT EXISTS {f}_request ON {f} (request_id, key_id);"
                f"CREATE TABLE IF NOT EXISTS {e} (seq BIGINT GENERATED ALWAYS AS IDENTITY, request_id TEXT NOT NULL,"
                " ts DOUBLE PRECISION NOT NULL, route TEXT NOT NULL, score DOUBLE PRECISION NOT NULL,"
                " passed BOOLEAN NOT NULL, failed JSONB NOT NULL);"
                f"CREATE INDEX IF NOT EXISTS {e}_request ON {e} (request_id);"
                f"CREATE INDEX IF NOT EXISTS {e}_ts_route ON {e} (ts, route);"
            )
            for statement in rollup.schema(t, postgres=True):
                await conn.execute(statement)
            for figure in rollup.ADDED_FIGURES:
                await conn.execute(rollup.added_figure_sql(t, figure, postgres=True))
            async with conn.transaction():
                await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", f"{t}_hourly")
                start = await conn.fetchval(f"SELECT start FROM {t}_hourly_from")
                if start is None:  # a new table, or one from before the rollups
                    rows, newest = await conn.fetchrow(f"SELECT COUNT(*), MAX(ts) FROM {t}")
                    start = rollup.new_start(rows, newest, time.time())
                    await conn.execute(f"INSERT INTO {t}_hourly_from (start) VALUES ($1)", start)
            self.rollup_start = float(start)
        except BaseException:
            conn.terminate()
            raise
        self._conn = conn
        return conn

    def _discard(self) -> None:
        # After a timeout, a cancellation or a lost socket the connection's state is unknown.
        if self._conn is not None:
            self._conn.terminate()
            self._conn = None

    async def _call(self, method: str, *args: Any) -> Any:
        async with self._lock:
            conn = await self._connection()
            try:
                return await getattr(conn, method)(*args)
            except BaseException:
                self._discard()
                raise

    async def open(self) -> None:
        """Connect and create the table and its indexes if missing."""
        async with self._lock:
            await self._connection()

    async def write(self, rows: list[LedgerRow], *, behind: bool = False) -> None:
        """Insert the rows in one transaction; rows whose ``id`` is already stored are skipped.

        ``behind`` is accepted for the store protocol and changes nothing here: the database does
        the work in its own process."""
        if not rows:
            return
        params = [_to_params(r) for r in rows]
        async with self._lock:
            conn = await self._connection()
            try:
                async with conn.transaction():
                    # one writer at a time adds to the rollup (its histograms are read, merged, written)
                    await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", f"{self.table}_hourly")
                    stored = await conn.fetch(f"SELECT id FROM {self.table} WHERE id = ANY($1)", [r.id for r in rows])
                    await conn.executemany(self._insert, params)
                    # the start as stored (another replica's fill may have moved it)
                    self.rollup_start = float(await conn.fetchval(f"SELECT start FROM {self.table}_hourly_from"))
                    await self._roll_up(conn, rollup.fresh(rows, [r[0] for r in stored], self.rollup_start))
            except BaseException:
                self._discard()
                raise

    async def _roll_up(self, conn: Any, rows: list[LedgerRow]) -> None:
        """Add the rows to the hourly rollup (in the caller's transaction)."""
        if not rows:
            return
        added = rollup.Rollup.of(rollup.record_of(r) for r in rows)
        hours = sorted({k[0] for k in added.hists})
        found = await conn.fetch(rollup.stored_sql(self.table, len(hours), postgres=True), *hours)
        stored = {rollup.stored_key(*r[:3]): (r[3], r[4]) for r in found}
        await conn.executemany(rollup.merge_sql(self.table, postgres=True), added.merged_params(stored))

    async def fill_rollup(self) -> None:
        """Roll the hours before ``rollup_start`` up from their rows, a day per transaction,
        newest first (a ledger from before the rollups; rollup.py)."""
        columns = ", ".join(rollup.COLUMNS)
        t = self.table
        while self.rollup_start > 0.0:
            async with self._lock:
                conn = await self._connection()
                try:
                    async with conn.transaction():
                        await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", f"{t}_hourly")
                        start = float(await conn.fetchval(f"SELECT start FROM {t}_hourly_from"))
                        if start <= 0.0:  # filled already, by another replica
                            self.rollup_start = 0.0
                            return
                        oldest, newest = await conn.fetchrow(f"SELECT MIN(ts), MAX(ts) FROM {t} WHERE ts < $1", start)
                        lo = rollup.fill_from(oldest, newest)
                        records = await conn.fetch(f"SELECT {columns} FROM {t} WHERE ts >= $1 AND ts < $2", lo, start)
                        added = rollup.Rollup.of(tuple(r) for r in records)
                        await conn.executemany(rollup.merge_sql(t, postgres=True), added.merged_params({}))
                        await conn.execute(f"UPDATE {t}_hourly_from SET start = $1", lo)
                except BaseException:
                    self._discard()
                    raise
                self.rollup_start = lo

    async def delete_before(self, ts: float) -> int:
        """Delete rows that started before ``ts``, one chunk per statement; return how many."""
        total = 0
        sql = f"DELETE FROM {self.table} WHERE ctid IN (SELECT ctid FROM {self.table} WHERE ts < $1 LIMIT $2)"
        await self._call("execute", f"DELETE FROM {self.feedback_table} WHERE ts < $1", ts)  # a few rows, if any
        await self._call("execute", f"DELETE FROM {self.eval_score_table} WHERE ts < $1", ts)  # a sampled share
        await self._call("execute", f"DELETE FROM {self.table}_hourly WHERE hour <= $1", ts - rollup.HOUR)
        while True:
            status: str = await self._call("execute", sql, ts, self._delete_chunk)
            deleted = int(status.split()[-1])
            total += deleted
            if deleted < self._delete_chunk:
                return total

    async def count(self) -> int:
        """How many rows the ledger holds."""
        return int(await self._call("fetchval", f"SELECT count(*) FROM {self.table}"))

    async def fetch(self, *, since: float = 0.0, limit: int = 10_000) -> list[LedgerRow]:
        """Rows that started at or after ``since``, in the order they were written."""
        sql = f"SELECT {_COLS} FROM {self.table} WHERE ts >= $1 ORDER BY seq LIMIT $2"
        return [_from_record(r) for r in await self._call("fetch", sql, since, limit)]

    async def captured(self, route: str, since: float, until: float, limit: int) -> tuple[list[LedgerRow], int]:
        """``route``'s rows a replay can use (docs/evals.md#replay): ``since <= ts < until``, prompt
        captured, answered (status < 400), neither a shadow nor a replay call; oldest first, at most
        ``limit``. And how many answered rows of the route in the window were not captured."""
        t = self.table
        window = "route = $1 AND ts >= $2 AND ts < $3 AND status < 400 AND shadow_of IS NULL AND NOT (tags ? 'replay')"
        sql = f"SELECT {_COLS} FROM {t} WHERE {window} AND prompt IS NOT NULL ORDER BY ts, seq LIMIT $4"
        rows = [_from_record(r) for r in await self._call("fetch", sql, route, since, until, limit)]
        missing = await self._call(
            "fetchval", f"SELECT count(*) FROM {t} WHERE {window} AND prompt IS NULL", route, since, until
        )
        return rows, int(missing)

    async def route_of(self, request_id: str, key_id: str | None) -> tuple[str, str] | None:
        """``(route, key_id)`` of the newest row of ``request_id`` (and ``key_id``, unless ``None``)."""
        args = [request_id] if key_id is None else [request_id, key_id]
        mine = "" if key_id is None else " AND key_id = $2"
        sql = f"SELECT route, key_id FROM {self.table} WHERE request_id = $1{mine} ORDER BY seq DESC LIMIT 1"
        found = await self._call("fetchrow", sql, *args)
        return None if found is None else (found["route"], found["key_id"])

    async def write_feedback(self, feedback: Feedback) -> None:
        """Add one feedback."""
        sql = f"INSERT INTO {self.feedback_table} ({_FEEDBACK_COLS}) VALUES ($1, $2, $3, $4, $5, $6)"
        await self._call("execute", sql, *feedback.values())

    async def fetch_feedback(self, request_id: str) -> list[Feedback]:
        """The feedbacks on ``request_id``, oldest first."""
        sql = f"SELECT {_FEEDBACK_COLS} FROM {self.feedback_table} WHERE request_id = $1 ORDER BY seq"
        return [Feedback.from_values(tuple(r)) for r in await self._call("fetch", sql, request_id)]

    async def write_eval_score(self, score: Score) -> None:
        """Add one drift score."""
        sql = f"INSERT INTO {self.eval_score_table} ({_SCORE_COLS}) VALUES ($1, $2, $3, $4, $5, $6)"
        await self._call("execute", sql, *score_values(score))

    async def fetch_eval_scores(self, *, route: str | None = None, since: float = 0.0) -> list[Score]:
        """Drift scores from ``since`` on (of ``route``, unless ``None``), in the order they were written."""
        args: list[Any] = [since] if route is None else [since, route]
        mine = "" if route is None else " AND route = $2"
        sql = f"SELECT {_SCORE_COLS} FROM {self.eval_score_table} WHERE ts >= $1{mine} ORDER BY seq"
        return [score_from_values(tuple(r)) for r in await self._call("fetch", sql, *args)]

    async def close(self) -> None:
        """Close the connection (the store can be opened again)."""
        async with self._lock:
            if self._conn is not None:
                conn, self._conn = self._conn, None
                await conn.close(timeout=self._timeout)
