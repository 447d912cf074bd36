"""Batch files, batches and their lines' results as plans (sans-IO, like ``operations.py``), for
both key stores.

Listings are newest first by the tables' ``seq`` (the order rows were written); a page starts
after the row whose id is ``after`` (an unknown id: an empty page, as in memory). A claim takes
the active batches this runner holds or whose lease has run out, and re-checks that condition in
the ``UPDATE`` itself, so two replicas claiming at once never both get a batch (PostgreSQL
re-evaluates it on the locked row). A line's result is inserted with ``ON CONFLICT DO NOTHING``:
the first result for a ``custom_id`` stays.

A file expired at ``now`` is left out of every read, listing and deletion that passes ``now``. The
sweep finds expired files by the ``expires_at`` index (never reading the contents) and leaves out
the input of any active batch, found by the ``input_file_id`` of the batch's JSON ``body``; its
``DELETE`` checks both again, so it is idempotent.
"""

from __future__ import annotations

from dataclasses import replace

import orjson

from breakwater.engine.batches.store import ACTIVE, BatchRecord, FileInfo, LineResult
from breakwater.infra.keystore.operations import Plan, Query
from breakwater.infra.keystore.records import BATCH_COLUMNS, BATCH_LINE_COLUMNS, FILE_COLUMNS, Row
from breakwater.infra.keystore.schema import Dialect, Tables, quoted

_INFO = ("id", "owner", "purpose", "filename", "bytes", "created_at", "expires_at")
_ACTIVE = ", ".join(f"'{status}'" for status in ACTIVE)


class BatchOperations:
    """``BatchStore`` (engine/batches/store.py) as plans over ``tables.files``, ``batches`` and
    ``batch_lines``."""

    def __init__(self, tables: Tables, dialect: Dialect) -> None:
        m = dialect.mark
        files, batches, lines = tables.files, tables.batches, tables.batch_lines

        def marks(n: int) -> str:
            return ", ".join(m(i) for i in range(1, n + 1))

        def live(n: int) -> str:
            """Not expired at the ``n``-th parameter."""
            return f"(expires_at IS NULL OR expires_at > {m(n)})"

        info = quoted(_INFO)
        # now: NULL reads a file expired or not (the runner reading an active batch's input)
        found = f"id = {m(1)} AND owner = {m(2)} AND (CAST({m(3)} AS {dialect.types['real']}) IS NULL OR {live(3)})"
        self._file_insert = f"INSERT INTO {files} ({quoted(FILE_COLUMNS)}) VALUES ({marks(len(FILE_COLUMNS))})"
        self._file_get = f"SELECT {info} FROM {files} WHERE {found}"
        self._file_content = f"SELECT content FROM {files} WHERE {found}"
        self._file_delete = f"DELETE FROM {files} WHERE id = {m(1)} AND owner = {m(2)} AND {live(3)} RETURNING id"
        # purpose: NULL matches every file
        listed = f"owner = {m(1)} AND (CAST({m(2)} AS TEXT) IS NULL OR purpose = {m(2)}) AND {live(4)}"
        self._file_list = f"SELECT {info} FROM {files} WHERE {listed} ORDER BY seq DESC LIMIT {m(3)}"
        self._file_list_after = (
            f"SELECT {info} FROM {files} WHERE {listed} "
            f"AND seq < (SELECT seq FROM {files} WHERE id = {m(5)} AND owner = {m(1)}) ORDER BY seq DESC LIMIT {m(3)}"
        )
        unused = (
            f"NOT EXISTS (SELECT 1 FROM {batches} b WHERE b.status IN ({_ACTIVE}) "
            f"AND {dialect.text_of('b.body', 'input_file_id')} = {files}.id)"
        )
        self._file_expired = (
            f"SELECT id FROM {files} WHERE expires_at <= {m(1)} AND {unused} ORDER BY expires_at LIMIT {m(2)}"
        )
        self._file_sweep = f"DELETE FROM {files} WHERE id = {m(1)} AND expires_at <= {m(2)} AND {unused} RETURNING id"
        counted = (
            "id, owner, status, created_at, expires_at, body, "
            f"(SELECT count(*) FROM {lines} l WHERE l.batch_id = b.id AND l.ok), "
            f"(SELECT count(*) FROM {lines} l WHERE l.batch_id = b.id AND NOT l.ok)"
        )
        self._batch_insert = (
            f"INSERT INTO {batches} ({quoted(BATCH_COLUMNS)}) VALUES ({marks(len(BATCH_COLUMNS))}) "
            "ON CONFLICT DO NOTHING RETURNING id"
        )
        self._batch_update = (
            f"UPDATE {batches} SET status = {m(1)}, body = {m(2)} WHERE id = {m(3)} AND status = {m(4)} RETURNING id"
        )
        self._batch_get = f"SELECT {counted} FROM {batches} b WHERE id = {m(1)} AND owner = {m(2)}"
        self._batch_list = f"SELECT {counted} FROM {batches} b WHERE owner = {m(1)} ORDER BY seq DESC LIMIT {m(2)}"
        self._batch_list_after = (
            f"SELECT {counted} FROM {batches} b WHERE owner = {m(1)} "
            f"AND seq < (SELECT seq FROM {batches} WHERE id = {m(3)} AND owner = {m(1)}) ORDER BY seq DESC LIMIT {m(2)}"
        )
        claimable = f"status IN ({_ACTIVE}) AND (lease_owner = {m(1)} OR lease_until <= {m(3)})"
        self._claim = (
            f"UPDATE {batches} SET lease_owner = {m(1)}, lease_until = {m(2)} "
            f"WHERE id IN (SELECT id FROM {batches} WHERE {claimable} "
            f"ORDER BY CASE WHEN lease_owner = {m(1)} THEN 0 ELSE 1 END, seq LIMIT {m(4)}) AND {claimable} "
            "RETURNING id"
        )
        self._claimable = (
            f"SELECT 1 FROM {batches} WHERE status IN ({_ACTIVE}) "
            f"AND (lease_owner = {m(1)} OR lease_until <= {m(2)}) LIMIT 1"
        )
        self._claimed = (
            f"SELECT {counted} FROM {batches} b WHERE lease_owner = {m(1)} AND status IN ({_ACTIVE}) ORDER BY seq"
        )
        self._release = f"UPDATE {batches} SET lease_until = 0 WHERE id = {m(1)} AND lease_owner = {m(2)}"
        self._line_insert = (
            f"INSERT INTO {lines} ({quoted(BATCH_LINE_COLUMNS)}) VALUES ({marks(len(BATCH_LINE_COLUMNS))}) "
            "ON CONFLICT DO NOTHING RETURNING custom_id"
        )
        self._line_ids = f"SELECT custom_id FROM {lines} WHERE batch_id = {m(1)}"
        self._lines = f"SELECT custom_id, idx, ok, line FROM {lines} WHERE batch_id = {m(1)} ORDER BY idx"

    def file_put(self, info: FileInfo, content: bytes) -> Plan[None]:
        values = (
            info.id,
            info.owner,
            info.purpose,
            info.filename,
            info.bytes,
            info.created_at,
            content,
            info.expires_at,
        )
        yield Query(self._file_insert, values)

    def file_get(self, file_id: str, owner: str, now: float | None) -> Plan[FileInfo | None]:
        rows = yield Query(self._file_get, (file_id, owner, now))
        return _file_of(rows[0]) if rows else None

    def file_content(self, file_id: str, owner: str, now: float | None) -> Plan[bytes | None]:
        rows = yield Query(self._file_content, (file_id, owner, now))
        return bytes(rows[0][0]) if rows else None

    def file_list(
        self, owner: str, purpose: str | None, after: str | None, limit: int, now: float
    ) -> Plan[list[FileInfo]]:
        if after is None:
            rows = yield Query(self._file_list, (owner, purpose, limit, now))
        else:
            rows = yield Query(self._file_list_after, (owner, purpose, limit, now, after))
        return [_file_of(row) for row in rows]

    def file_delete(self, file_id: str, owner: str, now: float) -> Plan[bool]:
        rows = yield Query(self._file_delete, (file_id, owner, now))
        return bool(rows)

    def file_expired(self, now: float, limit: int) -> Plan[list[str]]:
        rows = yield Query(self._file_expired, (now, limit))
        return [row[0] for row in rows]

    def file_sweep(self, file_ids: list[str], now: float) -> Plan[int]:
        swept = 0
        for file_id in file_ids:
            rows = yield Query(self._file_sweep, (file_id, now))
            swept += len(rows)
        return swept

    def batch_save(self, record: BatchRecord, expect: str | None) -> Plan[bool]:
        body = orjson.dumps(record.body()).decode()
        if expect is None:
            values = (record.id, record.owner, record.status, record.created_at, record.expires_at, "", 0.0, body)
            rows = yield Query(self._batch_insert, values)
        else:
            rows = yield Query(self._batch_update, (record.status, body, record.id, expect))
        return bool(rows)

    def batch_get(self, batch_id: str, owner: str) -> Plan[BatchRecord | None]:
        rows = yield Query(self._batch_get, (batch_id, owner))
        return _batch_of(rows[0]) if rows else None

    def batch_list(self, owner: str, after: str | None, limit: int) -> Plan[list[BatchRecord]]:
        if after is None:
            rows = yield Query(self._batch_list, (owner, limit))
        else:
            rows = yield Query(self._batch_list_after, (owner, limit, after))
        return [_batch_of(row) for row in rows]

    def batch_claim(self, runner: str, now: float, lease_s: float, limit: int) -> Plan[list[BatchRecord]]:
        yield Query(self._claim, (runner, now + lease_s, now, limit))
        rows = yield Query(self._claimed, (runner,))
        return [_batch_of(row) for row in rows]

    def batch_claimable(self, runner: str, now: float) -> Plan[bool]:
        rows = yield Query(self._claimable, (runner, now))
        return bool(rows)

    def batch_release(self, batch_id: str, runner: str) -> Plan[None]:
        yield Query(self._release, (batch_id, runner))

    def line_put(self, batch_id: str, result: LineResult) -> Plan[bool]:
        line = orjson.dumps(result.line).decode()
        rows = yield Query(self._line_insert, (batch_id, result.custom_id, result.index, result.ok, line))
        return bool(rows)

    def line_ids(self, batch_id: str) -> Plan[set[str]]:
        rows = yield Query(self._line_ids, (batch_id,))
        return {row[0] for row in rows}

    def lines(self, batch_id: str) -> Plan[list[LineResult]]:
        rows = yield Query(self._lines, (batch_id,))
        return [LineResult(row[0], int(row[1]), bool(row[2]), orjson.loads(row[3])) for row in rows]


def _file_of(row: Row) -> FileInfo:
    file_id, owner, purpose, filename, size, created_at, expires_at = row
    return FileInfo(
        file_id,
        owner,
        purpose,
        filename,
        int(size),
        float(created_at),
        None if expires_at is None else float(expires_at),
    )


def _batch_of(row: Row) -> BatchRecord:
    batch_id, owner, status, created_at, expires_at, body, completed, failed = row
    record = BatchRecord.of(batch_id, owner, status, float(created_at), float(expires_at), orjson.loads(body))
    return replace(record, completed=int(completed), failed=int(failed))
