"""The access store in one SQLite file: the embedded default.

Several processes may open the same file at once (gateway workers, ``breakwater keys ...``), so
the file is in WAL mode (readers never block the writer), every write takes the write lock up
front (``BEGIN IMMEDIATE``: no deadlock from upgrading a read lock) and waits up to
``busy_timeout`` for it. Commits keep SQLite's default full sync: a key shown to its owner once
must not vanish in a power loss. All database work runs on one dedicated thread, so the event
loop never blocks on the file (a ``sqlite3`` connection is not thread-safe either).

``changed`` reads ``PRAGMA data_version`` on the store's one long-lived connection: SQLite
changes it whenever another connection (another process: the CLI, another worker) commits, and
reading it touches no table, so a running gateway can ask several times a second.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from breakwater.core.config.versions import ConfigVersion
from breakwater.core.keys import AccessSnapshot, AuditEntry, SubjectLimits, SubjectScope, Team, VirtualKey
from breakwater.engine.batches.store import BatchRecord, FileInfo, LineResult
from breakwater.engine.responses.store import StoredResponse
from breakwater.infra.keystore.batch_plans import BatchOperations
from breakwater.infra.keystore.config_plans import ConfigOperations
from breakwater.infra.keystore.operations import Operations, Plan, Query, advance
from breakwater.infra.keystore.response_plans import ResponseOperations
from breakwater.infra.keystore.schema import SQLITE, Tables, added_columns, added_indexes, create_statements

T = TypeVar("T")

_TABLES = Tables.named("breakwater")
_BUSY_TIMEOUT_MS = 5000


class SqliteKeyStore:
    """Keys, teams, subject limits, the audit trail and the configuration versions in one SQLite file.

    Args:
        path: the database file (created, with its tables, on ``open``).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._ops = Operations(_TABLES, SQLITE)
        self._config = ConfigOperations(_TABLES, SQLITE)
        self._batches = BatchOperations(_TABLES, SQLITE)
        self._responses = ResponseOperations(_TABLES, SQLITE)
        self._executor: ThreadPoolExecutor | None = None
        self._conn: sqlite3.Connection | None = None
        #: ``PRAGMA data_version`` at the last ``changed`` (None: not read on this connection yet)
        self._data_version: int | None = None

    async def open(self) -> None:
        """Open the file on the store's thread; create the tables if missing."""
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="breakwater-keystore")
        await self._call(self._db)

    async def close(self) -> None:
        """Close the file and stop the store's thread (the store can be opened again)."""
        if self._executor is None:
            return
        await self._call(self._close)
        self._executor.shutdown(wait=True)
        self._executor = None

    async def version(self) -> int:
        return await self._read(self._ops.version())

    async def changed(self) -> bool | None:
        return await self._call(self._data_version_moved)

    async def snapshot(self) -> AccessSnapshot:
        return await self._read(self._ops.snapshot())

    async def save_key(self, key: VirtualKey, *, actor: str, action: str, now: float) -> VirtualKey | None:
        return await self._write(self._ops.save_key(key, actor, action, now))

    async def save_team(self, team: Team, *, actor: str, action: str, now: float) -> Team | None:
        return await self._write(self._ops.save_team(team, actor, action, now))

    async def delete_team(self, name: str, *, actor: str, now: float) -> Team | None:
        return await self._write(self._ops.delete_team(name, actor, now))

    async def save_limits(self, entry: SubjectLimits, *, actor: str, action: str, now: float) -> SubjectLimits | None:
        return await self._write(self._ops.save_limits(entry, actor, action, now))

    async def delete_limits(self, scope: SubjectScope, subject: str, *, actor: str, now: float) -> SubjectLimits | None:
        return await self._write(self._ops.delete_limits(scope, subject, actor, now))

    async def audit(self, *, limit: int = 100, target: str | None = None) -> list[AuditEntry]:
        return await self._read(self._ops.audit(limit, target))

    async def config_newest_number(self) -> int:
        return await self._read(self._config.newest_number())

    async def config_get(self, number: int | None = None) -> ConfigVersion | None:
        return await self._read(self._config.get(number))

    async def config_history(self, limit: int = 50) -> list[ConfigVersion]:
        return await self._read(self._config.history(limit))

    async def config_append(
        self, text: str, *, author: str, action: str, message: str, now: float, expect: int | None = None
    ) -> ConfigVersion:
        return await self._write(self._config.append(text, author, action, message, now, expect))

    async def response_put(self, record: StoredResponse, now: float) -> None:
        await self._write(self._responses.put(record, now))

    async def response_get(self, response_id: str, owner: str, now: float) -> StoredResponse | None:
        return await self._read(self._responses.get(response_id, owner, now))

    async def response_delete(self, response_id: str, owner: str) -> bool:
        return await self._write(self._responses.delete(response_id, owner))

    async def file_put(self, info: FileInfo, content: bytes) -> None:
        await self._write(self._batches.file_put(info, content))

    async def file_get(self, file_id: str, owner: str, now: float | None) -> FileInfo | None:
        return await self._read(self._batches.file_get(file_id, owner, now))

    async def file_content(self, file_id: str, owner: str, now: float | None) -> bytes | None:
        return await self._read(self._batches.file_content(file_id, owner, now))

    async def file_list(
        self, owner: str, purpose: str | None, after: str | None, limit: int, now: float
    ) -> list[FileInfo]:
        return await self._read(self._batches.file_list(owner, purpose, after, limit, now))

    async def file_delete(self, file_id: str, owner: str, now: float) -> bool:
        return await self._write(self._batches.file_delete(file_id, owner, now))

    async def file_expired(self, now: float, limit: int) -> list[str]:
        return await self._read(self._batches.file_expired(now, limit))

    async def file_sweep(self, file_ids: list[str], now: float) -> int:
        return await self._write(self._batches.file_sweep(file_ids, now))

    async def batch_save(self, record: BatchRecord, expect: str | None) -> bool:
        return await self._write(self._batches.batch_save(record, expect))

    async def batch_get(self, batch_id: str, owner: str) -> BatchRecord | None:
        return await self._read(self._batches.batch_get(batch_id, owner))

    async def batch_list(self, owner: str, after: str | None, limit: int) -> list[BatchRecord]:
        return await self._read(self._batches.batch_list(owner, after, limit))

    async def batch_claim(self, runner: str, now: float, lease_s: float, limit: int) -> list[BatchRecord]:
        return await self._write(self._batches.batch_claim(runner, now, lease_s, limit))

    async def batch_claimable(self, runner: str, now: float) -> bool:
        return await self._read(self._batches.batch_claimable(runner, now))

    async def batch_release(self, batch_id: str, runner: str) -> None:
        await self._write(self._batches.batch_release(batch_id, runner))

    async def line_put(self, batch_id: str, result: LineResult) -> bool:
        return await self._write(self._batches.line_put(batch_id, result))

    async def line_ids(self, batch_id: str) -> set[str]:
        return await self._read(self._batches.line_ids(batch_id))

    async def lines(self, batch_id: str) -> list[LineResult]:
        return await self._read(self._batches.lines(batch_id))

    async def _read(self, plan: Plan[T]) -> T:
        # a deferred transaction: every query of the plan reads the same snapshot of the file
        return await self._call(self._run, plan, "BEGIN")

    async def _write(self, plan: Plan[T]) -> T:
        return await self._call(self._run, plan, "BEGIN IMMEDIATE")

    async def _call(self, fn: Callable[..., T], *args: object) -> T:
        if self._executor is None:
            raise RuntimeError("SqliteKeyStore is not open")
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    def _run(self, plan: Plan[T], begin: str) -> T:
        db = self._db()
        db.execute(begin)
        try:
            step = advance(plan, None)
            while isinstance(step, Query):
                step = advance(plan, db.execute(step.sql, step.params).fetchall())
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
        return step.value

    def _db(self) -> sqlite3.Connection:
        # (Re)opened on first use, so a store whose `open` failed (directory missing, file
        # locked past the timeout) recovers on its next call.
        if self._conn is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # isolation_level=None: no implicit transactions; `_run` opens each one itself
            conn = sqlite3.connect(self.path, isolation_level=None)
            try:
                # the timeout first, so that switching to WAL waits for other processes too
                conn.execute(f"PRAGMA busy_timeout={_BUSY_TIMEOUT_MS}")
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("BEGIN IMMEDIATE")
                for statement in create_statements(_TABLES, SQLITE):
                    conn.execute(statement)
                for table, column, definition in added_columns(_TABLES, SQLITE):
                    if column not in {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}:
                        conn.execute(f'ALTER TABLE {table} ADD COLUMN "{column}" {definition}')
                for statement in added_indexes(_TABLES):
                    conn.execute(statement)
                conn.execute("COMMIT")
            except BaseException:
                conn.close()
                raise
            self._conn = conn
        return self._conn

    def _data_version_moved(self) -> bool:
        version = int(self._db().execute("PRAGMA data_version").fetchone()[0])
        moved = version != self._data_version
        self._data_version = version
        return moved

    def _close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
            self._data_version = None  # counted per connection: the next one starts afresh
