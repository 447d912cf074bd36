"""Batch files' ``expires_at`` in a key store made before it: both stores add the column (and its
index) on open, and the files kept by the earlier version never expire."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import asyncpg  # type: ignore[import-untyped]
import pytest

from breakwater.engine.batches.store import BatchStore, FileInfo
from breakwater.infra.keystore import PostgresKeyStore, SqliteKeyStore

from .conftest import DSN, prefix_of_its_own

T = 1_700_000_000.0

#: a way to make the store, and to run SQL on its tables behind its back (``{files}``)
Made = tuple[Callable[[], BatchStore], Callable[[str], Awaitable[None]]]


async def _postgres_sql(sql: str) -> None:
    conn = await asyncpg.connect(DSN)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture(params=["sqlite", "postgres"])
async def made(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Made]:
    if request.param == "sqlite":
        path = tmp_path / "keys.db"

        async def lite(statement: str) -> None:
            with sqlite3.connect(path) as db:
                db.execute(statement.format(files="breakwater_files"))

        yield (lambda: SqliteKeyStore(path)), lite
        return
    async with prefix_of_its_own() as prefix:
        files = PostgresKeyStore(DSN, table_prefix=prefix).tables.files

        async def pg(statement: str) -> None:
            await _postgres_sql(statement.format(files=files))

        yield (lambda: PostgresKeyStore(DSN, table_prefix=prefix)), pg


async def test_a_store_made_before_expiry_gets_the_column(made: Made) -> None:
    """A files table without ``expires_at`` (an older gateway's) gets it on open: its files read
    with no expiry and are never swept, and new files keep theirs."""
    make, sql = made
    store = make()
    await store.open()
    await store.file_put(FileInfo("file-old", "key_a", "batch", "old.jsonl", 3, T), b"old")
    await store.close()
    await sql("DROP INDEX {files}_expires")
    await sql('ALTER TABLE {files} DROP COLUMN "expires_at"')
    store = make()
    await store.open()
    try:
        later = T + 10**9
        assert await store.file_get("file-old", "key_a", later) == FileInfo(
            "file-old", "key_a", "batch", "old.jsonl", 3, T, None
        )
        assert await store.file_expired(later, 10) == []
        await store.file_put(FileInfo("file-new", "key_a", "batch", "new.jsonl", 3, T, T + 3600), b"new")
        assert await store.file_expired(T + 3600, 10) == ["file-new"]
        assert [f.id for f in await store.file_list("key_a", None, None, 10, T + 3600)] == ["file-old"]
    finally:
        await store.close()
