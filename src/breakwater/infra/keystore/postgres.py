"""The access store in PostgreSQL: shared by every replica.

Built like the PostgreSQL ledger: one connection, used under a lock, thrown away after any
failure so the next call connects afresh (a restarted or unreachable server needs no recovery
path of its own); the tables are (re)ensured on every new connection, under an advisory lock so
replicas starting together do not race to create them; and each call, connecting included, is
bounded by ``command_timeout_s``.

Writes take an ``EXCLUSIVE`` lock on the audit table first. It waits only for other writers
(plain reads are never blocked), so the hash clash check sees every committed key and audit
numbers commit in order: with identity numbers handed out before commit, two concurrent writers
could otherwise commit 6 before 5, and a replica that read version 6 would never load change 5.
Reads run in one ``REPEATABLE READ`` transaction, so a snapshot is one consistent version.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any, TypeVar

import asyncpg  # type: ignore[import-untyped]

from breakwater.core.config.versions import ConfigVersion, VersionConflict
from breakwater.core.keys import AccessSnapshot, AuditEntry, SubjectLimits, SubjectScope, Team, VirtualKey
from breakwater.engine.access.store import KeyConflict
from breakwater.engine.batches.store import BatchRecord, FileInfo, LineResult
from breakwater.engine.responses.store import StoredResponse
from breakwater.infra.keystore.batch_plans import BatchOperations
from breakwater.infra.keystore.config_plans import ConfigOperations
from breakwater.infra.keystore.operations import Operations, Plan, Query, advance
from breakwater.infra.keystore.response_plans import ResponseOperations
from breakwater.infra.keystore.schema import POSTGRES, Tables, added_columns, added_indexes, create_statements

T = TypeVar("T")


class PostgresKeyStore:
    """Keys, teams, subject limits, the audit trail and the configuration versions over one
    PostgreSQL connection.

    Args:
        dsn: ``postgresql://user@host:port/db``.
        table_prefix: the tables are ``<prefix>_keys``, ``_teams``, ``_limits``, ``_audit`` and ``_config``
            (a lower-case identifier).
        command_timeout_s: bound on every call, connecting included.
    """

    def __init__(self, dsn: str, *, table_prefix: str = "breakwater", command_timeout_s: float = 5.0) -> None:
        self.tables = Tables.named(table_prefix)
        self._dsn = dsn
        self._timeout = command_timeout_s
        self._ops = Operations(self.tables, POSTGRES)
        self._config = ConfigOperations(self.tables, POSTGRES)
        self._batches = BatchOperations(self.tables, POSTGRES)
        self._responses = ResponseOperations(self.tables, POSTGRES)
        self._write_lock = f"LOCK TABLE {self.tables.audit} IN EXCLUSIVE MODE"
        self._conn: Any = None
        self._lock = asyncio.Lock()

    async def open(self) -> None:
        """Connect and create the tables if missing."""
        async with self._session():
            pass

    async def close(self) -> None:
        """Close the connection (the store can be opened again)."""
        async with self._lock:
            if self._conn is not None:
                conn, self._conn = self._conn, None
                await conn.close(timeout=self._timeout)

    async def version(self) -> int:
        return await self._run(self._ops.version(), write=False)

    async def changed(self) -> bool | None:
        """No cheap check: replicas poll ``version`` (``access.reload_s``) or hear Redis pub/sub."""
        return None

    async def snapshot(self) -> AccessSnapshot:
        return await self._run(self._ops.snapshot(), write=False)

    async def save_key(self, key: VirtualKey, *, actor: str, action: str, now: float) -> VirtualKey | None:
        return await self._run(self._ops.save_key(key, actor, action, now), write=True)

    async def save_team(self, team: Team, *, actor: str, action: str, now: float) -> Team | None:
        return await self._run(self._ops.save_team(team, actor, action, now), write=True)

    async def delete_team(self, name: str, *, actor: str, now: float) -> Team | None:
        return await self._run(self._ops.delete_team(name, actor, now), write=True)

    async def save_limits(self, entry: SubjectLimits, *, actor: str, action: str, now: float) -> SubjectLimits | None:
        return await self._run(self._ops.save_limits(entry, actor, action, now), write=True)

    async def delete_limits(self, scope: SubjectScope, subject: str, *, actor: str, now: float) -> SubjectLimits | None:
        return await self._run(self._ops.delete_limits(scope, subject, actor, now), write=True)

    async def audit(self, *, limit: int = 100, target: str | None = None) -> list[AuditEntry]:
        return await self._run(self._ops.audit(limit, target), write=False)

    async def config_newest_number(self) -> int:
        return await self._run(self._config.newest_number(), write=False)

    async def config_get(self, number: int | None = None) -> ConfigVersion | None:
        return await self._run(self._config.get(number), write=False)

    async def config_history(self, limit: int = 50) -> list[ConfigVersion]:
        return await self._run(self._config.history(limit), write=False)

    async def config_append(
        self, text: str, *, author: str, action: str, message: str, now: float, expect: int | None = None
    ) -> ConfigVersion:
        return await self._run(self._config.append(text, author, action, message, now, expect), write=True)

    async def response_put(self, record: StoredResponse, now: float) -> None:
        await self._run(self._responses.put(record, now), write=True, serialise=False)

    async def response_get(self, response_id: str, owner: str, now: float) -> StoredResponse | None:
        return await self._run(self._responses.get(response_id, owner, now), write=False)

    async def response_delete(self, response_id: str, owner: str) -> bool:
        return await self._run(self._responses.delete(response_id, owner), write=True, serialise=False)

    async def file_put(self, info: FileInfo, content: bytes) -> None:
        await self._run(self._batches.file_put(info, content), write=True, serialise=False)

    async def file_get(self, file_id: str, owner: str, now: float | None) -> FileInfo | None:
        return await self._run(self._batches.file_get(file_id, owner, now), write=False)

    async def file_content(self, file_id: str, owner: str, now: float | None) -> bytes | None:
        return await self._run(self._batches.file_content(file_id, owner, now), write=False)

    async def file_list(
        self, owner: str, purpose: str | None, after: str | None, limit: int, now: float
    ) -> list[FileInfo]:
        return await self._run(self._batches.file_list(owner, purpose, after, limit, now), write=False)

    async def file_delete(self, file_id: str, owner: str, now: float) -> bool:
        return await self._run(self._batches.file_delete(file_id, owner, now), write=True, serialise=False)

    async def file_expired(self, now: float, limit: int) -> list[str]:
        return await self._run(self._batches.file_expired(now, limit), write=False)

    async def file_sweep(self, file_ids: list[str], now: float) -> int:
        return await self._run(self._batches.file_sweep(file_ids, now), write=True, serialise=False)

    async def batch_save(self, record: BatchRecord, expect: str | None) -> bool:
        return await self._run(self._batches.batch_save(record, expect), write=True, serialise=False)

    async def batch_get(self, batch_id: str, owner: str) -> BatchRecord | None:
        return await self._run(self._batches.batch_get(batch_id, owner), write=False)

    async def batch_list(self, owner: str, after: str | None, limit: int) -> list[BatchRecord]:
        return await self._run(self._batches.batch_list(owner, after, limit), write=False)

    async def batch_claim(self, runner: str, now: float, lease_s: float, limit: int) -> list[BatchRecord]:
        return await self._run(self._batches.batch_claim(runner, now, lease_s, limit), write=True, serialise=False)

    async def batch_claimable(self, runner: str, now: float) -> bool:
        return await self._run(self._batches.batch_claimable(runner, now), write=False)

    async def batch_release(self, batch_id: str, runner: str) -> None:
        await self._run(self._batches.batch_release(batch_id, runner), write=True, serialise=False)

    async def line_put(self, batch_id: str, result: LineResult) -> bool:
        return await self._run(self._batches.line_put(batch_id, result), write=True, serialise=False)

    async def line_ids(self, batch_id: str) -> set[str]:
        return await self._run(self._batches.line_ids(batch_id), write=False)

    async def lines(self, batch_id: str) -> list[LineResult]:
        return await self._run(self._batches.lines(batch_id), write=False)

    async def _run(self, plan: Plan[T], *, write: bool, serialise: bool = True) -> T:
        """Run ``plan`` in one transaction; a write takes the writers' lock unless ``serialise``
        is false (stored responses: rows of their own, no audit, no numbering to keep in order)."""
        async with self._session() as conn:
            isolation = "read_committed" if write else "repeatable_read"
            async with conn.transaction(isolation=isolation, readonly=not write):
                if write and serialise:
                    await conn.execute(self._write_lock)
                step = advance(plan, None)
                while isinstance(step, Query):
                    step = advance(plan, await conn.fetch(step.sql, *step.params))
                return step.value

    @contextlib.asynccontextmanager
    async def _session(self) -> AsyncIterator[Any]:
        """The connection, (re)opened if needed, for one call: under the lock, within the timeout,
        and thrown away if anything fails (after a timeout, a cancellation or a lost socket its
        state is unknown)."""
        async with self._lock:
            try:
                async with asyncio.timeout(self._timeout):
                    if self._conn is None or self._conn.is_closed():
                        self._conn = None
                        self._conn = await asyncpg.connect(
                            self._dsn, timeout=self._timeout, command_timeout=self._timeout
                        )
                        async with self._conn.transaction():
                            await self._conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", self.tables.keys)
                            for statement in create_statements(self.tables, POSTGRES):
                                await self._conn.execute(statement)
                            for table, column, definition in added_columns(self.tables, POSTGRES):
                                await self._conn.execute(
                                    f'ALTER TABLE {table} ADD COLUMN IF NOT EXISTS "{column}" {definition}'
                                )
                            for statement in added_indexes(self.tables):
                                await self._conn.execute(statement)
                    yield self._conn
            except (KeyConflict, VersionConflict):
                raise  # refused by the plan and rolled back cleanly: the connection is sound
            except BaseException:
                if self._conn is not None:
                    self._conn.terminate()
                    self._conn = None
                raise
